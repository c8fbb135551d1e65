"""An emulator per test module with Notion's rate limit off, so worker processes go fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.traffic import EmulatorConfig
from tests.conftest import _truncate as truncate
from tests.worker.harness import Db

TOKEN = "secret_worker_process_tests"


@pytest.fixture(scope="module")
def _worker_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(TOKEN, config=EmulatorConfig(rate_limit=None)) as server:
        yield server


@pytest.fixture
def emulator(_worker_emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    httpx.post(f"{_worker_emulator.base_url}/_emulator/reset").raise_for_status()
    yield _worker_emulator


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """An empty database for worker processes: a SQLite file, then the session's PostgreSQL."""
    if request.param == "sqlite":
        found = Db(f"sqlite:///{tmp_path / 'nfactory.db'}")
    else:
        found = Db(request.getfixturevalue("pg_url"))
        truncate(found.engine)
    yield found
    found.dispose()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Db]:
    found = Db(pg_url)
    truncate(found.engine)
    yield found
    found.dispose()
