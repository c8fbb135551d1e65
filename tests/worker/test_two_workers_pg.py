"""Two `nfactory start` processes share one PostgreSQL database and one board: 40 cards,
each worked by one worker at a time, each done once, the work spread across both."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from integrations.notion_emulator.server import EmulatorServer
from tests.worker.harness import (
    Db,
    Stage,
    Worker,
    assert_log_once,
    linear_factory_source,
    wait_for,
)

pytestmark = pytest.mark.postgres

CARDS = 40
STEPS = ("fetch", "shape", "ship")
# a short agent sleep, so neither worker can take every card before the other starts
QUICK_FACTORY = linear_factory_source("quick", STEPS, 0.15)

Span = tuple[datetime, datetime, str]  # (first started_at, last committed_at, worker)


def spans_by_task(rows: list[dict[str, Any]]) -> dict[str, list[Span]]:
    """Each task's work per lease epoch: when it began, when it ended, and who did it."""
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        grouped.setdefault((r["task_id"], r["epoch"]), []).append(r)
    spans: dict[str, list[Span]] = {}
    for (task_id, epoch), group in grouped.items():
        workers = {r["worker_id"] for r in group}
        assert len(workers) == 1, f"task {task_id} epoch {epoch} written by {workers}"
        span = (
            min(r["started_at"] for r in group),
            max(r["committed_at"] for r in group),
            workers.pop(),
        )
        spans.setdefault(task_id, []).append(span)
    return spans


def test_two_workers_share_40_cards_one_worker_per_card_at_a_time(
    emulator: EmulatorServer, tmp_path: Path, pg_db: Db
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "quick.py").write_text(QUICK_FACTORY)
    # every Done card gets a summary comment here: two workers must never both post it
    stage = Stage.create(
        emulator, tmp_path, pg_db.url, workflows=flows, NFACTORY_SUMMARY_COMMENT="all"
    )
    pages = [stage.add_card(f"Card {i}", "quick") for i in range(CARDS)]

    a = Worker(stage, "worker-a")
    b = Worker(stage, "worker-b")
    try:
        wait_for(
            lambda: pg_db.statuses() == {"done": CARDS} and stage.all_terminal(pages),
            60,
            "both workers to finish all 40 cards",
            explain=lambda: (
                f"tasks {pg_db.statuses()}, columns {Counter(map(stage.column, pages))}, "
                f"backlog {pg_db.backlog()}\n--- a:\n{a.logs()[-3000:]}\n--- b:\n{b.logs()[-3000:]}"
            ),
        )
        (code_a, _), (code_b, _) = a.terminate(within=15), b.terminate(within=15)
    finally:
        a.kill()
        b.kill()
    assert code_a == 0, a.logs()
    assert code_b == 0, b.logs()

    rows = pg_db.transitions()
    runs = pg_db.runs()
    assert len(runs) == CARDS and all(r["status"] == "done" for r in runs), "a card ran twice"
    assert len(rows) == CARDS * len(STEPS)
    assert len({(r["run_id"], r["seq"]) for r in rows}) == len(rows)

    # never two workers on one card at once: their spans of work on it do not overlap
    for task_id, spans in spans_by_task(rows).items():
        for (start, end, who), (start2, end2, other) in itertools.combinations(spans, 2):
            if who != other:
                assert end <= start2 or end2 <= start, f"task {task_id}: overlap {spans}"

    cards_by_worker = Counter(r["worker_id"] for r in rows if r["to_state"] == "done")
    print(f"cards finished per worker: {dict(cards_by_worker)}")
    assert set(cards_by_worker) == {"worker-a", "worker-b"}, "one worker did all the work"
    assert sum(cards_by_worker.values()) == CARDS

    assert pg_db.leases_held() == 0, "a lease was left held after SIGTERM"
    assert pg_db.backlog() == 0
    assert_log_once(stage, pg_db)
    for page in pages:
        assert len(stage.comments(page)) == 1, stage.comments(page)
    stage.close()
