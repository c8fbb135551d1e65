"""Both boards speak the Board protocol the scheduler is typed against: a poll answers a
PollReport (None where the board has no intake), `request_stats` what the board sent.

The Notion board goes through the real client to the emulator over HTTP; the counts
it reports are checked against what the emulator saw.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from factory.board_protocol import Board, PollReport
from factory.cli.live import RequestRate, render
from factory.cli.metrics import render as render_metrics
from factory.clock import SystemClock
from factory.cycle import run_cycle
from factory.engine import Engine, EngineConfig
from factory.local_board import LocalBoard
from factory.store.db import open_database
from factory.worker import Worker, WorkerConfig, WorkerStats
from integrations.notion.board import NotionBoard
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL
from tests.notion.world import World

POLL = "POST /v1/data_sources/{id}/query"


@pytest.fixture
async def world(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[World]:
    w = await World(emulator, str(tmp_path / "db.sqlite"), ALL).open()
    yield w
    await w.close()


def undashed(ids: list[str]) -> set[str]:
    return {i.replace("-", "") for i in ids}


@pytest.mark.parametrize("board", [LocalBoard, NotionBoard])
def test_each_board_has_every_method_of_the_protocol(board: type) -> None:
    methods = {
        n: f for n, f in vars(Board).items() if inspect.isfunction(f) and not n.startswith("_")
    }
    assert {"poll", "deliver", "replies", "request_stats"} <= methods.keys()
    for name, declared in methods.items():
        assert name in vars(board), f"{board.__name__} has no {name}"
        ours = inspect.signature(getattr(board, name)).parameters
        assert list(ours) == list(inspect.signature(declared).parameters), name


async def test_a_notion_poll_reports_what_it_took_in_and_what_it_sent(world: World) -> None:
    assert world.board is not None
    board: Board = world.board
    runs = world.add_card("Ship it", "five")
    stray = world.add_card("Mystery", "no-such-factory")
    before, seen = board.request_stats(), world.stats()
    assert before is not None

    report = await board.poll(world.factories, SystemClock().now())

    assert isinstance(report, PollReport)
    assert report.seen == 2
    assert undashed(report.created) == undashed([runs])
    assert undashed(report.blocked) == undashed([stray])
    assert report.requeued == report.cancelled == report.errors == []
    assert undashed(report.edited) == undashed([runs, stray])
    after = board.request_stats()
    assert after is not None
    # what the emulator answered, and the poll among it: one query
    assert after.total - before.total == world.stats()["total"] - seen["total"] > 0
    assert after.by_endpoint[POLL] == before.by_endpoint.get(POLL, 0) + 1
    assert after.rate_limited == 0
    # the cycle keeps the poll's report, typed, for `nfactory tick` to print
    assert isinstance((await run_cycle(world.engine, board)).intake, PollReport)


async def test_notion_requests_and_429s_reach_metrics_and_the_live_view(world: World) -> None:
    assert world.board is not None
    board: Board = world.board
    world.configure(rate_limit=1, burst=1)  # the second request in a second gets a 429
    limited_before = world.stats()["rate_limited"]
    await world.client.me()
    await world.client.me()
    # and some server errors, retried too: retries and 429s are counted apart
    world.configure(rate_limit=0, fault_rate=0.5, fault_statuses=[500], seed=7)
    for _ in range(4):
        await world.client.me()
    stats = board.request_stats()
    assert stats is not None
    emulator = world.stats()
    limited = emulator["rate_limited"] - limited_before
    assert limited > 0 and emulator["faults_total"] > 0
    assert stats.rate_limited == limited
    assert stats.retries == limited + emulator["faults_total"]  # each failed attempt retried
    assert stats.errors["rate_limited"] == limited
    assert stats.total == world.client.stats.total

    text = render_metrics(WorkerStats(), world.db, board.request_stats())
    assert f"nfactory_notion_requests_total {stats.total}\n" in text, text
    assert f"nfactory_notion_rate_limited_total {limited}\n" in text, text
    worker = Worker(world.engine, board, WorkerConfig())
    console = Console(record=True, width=160)
    console.print(render(worker, RequestRate(board.request_stats)))
    assert f"429s {limited}" in console.export_text(), console.export_text()


async def test_the_local_board_has_no_intake_and_sends_no_requests(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    clock = SystemClock()
    board: Board = LocalBoard(db, clock)
    engine = Engine(db, dict(ALL), EngineConfig(worker_id="bot"), clock)
    try:
        assert await board.poll(engine.factories, clock.now()) is None
        assert board.request_stats() is None
        assert (await run_cycle(engine, board)).intake is None
        text = render_metrics(WorkerStats(), db, board.request_stats())
        assert "nfactory_notion_requests_total 0\n" in text, text
        console = Console(record=True, width=160)
        worker = Worker(engine, board, WorkerConfig())
        console.print(render(worker, RequestRate(board.request_stats)))
        assert "requests/min 0" in console.export_text()
    finally:
        db.dispose()
