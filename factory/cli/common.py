"""Pieces every `nfactory` command shares: consoles, error handling, the board in use."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from factory.board_protocol import Board
from factory.cli.runtime import Runtime, open_runtime, refuse_to_work
from factory.redact import install_log_redaction, redact
from factory.reply_schedule import ReplySchedule
from factory.settings import SettingsError, load_settings
from factory.store import repo
from factory.store.db import Database, DatabaseError
from factory.store.leases import LeaseHeld
from factory.terminal import shown
from factory.validate import FactoryError
from integrations.notion.errors import NotionError
from integrations.notion.page_refs import card_ref
from integrations.notion.settings import NotionSettings, load_notion_settings

out = Console()
err = Console(stderr=True)

EXPECTED = (
    SettingsError,
    DatabaseError,
    repo.NotFound,
    LeaseHeld,
    FactoryError,
    NotionError,
    ValueError,
)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
TaskOpt = Annotated[
    str,
    typer.Option(
        "--task",
        help="The card: its task id, the short id `status` shows, its page id or Notion URL.",
    ),
]


def one_line_errors(fn: F) -> F:
    """Every command fails with one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Log records are scrubbed of every secret the command comes to hold.
        install_log_redaction()
        try:
            return fn(*args, **kwargs)
        except EXPECTED as exc:
            if _errors_to_log:
                logging.getLogger("nfactory").error("%s", redact(one_line(exc)))
            else:
                line = shown(redact(one_line(exc)))
                err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


_errors_to_log = False


def set_error_log(on: bool) -> None:
    """A command's one-line failure goes to the log (`start --log-format json`: every line
    on stderr is then one JSON object) instead of the console."""
    global _errors_to_log
    _errors_to_log = on


def one_line(exc: BaseException) -> str:
    """The reason on one line: database drivers report over several and add a docs link."""
    lines = (line.strip() for line in str(exc).splitlines())
    return " ".join(x for x in lines if x and not x.startswith("(Background on this error"))


def find_card(db: Database, text: str) -> repo.TaskRow:
    """The task a person named: task id or prefix, card page id (dashes optional) or URL."""
    with db.connect() as conn:
        return repo.find_task(conn, card_ref(text))


def runtime() -> Runtime:
    return open_runtime(load_settings())


def worker_runtime() -> Runtime:
    """The runtime for commands that claim cards: refused when no factory could run them."""
    rt = runtime()
    refuse_to_work(rt.settings, rt.catalog)
    return rt


def notion_settings() -> NotionSettings:
    return load_notion_settings()


@asynccontextmanager
async def board_for(rt: Runtime, *, check_repliers: bool = False) -> AsyncIterator[Board]:
    """The Notion board when NOTION_BOARD_ID is set, else the local board. With
    `check_repliers` (`start`), who may answer is read and warned about at once."""
    settings = notion_settings()
    if not settings.board_configured:
        yield rt.board
        return
    from integrations.notion.wiring import open_notion_board

    opening = open_notion_board(
        settings, rt.db, rt.engine.clock.now(), check_repliers=check_repliers
    )
    async with opening as board:
        yield board


def reply_schedule(rt: Runtime) -> ReplySchedule | None:
    """The reply schedule for the Notion board (None for the local board: looks are free)."""
    settings = notion_settings()
    if not settings.board_configured:
        return None
    return settings.reply_schedule(rt.settings.poll_seconds)


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, default=_json_default, indent=2) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def now() -> datetime:
    return datetime.now(UTC)
