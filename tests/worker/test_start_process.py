"""`nfactory start` as people run it: a subprocess works a backlog of 50 cards, then stops
cleanly on SIGTERM with no lease held, nothing left in the outbox, and each log once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.notion_emulator.server import EmulatorServer
from tests.worker.harness import Db, Stage, Worker, assert_log_once, wait_for

CARDS = 50
# triage routes on keywords: a bug, a feature, a question, and one it cannot place
TITLES = (
    ("Login crashes with an error", "Done"),
    ("Would like to add dark mode", "Done"),
    ("How do I export a board?", "Done"),
    ("Lunch", "Blocked"),
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    found = Db(f"sqlite:///{tmp_path / 'nfactory.db'}")
    yield found
    found.dispose()


def test_start_works_a_backlog_of_50_cards_and_stops_cleanly_on_sigterm(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    stage = Stage.create(emulator, tmp_path, db.url)
    expected: dict[str, str] = {}
    for i in range(CARDS):
        title, column = TITLES[i % len(TITLES)]
        expected[stage.add_card(f"{title} #{i}", "triage")] = column
    pages = list(expected)

    worker = Worker(stage, "solo")
    try:
        took = wait_for(lambda: stage.all_terminal(pages), 60, "all 50 cards in a terminal column")
        print(f"50 cards reached a terminal column in {took:.1f}s")
        code, stop_took = worker.terminate(within=15)
        print(f"exited {stop_took:.1f}s after SIGTERM")
    finally:
        worker.kill()
    logs = worker.logs()
    assert code == 0, logs
    assert "worker stopped" in logs and "Traceback" not in logs, logs

    assert {p: stage.column(p) for p in pages} == expected
    assert db.task_count() == CARDS
    assert db.statuses() == Counter(column.lower() for column in expected.values())
    assert db.leases_held() == 0, "a lease was left held after SIGTERM"
    assert db.backlog() == 0, "the outbox was not flushed on stop"
    assert_log_once(stage, db)
    # one summary comment per Blocked card, none twice; none on a Done card (the default)
    for page in pages:
        wanted = 0 if expected[page] == "Done" else 1
        assert len(stage.comments(page)) == wanted, (expected[page], stage.comments(page))
    stage.close()


HANGING_FACTORY = """
import os
import time

from factory import action, define_factory, done, failed


def work(inp):
    time.sleep(float(os.environ.get("HANG_SECONDS", "0")))  # a long agent call
    return {"status": "done"}


FACTORY = define_factory(
    id="hang",
    start="work",
    states={
        "work": action(work, on={"done": "done", "failed": "failed"}),
        "done": done(),
        "failed": failed(),
    },
)
"""


def test_sigterm_with_agents_running_releases_their_leases_within_the_grace(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    """Agents that outlive the grace are abandoned, their leases released, not left to
    expire: another worker picks the cards up at once (the lease is 60 s here)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hang.py").write_text(HANGING_FACTORY)
    stage = Stage.create(
        emulator,
        tmp_path,
        db.url,
        workflows=flows,
        NFACTORY_LEASE_SECONDS="60",
        NFACTORY_SHUTDOWN_GRACE_SECONDS="1",
    )
    pages = [stage.add_card(f"Long job {i}", "hang") for i in range(3)]
    stuck = Worker(stage, "stuck", HANG_SECONDS="30")
    try:
        wait_for(lambda: db.leases_held() == 3, 20, "three agents running", explain=stuck.logs)
        code, took = stuck.terminate(within=10)
    finally:
        stuck.kill()
    print(f"exited {took:.1f}s after SIGTERM with 3 agents mid-call (grace 1s)")
    assert code == 0, stuck.logs()
    assert db.leases_held() == 0, "leases of unfinished cards were left to expire"
    assert db.statuses() == {"running": 3}

    fresh = Worker(stage, "fresh")
    try:
        wait_for(lambda: stage.all_terminal(pages), 20, "a second worker to finish the cards")
        code, _ = fresh.terminate(within=15)
    finally:
        fresh.kill()
    assert code == 0, fresh.logs()
    assert db.statuses() == {"done": 3}
    assert {t["worker_id"] for t in db.transitions()} == {"fresh"}
    assert_log_once(stage, db)
    stage.close()
