"""Shared fixtures: one emulator served over real HTTP per session, reset per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import notion_client
import pytest

from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

TOKEN = "secret_test_token"


@pytest.fixture(scope="session")
def _server() -> Iterator[EmulatorServer]:
    # Rate limiting off by default so tests are fast; tests that want 429s turn it on
    # through PUT /_emulator/config, and the per-test reset turns it off again.
    with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=0)) as server:
        yield server


@pytest.fixture
def emulator(_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The running emulator, freshly reset: only the bot, one person and the root page."""
    httpx.post(f"{_server.base_url}/_emulator/reset").raise_for_status()
    clock = _server.workspace.clock
    yield _server
    _server.workspace.clock = clock


@pytest.fixture
def root(emulator: EmulatorServer) -> str:
    return httpx.get(f"{emulator.base_url}/_emulator/root").json()["page_id"]


def make_client(emulator: EmulatorServer, **options: Any) -> notion_client.Client:
    return notion_client.Client(auth=emulator.token, base_url=emulator.base_url, **options)


@pytest.fixture
def notion(emulator: EmulatorServer) -> Iterator[notion_client.Client]:
    client = make_client(emulator)
    yield client
    client.close()


@pytest.fixture
async def anotion(emulator: EmulatorServer) -> AsyncIterator[notion_client.AsyncClient]:
    client = notion_client.AsyncClient(auth=emulator.token, base_url=emulator.base_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest, emulator: EmulatorServer) -> AsyncIterator[Any]:
    """The sync and the async client in turn; tests `await call(...)` either way."""
    if request.param == "sync":
        client: Any = make_client(emulator)
        yield client
        client.close()
    else:
        client = notion_client.AsyncClient(auth=emulator.token, base_url=emulator.base_url)
        yield client
        await client.aclose()
