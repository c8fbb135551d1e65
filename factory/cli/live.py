"""What `nfactory start` shows: a live rich view on a terminal, log lines otherwise."""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Group
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from factory.board_protocol import RequestStats
from factory.effects import COLUMNS
from factory.store import progress as progress_store
from factory.store.counts import tasks_by_status
from factory.store.db import Database
from factory.store.outbox import backlog
from factory.terminal import shown, visible
from factory.threads import run_io
from factory.worker import Worker
from integrations.notion.page_refs import page_url


def column_counts(db: Database, board_id: str) -> dict[str, int]:
    counts = dict.fromkeys(COLUMNS.values(), 0)
    for status, n in tasks_by_status(db, board_id).items():
        counts[COLUMNS.get(status, status)] = n
    return counts


@dataclass(frozen=True)
class RequestsNow:
    """What the view shows of the board's requests."""

    per_minute: int = 0
    rate_limited: int = 0


class RequestRate:
    """Requests per minute over a sliding window, from a growing total (a board's
    `request_stats`; None counts as nothing sent)."""

    def __init__(self, total: Callable[[], RequestStats | None]) -> None:
        self.total = total
        self.samples: deque[tuple[float, int]] = deque()

    def __call__(self) -> RequestsNow:
        now = time.monotonic()
        current = self.total() or RequestStats()
        self.samples.append((now, current.total))
        while self.samples and self.samples[0][0] < now - 60:
            self.samples.popleft()
        return RequestsNow(current.total - self.samples[0][1], current.rate_limited)


def elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


@dataclass(frozen=True)
class Seen:
    """What the view reads from the database: read in one go, off the loop when it runs."""

    columns: dict[str, int]
    backlog: int
    cards: dict[str, tuple[str, str, str | None]]  # running task id -> (title, state, page)


def read_seen(db: Database, board_id: str, running: list[str]) -> Seen:
    with db.connect() as conn:
        cards = progress_store.running_cards(conn, running)
    return Seen(column_counts(db, board_id), backlog(db, board_id), cards)


def _seen(worker: Worker) -> Seen:
    return read_seen(worker.engine.db, worker.board.id, list(worker.stats.running))


def running_table(
    worker: Worker, cards: dict[str, tuple[str, str, str | None]] | None = None
) -> Table:
    """Each running card: short id, title and link, state, time since its tick started,
    last progress line."""
    stats = worker.stats
    if cards is None:
        cards = _seen(worker).cards
    latest = worker.engine.progress.latest()
    table = Table("card", "title", "state", "elapsed", "progress", box=None, show_header=True)
    now = time.monotonic()
    for task_id, since in sorted(stats.running.items(), key=lambda kv: kv[1]):
        title, state, page = cards.get(task_id, ("", "", None))
        url = page_url(title, page) if page else None
        named = Text(visible(title[:40]))
        if url:
            named.append(f"\n{url}", style=Style(dim=True, link=url))
        update = latest.get(task_id)
        if update is not None:
            state = update.state_id  # the agent's state: the card's column lags behind
        table.add_row(
            Text(task_id[:8], style=Style(link=url) if url else ""),
            named,
            shown(state),
            elapsed(now - since),
            shown(update.line[:80]) if update is not None else "",
        )
    return table


async def render_live(worker: Worker, requests: Callable[[], RequestsNow] | None = None) -> Group:
    """`render` for the worker's own loop: the database is read in an I/O thread, so a
    write lock held elsewhere cannot freeze the heartbeats while the view waits."""
    seen = await run_io(read_seen, worker.engine.db, worker.board.id, list(worker.stats.running))
    return render(worker, requests, seen)


def render(
    worker: Worker,
    requests: Callable[[], RequestsNow] | None = None,
    seen: Seen | None = None,
) -> Group:
    """The view; without `seen` it reads the database itself (not on the worker's loop)."""
    stats = worker.stats
    seen = seen or _seen(worker)
    board = Table.grid(padding=(0, 2))
    board.add_row(*[f"[bold]{name}[/bold] {n}" for name, n in seen.columns.items()])
    running = running_table(worker, seen.cards)
    info = Table.grid(padding=(0, 2))
    api = requests() if requests else RequestsNow()
    info.add_row(
        f"outbox backlog {seen.backlog}",
        f"ticks {stats.ticks}",
        f"transitions {stats.transitions}",
        f"delivered {stats.delivered}",
        f"Notion requests/min {api.per_minute}",
        f"429s {api.rate_limited}",
    )
    overrunning = worker.engine.agents.overrunning
    if overrunning:
        info.add_row(f"[yellow]agent calls overrunning {overrunning}[/yellow]")
    parts: list[object] = [board, info]
    unloaded = worker.engine.unloaded
    if unloaded:
        failed = "\n".join(shown(f"{path}: {error}") for path, error in unloaded.items())
        title = f"{len(unloaded)} workflow module(s) failed to load: their cards wait in Queue"
        parts.insert(0, Panel(failed, title=title, border_style="red", expand=False))
    if stats.running:
        parts.append(Panel(running, title="running", expand=False))
    if stats.last_errors:
        errors = "\n".join(shown(e) for e in stats.last_errors[-5:])
        parts.append(Panel(errors, title="last errors", expand=False))
    return Group(*parts)  # type: ignore[arg-type]


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (`--log-format json`)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # exc_text first: the redacting log filter leaves the scrubbed traceback there
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        return json.dumps(doc)
