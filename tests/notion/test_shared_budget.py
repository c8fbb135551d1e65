"""One integration's budget shared through the database, as separate workers use it.

Each budget here has its own engine, as each worker process has; the two-worker test
sends real requests through NotionClient to the emulator and counts its 429s.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from factory.settings import SettingsError
from factory.store.budget import read_budget
from factory.store.db import Database, make_engine, migrate
from factory.store.tables import rate_budget as budget_table
from integrations.notion import shared_budget as sb
from integrations.notion.budget_rows import UNBOUND, budget_key
from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import TokenBucket
from integrations.notion.settings import NotionSettings, load_notion_settings
from integrations.notion.setup import setup_board
from integrations.notion.shared_budget import SharedBudget
from integrations.notion.wiring import open_notion_board, rate_budget
from integrations.notion_emulator.server import EmulatorServer


class Stop(Exception):
    """Raised by a recording sleep: the test has seen the wait it wanted."""


def recording(waits: list[float]):  # type: ignore[no-untyped-def]
    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise Stop

    return sleep


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[Database, Database]]:
    """Two engines on one database: two workers."""
    first, second = make_engine(db_url), make_engine(db_url)
    migrate(first)
    yield first, second
    first.dispose()
    second.dispose()


def key() -> str:
    return budget_key(str(uuid.uuid4()))


async def settle(budget: SharedBudget) -> None:
    """Let the budget's background writes (a pause, a give-back) reach the database."""
    while budget._background:
        await asyncio.gather(*budget._background, return_exceptions=True)


async def test_a_second_worker_waits_for_what_the_first_took(
    engines: tuple[Database, Database],
) -> None:
    """Three tokens at a rate of one per 100 s: whoever takes them, the other waits."""
    k = key()
    first = SharedBudget(engines[0], 0.01, 3, key=k)
    waits: list[float] = []
    second = SharedBudget(engines[1], 0.01, 3, key=k, sleep=recording(waits))
    for _ in range(3):
        await first.acquire()
    with pytest.raises(Stop):
        await second.acquire()
    assert waits and waits[0] > 0  # told to wait: the bucket is empty for both
    row = read_budget(engines[1], k)
    assert row is not None and row.tokens < 1
    await settle(first)


async def test_a_429_seen_by_one_worker_pauses_the_other(
    engines: tuple[Database, Database],
) -> None:
    k = key()
    told = SharedBudget(engines[0], 100.0, 3, key=k)
    waits: list[float] = []
    other = SharedBudget(engines[1], 100.0, 3, key=k, sleep=recording(waits))
    told.pause_for(30)
    await settle(told)
    with pytest.raises(Stop):
        await other.acquire()
    # at 100 tokens/s nothing but the pause can make it wait
    assert other.paused_until - other.clock() > 25
    assert waits == [sb.MAX_NAP]


async def test_an_idle_worker_gives_its_unspent_grant_back(
    engines: tuple[Database, Database],
) -> None:
    """Three callers queued take a grant of three; two of them go away before spending:
    after HOLD the two tokens are back in the row for the other workers."""
    k = key()
    budget = SharedBudget(engines[0], 0.01, 3, key=k)
    budget._queued = 2  # two more callers in line behind this one, as acquire counts them
    await budget.acquire()
    budget._queued = 0
    row = read_budget(engines[1], k)
    assert row is not None and row.tokens < 0.1  # all three granted here at once
    await settle(budget)  # the give-back after HOLD
    row = read_budget(engines[1], k)
    assert row is not None and row.tokens == pytest.approx(2, abs=0.1)
    assert budget._held == 0


async def test_tokens_taken_before_the_bot_is_known_are_charged_to_its_row(
    engines: tuple[Database, Database],
) -> None:
    """A starting worker takes from the shared UNBOUND row, then pays them to its own."""
    budget = SharedBudget(engines[0], 0.01, 3)
    assert budget.key == UNBOUND
    await budget.acquire()
    await budget.acquire()
    k = key()
    budget.bind(k)
    await budget.acquire()
    row = read_budget(engines[1], k)
    assert row is not None and row.tokens == pytest.approx(0, abs=0.1)  # 3 - 2 owed - 1
    await settle(budget)


async def test_a_broken_database_falls_back_to_a_slow_bucket_and_says_so_once(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    unmigrated = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no rate_budget table
    budget = SharedBudget(unmigrated, 3.0, 3, key=key())
    with caplog.at_level(logging.WARNING, "nfactory.notion"):
        await budget.acquire()
        await budget.acquire()
    warnings = [r for r in caplog.records if "shared Notion rate budget" in r.getMessage()]
    assert len(warnings) == 1
    assert "0.75 requests/s" in warnings[0].getMessage()
    assert budget._fallback is not None and budget._fallback.rate == 0.75
    unmigrated.dispose()


def test_the_setting_chooses_the_budget(db: Database) -> None:
    base = {"notion_token": "ntn_setting_test"}
    postgres = db.dialect.name == "postgresql"
    auto = rate_budget(NotionSettings(**base), db)  # type: ignore[arg-type]
    assert isinstance(auto, SharedBudget if postgres else TokenBucket)
    on = rate_budget(NotionSettings(**base, notion_rate_shared="on"), db)  # type: ignore[arg-type]
    assert isinstance(on, SharedBudget)
    off = NotionSettings(**base, notion_rate_shared="off")  # type: ignore[arg-type]
    assert isinstance(rate_budget(off, db), TokenBucket)
    assert isinstance(rate_budget(NotionSettings(**base), None), TokenBucket)  # type: ignore[arg-type]
    sb.clear_shared_budgets()


def test_a_wrong_sharing_mode_is_named() -> None:
    with pytest.raises(SettingsError, match="NOTION_RATE_SHARED: Input should be 'auto', 'on'"):
        load_notion_settings(notion_token="ntn_setting_test", notion_rate_shared="yes")


@pytest.mark.postgres
async def test_two_workers_on_one_database_together_stay_within_notion_s_limit(
    pg_url: str, emulator: EmulatorServer
) -> None:
    """Both workers configured with the whole limit (8/s), both sending as fast as they
    may: the emulator, limiting at 8/s too, answers no 429. (Two process buckets at 8/s
    each send 16/s.) Its burst has one request more than ours: the slack for a grant
    and its request reaching the emulator a few milliseconds apart."""
    rate, burst, each = 8.0, 3, 16
    control = httpx.AsyncClient(base_url=emulator.base_url)
    await control.put("/_emulator/config", json={"rate_limit": rate, "burst": burst + 1})
    first, second = make_engine(pg_url), make_engine(pg_url)
    k = key()
    clients = [
        NotionClient(emulator.token, emulator.base_url, bucket=SharedBudget(e, rate, burst, key=k))
        for e in (first, second)
    ]

    async def work(client: NotionClient) -> None:
        await asyncio.gather(*(client.me() for _ in range(each)))

    await asyncio.gather(*(work(c) for c in clients))
    stats = (await control.get("/_emulator/stats")).json()
    assert stats["rate_limited"] == 0
    assert [c.stats.total for c in clients] == [each, each]  # no retries either
    assert stats["total"] == 2 * each
    for client in clients:
        await settle(client.bucket)  # type: ignore[arg-type]
        await client.aclose()
    await control.aclose()
    first.dispose()
    second.dispose()


async def test_opening_the_board_binds_the_budget_to_the_bot(
    db: Database, emulator: EmulatorServer, make_client
) -> None:  # type: ignore[no-untyped-def]
    """With NOTION_RATE_SHARED=on (any database), the worker's client spends from its
    integration's row, named by the bot's id; its first requests came from UNBOUND."""
    async with httpx.AsyncClient(base_url=emulator.base_url) as control:
        root = (await control.get("/_emulator/root")).json()["page_id"]
    made = await setup_board(
        make_client(rate=100.0, burst=100), [], board_id=None, parent_page=root
    )
    settings = NotionSettings(
        notion_token=emulator.token,  # type: ignore[arg-type]
        notion_base_url=emulator.base_url,
        notion_board_id=made.board.data_source_id,
        notion_rate_shared="on",
    )
    sb.clear_shared_budgets()
    async with open_notion_board(settings, db, datetime.now(UTC)) as board:
        budget = board.client.bucket
        assert isinstance(budget, SharedBudget)
        assert budget.key == budget_key(board.bot_id)
        await board.client.me()  # one request on the bound row
        await settle(budget)
    row = read_budget(db, budget_key(board.bot_id))
    unbound = read_budget(db, UNBOUND)
    assert row is not None and unbound is not None
    assert unbound.tokens < budget.burst  # the board and the bot were read on it
    sb.clear_shared_budgets()


@pytest.mark.postgres
async def test_a_row_locked_elsewhere_sends_the_worker_to_its_fallback_not_into_a_hang(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A transaction stuck holding the budget row (a frozen worker, a long manual query):
    this worker gives up on the row after the lock timeout and sends on its own."""
    engine, blocker = make_engine(pg_url), make_engine(pg_url)
    k = key()
    budget = SharedBudget(engine, 3.0, 3, key=k)
    await budget.acquire()  # the row exists now
    with blocker.begin() as conn:
        conn.execute(select(budget_table).where(budget_table.c.key == k).with_for_update())
        with caplog.at_level(logging.WARNING, "nfactory.notion"):
            await budget.acquire()
    assert budget._fallback is not None
    said = [r.getMessage() for r in caplog.records]
    assert any("rate budget in the database failed (OperationalError)" in m for m in said)
    await settle(budget)
    engine.dispose()
    blocker.dispose()
