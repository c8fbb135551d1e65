"""`nfactory demo`: the whole product on a local Notion, with no account and no setup.

Starts the Notion emulator in-process (with Notion's rate limit), creates a
board, adds cards for the bundled workflows as a person would, runs the real
worker, answers the feedback question in a comment like a person, and ends
with a summary. Exit status 0 only if every card ended in the column it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from factory.clock import SystemClock
from factory.effects import COLUMNS
from factory.engine import Engine, EngineConfig
from factory.loader import load_factories
from factory.statuses import TERMINAL
from factory.store import repo
from factory.store.db import open_database
from factory.store.outbox import backlog
from factory.worker import Worker, WorkerConfig, quiet_chatty_loggers
from integrations.notion.cards import new_card_properties
from integrations.notion.client import NotionClient
from integrations.notion.setup import setup_board
from integrations.notion.wiring import board_on
from integrations.notion_emulator import render
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

TOKEN = "secret_demo_integration"
ENDED = {COLUMNS[s] for s in TERMINAL}  # the columns of a finished card
DEADLINE_SECONDS = 90
REPLY = "Looks good, approve."
# The bundled workflows are a folder of the repository, found by path: installed as a
# top-level `workflows` package they would shadow the user's own `workflows/` folder.
BUNDLED_WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


@dataclass(frozen=True)
class Card:
    factory: str
    title: str
    expected: str  # the column it must end in
    body: str = ""  # the card's description
    reply: str = REPLY  # what the person answers its question with


CODER_CARD = "Add a greeting to the project"


CARDS = (
    Card("triage", "Login page crashes with an error", "Done"),
    Card("triage", "Would like to add a dark mode feature", "Done"),
    Card("triage", "Lunch", "Blocked"),
    Card("writing", "Release notes for 2.4", "Done"),
    Card("report", "System report", "Done"),
    # the stand-in coding agent follows the description in the run's own git worktree
    Card(
        "code_change",
        CODER_CARD,
        "Done",
        body="create GREETING.md with Hello from notion-factory",
        reply="approve",
    ),
    Card("translate", "Translate the docs", "Blocked"),  # no such factory
)

NEXT_STEPS = """\
To run the same worker against your real Notion board:
  1. Create an integration at https://www.notion.so/profile/integrations and copy its secret.
  2. Share a page with it (••• → Connections), then:
       export NOTION_TOKEN=ntn_...
       .venv/bin/nfactory board setup --parent-page <that page's URL or id>
       export NOTION_BOARD_ID=<the id it prints>
       .venv/bin/nfactory start
  3. Add a card in Queue with a Factory; watch it move. `nfactory doctor` checks everything."""


def run_demo(console: Console) -> int:
    if not (BUNDLED_WORKFLOWS / "triage.py").is_file():
        raise ValueError(
            f"the demo runs the bundled workflows, which come with the repository, not the "
            f"package (not found in {BUNDLED_WORKFLOWS}): clone it and run `make demo`"
        )
    with tempfile.TemporaryDirectory(prefix="nfactory-demo-") as tmp:
        project = make_project(Path(tmp) / "project")
        # the coding card works on this throwaway repository with the offline stand-in,
        # whatever the environment or a .env says
        with coder_settings(
            NFACTORY_CODER_REPO=str(project),
            NFACTORY_CODER_COMMAND="",
            NFACTORY_CODER_TEST_COMMAND="git diff --check HEAD",
            NFACTORY_CODER_PUSH="0",
        ):
            return asyncio.run(_demo(console, Path(tmp), project))


def make_project(path: Path) -> Path:
    """A git repository with one commit, for the coding card's worktree."""
    path.mkdir()
    (path / "README.md").write_text("# Demo project\n")
    who = ["-c", "user.name=notion-factory demo", "-c", "user.email=demo@localhost"]
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "README.md"],
        [*who, "commit", "--quiet", "-m", "Start the demo project"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, timeout=60)
    return path


@contextlib.contextmanager
def coder_settings(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _column(emu: EmulatorServer, page_id: str) -> str:
    ws = emu.workspace
    with ws.lock:
        select = render.page(ws, ws.page(page_id))["properties"]["State"]["select"]
    return select["name"] if select else "-"


def _bot_comments(emu: EmulatorServer, page_id: str, bot_id: str) -> list[str]:
    ws = emu.workspace
    with ws.lock:
        shown = [render.comment(ws, c) for c in ws.comments_of(page_id)]
    return [
        "".join(t["plain_text"] for t in c["rich_text"])
        for c in shown
        if c["created_by"]["id"] == bot_id
    ]


def _has_picture(emu: EmulatorServer, page_id: str) -> bool:
    """The factory's Mermaid diagram, which a run's first log append carries."""
    ws = emu.workspace
    with ws.lock:
        blocks = ws.live_children(page_id)
    return any(b.type == "code" and b.payload.get("language") == "mermaid" for b in blocks)


def _bot_asked(emu: EmulatorServer, page_id: str, bot_id: str) -> bool:
    return bool(_bot_comments(emu, page_id, bot_id))


def _ending_comment_right(column: str, bot_comments: list[str]) -> bool:
    """NFACTORY_SUMMARY_COMMENT's default: a card ending Failed, Blocked or Cancelled
    says why in a comment; a Done card notifies nobody."""
    if column == "Done":
        return not any(text.startswith("Done:") for text in bot_comments)
    return bool(bot_comments) and bot_comments[-1].startswith(column)


async def _demo(console: Console, tmp: Path, project: Path) -> int:
    started = time.monotonic()
    quiet_chatty_loggers()
    catalog = load_factories([BUNDLED_WORKFLOWS])
    with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=3, burst=10)) as emu:
        console.print(
            f"[bold]notion-factory demo[/bold]: a local Notion at {emu.base_url} "
            f"(3 requests/s, as Notion), factories {', '.join(sorted(catalog.factories))}"
        )
        client = NotionClient(emu.token, emu.base_url)
        control = httpx.AsyncClient(base_url=emu.base_url)
        db = open_database(f"sqlite:///{tmp / 'demo.db'}")
        try:
            root = (await control.get("/_emulator/root")).json()
            made = await setup_board(
                client,
                catalog.factories,
                board_id=None,
                parent_page=root["page_id"],
                title="Demo board",
            )
            source = made.board.data_source_id
            board = await board_on(client, db, source, SystemClock().now(), title="Demo board")
            await board.check_repliers()  # who is a person, as `start` does at once
            me = {"id": board.bot_id}
            engine = Engine(
                db, catalog.factories, EngineConfig(worker_id="demo-worker"), SystemClock()
            )
            pages = []
            for card in CARDS:  # a person adds the cards in Queue
                props = new_card_properties(card.title, card.factory)
                if card.body:  # a card with a description (the control API makes none)
                    made_page = await client.create_page(
                        {"data_source_id": source}, props, markdown=card.body
                    )
                    pages.append(made_page["id"])
                    continue
                body = {"parent": {"data_source_id": source}, "properties": props}
                pages.append((await control.post("/_emulator/pages", json=body)).json()["id"])
            console.print(f"board ready, {len(CARDS)} cards in Queue; starting the worker\n")
            worker = Worker(
                engine,
                board,
                WorkerConfig(
                    poll_seconds=2, concurrency=4, deliver_seconds=0.5, dispatch_seconds=0.2
                ),
            )
            worker.start()
            await _watch(console, emu, control, db, pages, me["id"], started)
            await worker.stop(grace=10)
            ok = _summary(console, emu, db, client, pages, me["id"])
            ok &= _show_commit(console, db, pages, project)
        finally:
            await client.aclose()
            await control.aclose()
            db.dispose()
    stats = client.stats
    console.print(
        f"\nfinished in {time.monotonic() - started:.1f}s; {stats.total} Notion requests, "
        f"{stats.rate_limited} rate limited. "
        + (
            "Every card ended where it should."
            if ok
            else "[red]Some cards ended in the wrong column.[/red]"
        )
    )
    console.print(NEXT_STEPS, highlight=False)
    return 0 if ok else 1


async def _watch(  # type: ignore[no-untyped-def]
    console: Console,
    emu: EmulatorServer,
    control,
    db,
    pages: list[str],
    bot_id: str,
    started: float,
) -> None:
    """Print each card's moves on the board; answer the question like a person."""
    seen = {p: "Queue" for p in pages}
    answered: set[str] = set()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        for card, page in zip(CARDS, pages, strict=True):
            column = _column(emu, page)
            if column != seen[page]:
                elapsed = time.monotonic() - started
                console.print(f"  {elapsed:5.1f}s  {card.title:<42} {seen[page]:>9} → {column}")
                seen[page] = column
            if column == "Feedback" and page not in answered and _bot_asked(emu, page, bot_id):
                reply = {"page_id": page, "text": card.reply}
                await control.post("/_emulator/comments", json=reply)
                answered.add(page)
                elapsed = time.monotonic() - started
                console.print(
                    f"  {elapsed:5.1f}s  a person replies on {card.title!r}: {card.reply!r}"
                )
        if all(c in ENDED for c in seen.values()) and backlog(db) == 0:
            return
        await asyncio.sleep(0.25)
    console.print(f"[red]gave up waiting after {DEADLINE_SECONDS}s[/red]")


def _show_commit(console: Console, db, pages: list[str], project: Path) -> bool:  # type: ignore[no-untyped-def]
    """The coding card's work: its branch and commit in the throwaway repository."""
    page = next(p for c, p in zip(CARDS, pages, strict=True) if c.title == CODER_CARD)
    with db.connect() as conn:
        run = repo.latest_run(conn, repo.find_task(conn, page).id)
    ctx = run.ctx if run else {}
    branch, commit = ctx.get("branch"), ctx.get("commit")
    if not branch or not commit:
        console.print(f"[red]{CODER_CARD!r} made no commit[/red]")
        return False
    shown = subprocess.run(
        ["git", "log", "-1", "--stat", "--format=%h %s", str(commit)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    console.print(
        f"\n{CODER_CARD!r}: commit {str(commit)[:12]} on branch {branch} "
        f"(in the demo's throwaway repository {project}):",
        highlight=False,
    )
    console.print(shown.stdout.rstrip(), highlight=False)
    return shown.returncode == 0


def _summary(
    console: Console, emu: EmulatorServer, db, client: NotionClient, pages: list[str], bot_id: str
) -> bool:  # type: ignore[no-untyped-def]
    table = Table(
        "card",
        "factory",
        "final column",
        "transitions",
        "bot comments",
        "diagram",
        "Notion requests",
    )
    ok = True
    with db.connect() as conn:
        for card, page in zip(CARDS, pages, strict=True):
            column = _column(emu, page)
            task = repo.find_task(conn, page)
            run = repo.latest_run(conn, task.id)
            right = column == card.expected
            comments = _bot_comments(emu, page, bot_id)
            said = _ending_comment_right(column, comments)
            # a card that ran shows its factory as a picture (one that never started: none)
            pictured = _has_picture(emu, page) or run is None
            ok &= right and said and pictured
            table.add_row(
                card.title,
                card.factory,
                column if right else f"[red]{column} (expected {card.expected})[/red]",
                str(run.transitions if run else 0),
                str(len(comments)) if said else f"[red]{len(comments)} (ending comment)[/red]",
                "on the page"
                if _has_picture(emu, page)
                else ("-" if pictured else "[red]missing[/red]"),
                str(client.stats.for_object(page)),
            )
    console.print()
    console.print(table)
    return ok
