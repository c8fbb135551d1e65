"""`nfactory demo`: the bundled workflows end to end on a throwaway local board.

Creates cards, runs worker cycles, answers the feedback question as a person
would, and ends with a summary. Exit status 0 only if every card ended in the
column it should.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

import workflows
from factory.clock import SystemClock
from factory.cycle import run_cycle
from factory.effects import COLUMNS
from factory.local_board import add_reply
from factory.runtime import open_runtime
from factory.settings import load_settings
from factory.store import repo


@dataclass(frozen=True)
class Card:
    factory: str
    title: str
    body: str
    expected: str  # the column it must end in


CARDS = (
    Card("triage", "Login page crashes on submit", "The form throws an error since 2.3.", "Done"),
    Card("triage", "Dark mode", "We would like to add support for a dark theme.", "Done"),
    Card("triage", "Lunch", "", "Blocked"),
    Card("writing", "Release notes for 2.4", "Summarise the 2.4 changes for users.", "Done"),
)
MAX_CYCLES = 20


def run_demo(console: Console) -> int:
    with tempfile.TemporaryDirectory(prefix="nfactory-demo-") as tmp:
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'demo.db'}",
            workflows=[str(Path(workflows.__file__).parent)],
        )
        return asyncio.run(_demo(console, settings))


async def _demo(console: Console, settings) -> int:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    clock = SystemClock()
    rt = open_runtime(settings, clock)
    console.print(f"[bold]notion-factory demo[/bold]: factories {', '.join(rt.catalog.factories)}")
    ids = []
    with rt.db.begin() as conn:
        for card in CARDS:
            prompt = next((ln for ln in card.body.splitlines() if ln.strip()), "")
            ids.append(
                repo.create_task(
                    conn,
                    factory_id=card.factory,
                    title=card.title,
                    prompt=prompt,
                    context=card.body,
                    now=clock.now(),
                )
            )
    columns = {tid: "Queue" for tid in ids}
    for cycle in range(1, MAX_CYCLES + 1):
        report = await run_cycle(rt.engine, rt.board)
        with rt.db.connect() as conn:
            tasks = {tid: repo.get_task(conn, tid) for tid in ids}
        for tid, t in tasks.items():
            column = COLUMNS[t.status]
            if column != columns[tid]:
                console.print(f"  cycle {cycle}: {t.title!r:38} {columns[tid]:>8} → {column}")
                columns[tid] = column
            if t.status == "feedback":
                # the scripted person reads the question and approves
                add_reply(rt.db, tid, "Looks good, approve.", "demo-person", clock.now())
                console.print(f"  cycle {cycle}: a person replied on {t.title!r}")
        if not report.ticks and all(t.status not in ("queued", "running") for t in tasks.values()):
            break
    table = Table("card", "factory", "final column", "expected", "transitions")
    ok = True
    with rt.db.connect() as conn:
        for card, tid in zip(CARDS, ids, strict=True):
            column = COLUMNS[repo.get_task(conn, tid).status]
            run = repo.latest_run(conn, tid)
            ok &= column == card.expected
            mark = "" if column == card.expected else " [red](wrong)[/red]"
            table.add_row(
                card.title,
                card.factory,
                column + mark,
                card.expected,
                str(run.transitions if run else 0),
            )
    console.print(table)
    console.print(
        f"finished in {time.monotonic() - started:.1f}s: "
        + (
            "all cards ended where they should"
            if ok
            else "[red]some cards ended in the wrong column[/red]"
        )
    )
    rt.db.dispose()
    return 0 if ok else 1
