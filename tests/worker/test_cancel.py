"""Cancelling a card stops its running agent, through real processes: `nfactory start`, a
command agent (a shell script that notes its pid and traps SIGTERM), and the person moving
the card to Cancelled in the emulator or running `nfactory task cancel`. The command's
process group is gone within the poll interval plus 5 s, and the card ends Cancelled with
the reason and the output the command had written."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from factory.effects import CommentEffect, PageEffect
from factory.store.outbox import delivered_effects as card_log
from integrations.notion_emulator.server import EmulatorServer
from tests.worker.harness import Db, Stage, Worker, cli, group_gone, wait_for

POLL = 0.5  # the harness's NFACTORY_POLL_SECONDS
BOUND = POLL + 5  # the bound: the poll interval plus 5 s

BUILD_FACTORY = """
import os

from factory import action, command_agent, define_factory, done, failed

FACTORY = define_factory(
    id="build",
    start="build",
    states={
        "build": action(
            command_agent(["sh", os.environ["WORK_SCRIPT"]]),
            on={"done": "done", "failed": "failed"},
        ),
        "done": done(),
        "failed": failed(),
    },
)
"""

WORK_SCRIPT = """
echo $$ >> "$PIDS_FILE"
trap 'echo "got SIGTERM, cleaning up"; exit 143' TERM
echo "step 1 of 3: compiling"
while true; do sleep 0.2; done
"""


def build_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "build.py").write_text(BUILD_FACTORY)
    (tmp_path / "work.sh").write_text(WORK_SCRIPT)
    (tmp_path / "pids.txt").touch()
    return flows, {
        "WORK_SCRIPT": str(tmp_path / "work.sh"),
        "PIDS_FILE": str(tmp_path / "pids.txt"),
    }


def pids(cwd: Path) -> list[int]:
    return [int(line) for line in (cwd / "pids.txt").read_text().split()]


def kill_leftovers(cwd: Path) -> None:
    """A failed test must not leave its command looping: it runs in its own session."""
    for pid in pids(cwd):
        if not group_gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def wait_for_agent(cwd: Path, worker: Worker, n: int = 1) -> int:
    wait_for(lambda: len(pids(cwd)) >= n, 30, "the command to start", explain=worker.logs)
    return pids(cwd)[-1]


def comment_texts(stage: Stage, page: str) -> list[str]:
    return ["".join(part["plain_text"] for part in c["rich_text"]) for c in stage.comments(page)]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Db]:
    found = Db(f"sqlite:///{tmp_path / 'nfactory.db'}")
    yield found
    found.dispose()


def test_moving_the_card_to_cancelled_stops_its_command_within_the_poll_plus_5s(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    flows, env = build_env(tmp_path)
    stage = Stage.create(emulator, tmp_path, database.url, workflows=flows, **env)
    page = stage.add_card("Long build", "build")
    worker = Worker(stage, "solo")
    try:
        pid = wait_for_agent(tmp_path, worker)
        wait_for(lambda: stage.column(page) == "Running", 20, "the card to show Running")
        stage.move(page, "Cancelled")
        took = wait_for(
            lambda: group_gone(pid), BOUND, "the command's process group", explain=worker.logs
        )
        print(f"process group gone {took:.2f}s after the card was moved to Cancelled")
        wait_for(
            lambda: any("Cancelled at" in text for text in comment_texts(stage, page)),
            20,
            "the summary comment",
            explain=worker.logs,
        )
        code, _ = worker.terminate(within=20)
    finally:
        worker.kill()
        kill_leftovers(tmp_path)
    assert code == 0, worker.logs()
    assert stage.column(page) == "Cancelled"
    reason = "cancelled by a person moving the card to Cancelled while 'build' was running"
    (summary,) = comment_texts(stage, page)
    assert reason in summary
    markdown = stage.markdown(page)
    assert "step 1 of 3: compiling" in markdown  # its output so far
    assert "got SIGTERM, cleaning up" in markdown  # its trap ran: SIGTERM, not SIGKILL
    ((status, error),) = [(t["status"], t["last_error"]) for t in database.tasks()]
    assert (status, error) == ("cancelled", reason)
    assert database.leases_held() == 0
    stage.close()


@dataclass
class LocalStage:
    """What harness.Worker needs of a stage, for a worker on the local board (no Notion)."""

    cwd: Path
    env: dict[str, str]


def test_nfactory_task_cancel_stops_the_command_on_the_local_board(
    tmp_path: Path, sqlite_db: Db
) -> None:
    flows, extra = build_env(tmp_path)
    env = {
        "NFACTORY_DATABASE_URL": sqlite_db.url,
        "NFACTORY_WORKFLOWS": str(flows),
        "NFACTORY_POLL_SECONDS": str(POLL),
        "NOTION_BOARD_ID": "",
        **extra,
    }
    made = cli(tmp_path, env, "task", "create", "--factory", "build", "--title", "Long build")
    assert made.returncode == 0, made.stderr
    task_id = made.stdout.strip()
    worker = Worker(cast(Stage, LocalStage(tmp_path, env)), "solo")
    try:
        pid = wait_for_agent(tmp_path, worker)
        asked = cli(tmp_path, env, "task", "cancel", "--task", task_id[:8])
        at = time.monotonic()
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert f"cancel requested for {task_id} (running build on worker solo)" in asked.stdout
        wait_for(lambda: group_gone(pid), 5, "the command's process group", explain=worker.logs)
        print(f"process group gone {time.monotonic() - at:.2f}s after `nfactory task cancel`")
        wait_for(
            lambda: any(isinstance(e, CommentEffect) for e in card_log(sqlite_db.engine, task_id)),
            20,
            "the summary on the local card",
            explain=worker.logs,
        )
        code, _ = worker.terminate(within=20)
    finally:
        worker.kill()
        kill_leftovers(tmp_path)
    assert code == 0, worker.logs()
    reason = "cancelled by `nfactory task cancel` while 'build' was running"
    shown = cli(tmp_path, env, "status", "--json")
    assert '"status": "cancelled"' in shown.stdout and reason in shown.stdout
    card = card_log(sqlite_db.engine, task_id)
    comments = [e.text for e in card if isinstance(e, CommentEffect)]
    pages = [e.markdown for e in card if isinstance(e, PageEffect)]
    assert len(comments) == 1 and reason in comments[0]
    assert len(pages) == 1 and "step 1 of 3: compiling" in pages[0]

    again = cli(tmp_path, env, "task", "cancel", "--task", task_id)
    assert again.returncode == 1
    assert f"task {task_id} has already finished (cancelled); nothing to cancel" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    missing = cli(tmp_path, env, "task", "cancel", "--task", "no-such-task")
    assert missing.returncode == 1 and "no task with id 'no-such-task'" in missing.stderr


@pytest.mark.postgres
def test_a_cancel_seen_by_another_worker_stops_the_agent_where_it_runs(
    emulator: EmulatorServer, tmp_path: Path, pg_db: Db
) -> None:
    """Worker A runs the command and polls the board only once a minute; worker B polls
    every 0.5 s and is the one to see the card moved to Cancelled. A stops its agent."""
    flows, env = build_env(tmp_path)
    stage = Stage.create(emulator, tmp_path, pg_db.url, workflows=flows, **env)
    page = stage.add_card("Long build", "build")
    a = Worker(stage, "a", NFACTORY_POLL_SECONDS="60")
    b = None
    try:
        pid = wait_for_agent(tmp_path, a)
        wait_for(lambda: stage.column(page) == "Running", 20, "the card to show Running")
        b = Worker(stage, "b")
        wait_for(lambda: "worker b started" in b.logs(), 30, "worker b", explain=b.logs)
        stage.move(page, "Cancelled")
        took = wait_for(lambda: group_gone(pid), BOUND, "the process group", explain=a.logs)
        print(f"process group gone {took:.2f}s after the card was moved (seen by worker b)")
        wait_for(lambda: pg_db.statuses() == {"cancelled": 1}, 20, "the run to end")
        for w in (a, b):
            code, _ = w.terminate(within=20)
            assert code == 0, w.logs()
    finally:
        a.kill()
        if b is not None:
            b.kill()
        kill_leftovers(tmp_path)
    (last,) = [t for t in pg_db.transitions() if t["reason"] == "run.cancelled"]
    assert last["worker_id"] == "a"  # stopped where it ran
    assert last["error"] == (
        "cancelled by a person moving the card to Cancelled while 'build' was running"
    )
    stage.close()
