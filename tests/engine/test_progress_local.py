"""Progress on the local board: `nfactory status` and the live view show the latest line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import update

from factory import AgentInput, action, define_factory, done, failed
from factory.cli.live import running_table
from factory.clock import SystemClock
from factory.local_board import LocalBoard
from factory.store.db import open_database
from factory.store.tables import tasks
from factory.worker import Worker, WorkerConfig
from tests.engine.helpers import make_engine, new_task, task
from tests.test_cli import NFACTORY, clean_env

FAST = WorkerConfig(
    poll_seconds=0.2, concurrency=2, deliver_seconds=0.1, dispatch_seconds=0.05, progress_seconds=1
)


def status(tmp_path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(NFACTORY), "status", "--json"],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {t["title"]: t for t in json.loads(result.stdout)["tasks"]}


async def test_status_and_live_view_show_the_running_agents_latest_line(tmp_path: Path) -> None:
    go = threading.Event()

    def agent(inp: AgentInput) -> dict[str, Any]:
        n = 0
        while not go.wait(0.05):
            n += 1
            inp.progress(f"compiling module {n}")
            if n > 1200:
                break
        return {"status": "done"}

    factory = define_factory(
        id="p",
        start="compile",
        states={
            "compile": action(agent, on={"done": "end", "failed": "x"}),
            "end": done(),
            "x": failed(),
        },
    )
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = make_engine(db, factory, clock=SystemClock())  # type: ignore[arg-type]
    title = "Build \x1b[31mred[/] card"
    task_id = new_task(db, "p", title)
    worker = Worker(engine, LocalBoard(db, SystemClock()), FAST)
    worker.start()
    try:
        async with asyncio.timeout(60):
            while "compiling module" not in str(  # noqa: ASYNC110 - the line is in the database
                (await asyncio.to_thread(status, tmp_path))[title]["progress"]
            ):
                await asyncio.sleep(0.2)

        console = Console(record=True, width=200, force_terminal=False)
        console.print(running_table(worker))
        view = console.export_text()
        assert "compile" in view and "compiling module" in view and "0m0" in view
        assert "\\x1b[31mred[/] card" in view  # the title shown, its escape made visible

        # a card of a Notion board: its link beside the short id and title
        page = "0123abcd-0000-4000-8000-00000000beef"
        with db.begin() as conn:
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(external_id=page))
        console.print(running_table(worker))
        lines = console.export_text().splitlines()
        (row,) = [i for i, line in enumerate(lines) if line.lstrip().startswith(task_id[:8])]
        assert "red[/] card" in lines[row]
        assert (
            "https://www.notion.so/Build-31mred-card-0123abcd00004000800000000000beef"
            in (lines[row + 1])
        )
    finally:
        go.set()
        async with asyncio.timeout(60):
            while task(db, task_id).status != "done":  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await worker.stop(grace=10)
    # done: the line is history, the card's log says what came of it
    assert (await asyncio.to_thread(status, tmp_path))[title]["progress"] is None
    db.dispose()
