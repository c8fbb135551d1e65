"""The emulator over real HTTP for the Notion board tests, reset before each test."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from integrations.notion.client import NotionClient
from integrations.notion.ratelimit import TokenBucket
from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

TOKEN = "secret_notion_board_tests"

# Retries in tests wait milliseconds, not Notion-sized seconds; the policy is the same.
FAST_RETRIES: dict[str, Any] = {"backoff_base": 0.01, "backoff_cap": 0.2, "max_attempts": 8}


@pytest.fixture(scope="session")
def _notion_server() -> Iterator[EmulatorServer]:
    # Notion's own limit (3 requests/s average) unless a test changes it.
    with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=3, burst=10)) as server:
        yield server


@pytest.fixture
def emulator(_notion_server: EmulatorServer) -> Iterator[EmulatorServer]:
    httpx.post(f"{_notion_server.base_url}/_emulator/reset").raise_for_status()
    yield _notion_server


MakeClient = Callable[..., NotionClient]


@pytest.fixture
async def make_client(emulator: EmulatorServer) -> AsyncIterator[MakeClient]:
    """NotionClients on the emulator; each gets its own bucket unless given one.

    A private bucket keeps tests independent: the process-wide bucket of the
    test token would carry one test's pauses and spent tokens into the next.
    """
    made: list[NotionClient] = []

    def make(**options: Any) -> NotionClient:
        settings: dict[str, Any] = {"rate": 3.0, "burst": 3, "timeout": 5.0, **FAST_RETRIES}
        settings.update(options)
        if "bucket" not in settings:
            settings["bucket"] = TokenBucket(settings["rate"], settings["burst"])
        settings.setdefault("rng", random.Random(1234))
        token = settings.pop("token", emulator.token)
        base_url = settings.pop("base_url", emulator.base_url)
        client = NotionClient(token, base_url, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def client(make_client: MakeClient) -> NotionClient:
    """A client paced as in production (3 requests/s, burst 3) with fast retries."""
    return make_client()
