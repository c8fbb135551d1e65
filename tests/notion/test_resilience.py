"""Journeys while Notion misbehaves: faults, an outage, and a rate limit equal to ours.

Whatever happens, every log line and every comment lands exactly once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from factory.store.outbox import backlog
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.journeys_factories import ALL, LONG_LINES
from tests.notion.world import World

pytestmark = pytest.mark.slow
TERMINAL = {"Done", "Failed", "Blocked", "Cancelled"}


async def drive(world: World, pages: dict[str, str], answer: str, seconds: float) -> None:
    """Cycle until every card is finished and delivered, answering the one question asked."""
    answered = False
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await world.cycle()
        if (
            not answered
            and world.column(pages["ask"]) == "Feedback"
            and world.comments(pages["ask"])
        ):
            world.comment(pages["ask"], "Blue")
            answered = True
        if all(world.column(p) in TERMINAL for p in pages.values()) and backlog(world.db) == 0:
            return
        await asyncio.sleep(0.2)
    columns = {name: world.column(p) for name, p in pages.items()}
    raise AssertionError(f"not finished in {seconds}s: {columns}")


def add_cards(world: World) -> dict[str, str]:
    return {
        "five": world.add_card("Five steps", "five"),
        "ask": world.add_card("Question", "ask"),
        "long": world.add_card("Long output", "long"),
        "flaky": world.add_card("Flaky", "flaky"),
    }


def assert_everything_once(world: World, pages: dict[str, str]) -> None:
    five = world.markdown(pages["five"])
    for i in range(1, 6):
        assert five.count(f"s{i} finished") == 1, five
    assert five.count("notion-factory log") == 1
    assert world.comments(pages["five"]) == []  # Done: no summary comment by default
    assert world.comments(pages["ask"]) == [
        ("bot", "Which colour for 'Question'?"),
        ("person", "Blue"),
    ]
    long = world.markdown(pages["long"])
    for line in LONG_LINES:
        assert long.count(line) == 1
    assert world.column(pages["flaky"]) == "Failed"
    assert [who for who, _ in world.comments(pages["flaky"])] == ["bot"]


async def test_twenty_percent_faults_lose_and_duplicate_nothing(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    world = await World(emulator, str(tmp_path / "db.sqlite"), ALL, timeout=1.0).open()
    try:
        pages = add_cards(world)
        world.configure(
            fault_rate=0.2,
            fault_statuses=[429, 500, 502, 503, 504],
            # some writes are held past the client's timeout and still land
            timeout_rate=0.05,
            timeout_seconds=1.3,
            seed=20261123,
        )
        await drive(world, pages, "Blue", seconds=120)
        world.configure(fault_rate=0, timeout_rate=0)
        stats = world.stats()
        faults = stats["faults_total"]
        assert faults > 0 and stats["delayed"] > 0  # both failure kinds really happened
        assert_everything_once(world, pages)
        print(f"faults injected: {faults}, client retries: {world.client.stats.retries}")
    finally:
        await world.close()


async def test_a_thirty_second_outage_is_ridden_out(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    world = await World(emulator, str(tmp_path / "db.sqlite"), ALL).open()
    try:
        pages = add_cards(world)
        await world.cycle()  # cards taken in, some running
        world.configure(outage={"start": 0, "end": 30})
        started = time.monotonic()
        await drive(world, pages, "Blue", seconds=120)
        assert time.monotonic() - started >= 25  # nothing could finish inside the outage
        assert world.stats()["outage_rejections"] > 0
        assert_everything_once(world, pages)
    finally:
        await world.close()


async def test_no_429_when_our_limit_equals_notions(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    world = await World(emulator, str(tmp_path / "db.sqlite"), ALL, rate=3.0, burst=3).open()
    try:
        world.configure(rate_limit=3, burst=3)
        pages = {f"c{i}": world.add_card(f"Card {i}", "five") for i in range(6)}
        deadline = time.monotonic() + 90
        while any(world.column(p) != "Done" for p in pages.values()):
            assert time.monotonic() < deadline
            await world.cycle()
        assert world.stats()["rate_limited"] == 0
        assert world.client.stats.rate_limited == 0
    finally:
        await world.close()
