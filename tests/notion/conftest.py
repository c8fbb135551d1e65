"""The emulator over real HTTP for the Notion board tests, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig

TOKEN = "secret_notion_board_tests"


@pytest.fixture(scope="session")
def _notion_server() -> Iterator[EmulatorServer]:
    # Notion's own limit (3 requests/s average) unless a test changes it.
    with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=3, burst=10)) as server:
        yield server


@pytest.fixture
def emulator(_notion_server: EmulatorServer) -> Iterator[EmulatorServer]:
    httpx.post(f"{_notion_server.base_url}/_emulator/reset").raise_for_status()
    yield _notion_server
