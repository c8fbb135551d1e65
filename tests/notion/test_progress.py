"""Live progress on the card: a running agent's latest line on its Notion page.

The worker runs as in `nfactory start` (its scheduler jobs) against the emulator
over HTTP; the page is read back through a second real client, as anyone looking
at the card would see it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from factory import AgentInput, action, define_factory, done, failed
from factory.store.outbox import backlog
from factory.worker import Worker, WorkerConfig
from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import TokenBucket
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.world import World

INTERVAL = 1.0  # NFACTORY_PROGRESS_SECONDS, shortened for the tests
FAST = WorkerConfig(
    poll_seconds=2.0,  # intake requests leave budget to spare, as in production (10 s)
    concurrency=4,
    deliver_seconds=0.2,
    dispatch_seconds=0.1,
    progress_seconds=INTERVAL,
    progress_check_seconds=0.2,  # looked at five times per interval: coalescing shows
)


class Gates:
    """Per card: the agent reports until the test has seen its line on the page."""

    def __init__(self) -> None:
        self.go = {
            f"{kind}:{state}": threading.Event()
            for kind in ("sync", "async")
            for state in ("build", "check")
        }
        self.ran: dict[str, tuple[float, float]] = {}  # kind:state -> (start, end) monotonic

    def open(self, *names: str) -> None:
        for name in names or list(self.go):
            self.go[name].set()


def factories(gates: Gates) -> dict[str, Any]:
    def sync_agent(inp: AgentInput) -> dict[str, Any]:
        start = time.monotonic()
        i = 0
        while not gates.go[f"sync:{inp.state_id}"].is_set() and time.monotonic() - start < 60:
            i += 1
            inp.progress(f"sync line {i}")
            time.sleep(0.05)
        gates.ran[f"sync:{inp.state_id}"] = (start, time.monotonic())
        return {"status": "done", "page": "sync final output"}

    async def async_agent(inp: AgentInput) -> dict[str, Any]:
        start = time.monotonic()
        i = 0
        while not gates.go[f"async:{inp.state_id}"].is_set() and time.monotonic() - start < 60:
            i += 1
            inp.progress(f"async line {i}\nwith a second line")
            await asyncio.sleep(0.05)
        gates.ran[f"async:{inp.state_id}"] = (start, time.monotonic())
        return {"status": "done", "page": f"async output of {inp.state_id}"}

    def two_steps(agent: Callable[..., Any], fid: str) -> Any:
        return define_factory(
            id=fid,
            start="build",
            states={
                "build": action(agent, on={"done": "check", "failed": "broken"}),
                "check": action(agent, on={"done": "end", "failed": "broken"}),
                "end": done(),
                "broken": failed(),
            },
        )

    return {"psync": two_steps(sync_agent, "psync"), "pasync": two_steps(async_agent, "pasync")}


@pytest.fixture
async def reader(emulator: EmulatorServer) -> AsyncIterator[NotionClient]:
    """Someone looking at the card: a real client with its own budget. The emulator's own
    limit is off, so the reader takes nothing from the bot: its bucket alone paces it."""
    url = f"{emulator.base_url}/_emulator/config"
    await asyncio.to_thread(lambda: httpx.put(url, json={"rate_limit": 0}).raise_for_status())
    client = NotionClient(emulator.token, emulator.base_url, bucket=TokenBucket(10, 10))
    yield client
    await client.aclose()


async def page_text(reader: NotionClient, page: str) -> str:
    return str((await reader.get_markdown(page)).get("markdown", ""))


async def until(predicate: Callable[[], Any], limit: float = 60.0) -> Any:
    async with asyncio.timeout(limit):
        while not (found := await predicate()):  # noqa: ASYNC110 - the page is elsewhere
            await asyncio.sleep(0.2)
        return found


def ordered(text: str, *parts: str) -> bool:
    at = [text.find(p) for p in parts]
    return all(i >= 0 for i in at) and at == sorted(at)


async def test_progress_shows_on_the_page_while_agents_run_and_is_gone_at_the_end(
    emulator: EmulatorServer, tmp_path: Path, reader: NotionClient
) -> None:
    gates = Gates()
    world = await World(emulator, str(tmp_path / "db.sqlite"), factories(gates)).open()
    assert world.board is not None
    worker = Worker(world.engine, world.board, FAST)
    try:
        sync_page = world.add_card("Sync worker", "psync")
        async_page = world.add_card("Async worker", "pasync")
        worker.start()

        # before either agent ends, each page shows its latest line under the run's log
        async def shown(page: str, marker: str) -> str | None:
            text = await page_text(reader, page)
            return text if marker in text else None

        text = await until(lambda: shown(sync_page, "⏳ build: sync line"))
        assert ordered(text, "run started", "⏳ build: sync line")
        text = await until(lambda: shown(async_page, "⏳ build: async line"))
        # one line on the card, whatever the agent printed
        assert "with a second line" in text and "\nwith a second line" not in text
        assert not gates.ran  # neither agent has ended

        # next step: the new progress block sits under the log line of the step before
        gates.open("sync:build", "async:build")
        for page, who in ((sync_page, "sync"), (async_page, "async")):
            text = await until(lambda p=page, w=who: shown(p, f"⏳ check: {w} line"))
            assert ordered(text, "**build** → **check**", f"⏳ check: {who} line")
            assert "⏳ build" not in text  # the first step's line did not stay behind
        gates.open("sync:check", "async:check")

        await until(
            lambda: _settled(world, [sync_page, async_page]), limit=60
        )  # both Done, outbox empty
        for page in (sync_page, async_page):
            final = await page_text(reader, page)
            assert "⏳" not in final  # no stale progress line
            assert ordered(final, "run started", "**build** → **check**", "**check** → **end**")
        assert "sync final output" in await page_text(reader, sync_page)
        assert ordered(
            await page_text(reader, async_page), "async output of build", "async output of check"
        )

        # the request budget: per card and agent step, at most one progress write per
        # interval (plus the first), and one removal per step
        stats = world.client.stats
        allowed = sum(math.ceil((end - start) / INTERVAL) + 1 for start, end in gates.ran.values())
        assert len(gates.ran) == 4
        assert 4 <= stats.spare <= allowed
        assert world.board.progress.removed <= 4
    finally:
        gates.open()
        await worker.stop(grace=10)
        await world.close()


async def _settled(world: World, pages: list[str]) -> bool:
    return all(world.column(p) == "Done" for p in pages) and backlog(world.db) == 0


async def test_progress_is_dropped_when_the_rate_budget_has_nothing_to_spare(
    emulator: EmulatorServer, tmp_path: Path, reader: NotionClient
) -> None:
    gates = Gates()
    # a bucket of one token: each request needs all of it, so none is ever spare
    world = await World(
        emulator, str(tmp_path / "db.sqlite"), factories(gates), rate=3.0, burst=1
    ).open()
    assert world.board is not None
    worker = Worker(world.engine, world.board, FAST)
    try:
        page = world.add_card("Busy board", "pasync")
        worker.start()
        await until(lambda: _reported(world, page))
        await asyncio.sleep(3 * INTERVAL)  # several intervals in which progress was due
        gates.open()
        await until(lambda: _settled(world, [page]))
        stats = world.client.stats
        assert stats.spare == 0 and stats.skipped > 0  # asked, never sent
        final = await page_text(reader, page)
        assert "⏳" not in final and "async output of check" in final  # deliveries all landed
    finally:
        gates.open()
        await worker.stop(grace=10)
        await world.close()


async def _reported(world: World, page: str) -> bool:
    latest = world.engine.progress.latest()
    return any(u.title == "Busy board" for u in latest.values())
