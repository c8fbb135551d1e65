"""What `nfactory tick` from cron costs: one request (the poll) once the board is known.

Through the real CLI and client against the emulator; the emulator counts every
request it answered, by endpoint.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from factory.store import identity
from factory.store.db import open_database
from integrations.notion.identity import RECHECK_AFTER
from integrations.notion_emulator.records import Database
from integrations.notion_emulator.server import EmulatorServer
from tests.notion.test_cli_notion import WORKFLOWS, cli, column, notion_env

POLL = "POST /v1/data_sources/{data_source_id}/query"
ME = "GET /v1/users/me"
DATABASE = "GET /v1/databases/{database_id}"
SOURCE = "GET /v1/data_sources/{data_source_id}"
USERS = "GET /v1/users"


@pytest.fixture
def env(emulator: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    # every request counted is one the CLI chose to send: no 429 and its retry
    httpx.put(f"{emulator.base_url}/_emulator/config", json={"rate_limit": 0}).raise_for_status()
    found = notion_env(emulator, tmp_path, WORKFLOWS)
    person = httpx.get(f"{emulator.base_url}/_emulator/root").json()["person_id"]
    # an allow-list to resolve: a tick with no card in Feedback must not pay for it
    return {
        **found,
        "NFACTORY_ALLOWED_REPLIERS": person,
        "NFACTORY_CODER_REPO": str(WORKFLOWS.parent),  # code_change needs a git repository
    }


def requests(emulator: EmulatorServer) -> Counter[str]:
    return Counter(httpx.get(f"{emulator.base_url}/_emulator/stats").json()["requests"])


def tick(emulator: EmulatorServer, tmp: Path, env: dict[str, str]) -> tuple[Counter[str], str]:
    """One `nfactory tick`: the requests it sent, by endpoint, and what it wrote to stderr."""
    before = requests(emulator)
    done = cli(tmp, env, "tick")
    assert done.returncode == 0, done.stdout + done.stderr
    return requests(emulator) - before, done.stderr


def age_the_check(tmp: Path, board_id: str, by: timedelta) -> None:
    """As if the board had last been asked about `by` ago (ticks read the database)."""
    db = open_database(f"sqlite:///{tmp / 'db.sqlite'}")
    with db.begin() as conn:
        row = identity.load_identity(conn, board_id)
        assert row is not None
        identity.save_identity(
            conn,
            identity.IdentityRow(
                row.board_ref,
                row.data_source_id,
                row.database_id,
                row.title,
                row.bot_id,
                row.checked_at - by,
            ),
        )
    db.dispose()


def test_a_second_idle_tick_costs_exactly_the_poll(
    emulator: EmulatorServer, tmp_path: Path, env: dict[str, str]
) -> None:
    first, _ = tick(emulator, tmp_path, env)
    assert first == Counter({DATABASE: 1, ME: 1, POLL: 1})  # no user listing: nobody waits
    for _ in range(2):
        again, _ = tick(emulator, tmp_path, env)
        assert again == Counter({POLL: 1})


def test_a_tick_asks_again_once_the_check_is_an_hour_old(
    emulator: EmulatorServer, tmp_path: Path, env: dict[str, str]
) -> None:
    tick(emulator, tmp_path, env)
    age_the_check(tmp_path, env["NOTION_BOARD_ID"], RECHECK_AFTER - timedelta(minutes=1))
    assert tick(emulator, tmp_path, env)[0] == Counter({POLL: 1})
    age_the_check(tmp_path, env["NOTION_BOARD_ID"], timedelta(minutes=2))
    assert tick(emulator, tmp_path, env)[0] == Counter({DATABASE: 1, ME: 1, POLL: 1})
    assert tick(emulator, tmp_path, env)[0] == Counter({POLL: 1})


def test_another_board_id_never_uses_the_old_boards_identity(
    emulator: EmulatorServer, tmp_path: Path, env: dict[str, str]
) -> None:
    tick(emulator, tmp_path, env)
    root = httpx.get(f"{emulator.base_url}/_emulator/root").json()["page_id"]
    made = cli(tmp_path, env, "board", "setup", "--parent-page", root, "--title", "Other")
    other = re.search(r"NOTION_BOARD_ID=([0-9a-f-]{36})", made.stdout)
    assert other is not None, made.stdout + made.stderr
    env = {**env, "NOTION_BOARD_ID": other.group(1)}
    created = cli(
        tmp_path,
        env,
        "task",
        "create",
        "--factory",
        "triage",
        "--title",
        "Crash",
        "--body",
        "error",
    )
    assert created.returncode == 0, created.stderr
    sent, _ = tick(emulator, tmp_path, env)
    assert sent[DATABASE] == 1 and sent[ME] == 1  # asked about, not read from the old row
    assert column(emulator, created.stdout.strip()) == "Done"  # the new board was polled


@contextmanager
def unshared(emulator: EmulatorServer, database_id: str) -> Iterator[None]:
    """The board is not shared with the integration (or deleted): Notion answers 404."""
    ws = emulator.workspace
    with ws.lock:
        database = ws.nodes.pop(database_id)
        assert isinstance(database, Database)
        sources = {i: ws.data_sources.pop(i) for i in database.data_source_ids}
    try:
        yield
    finally:
        with ws.lock:
            ws.nodes[database_id] = database
            ws.data_sources.update(sources)


def test_a_board_that_went_away_is_asked_about_again_and_reported(
    emulator: EmulatorServer, tmp_path: Path, env: dict[str, str]
) -> None:
    board_id = env["NOTION_BOARD_ID"]
    tick(emulator, tmp_path, env)
    with unshared(emulator, board_id):
        # the remembered data source fails: the board is resolved again, once, and is gone
        sent, stderr = tick(emulator, tmp_path, env)
        assert sent == Counter({POLL: 1, DATABASE: 1, SOURCE: 1})
        assert f"NOTION_BOARD_ID={board_id} cannot be read" in stderr
        assert "no longer shared with the integration" in stderr
        # nothing wrong is remembered: the next tick asks Notion and stops with the reason
        before = requests(emulator)
        failed = cli(tmp_path, env, "tick")
        assert failed.returncode == 1
        assert f"NOTION_BOARD_ID={board_id} cannot be read" in failed.stderr
        assert requests(emulator) - before == Counter({DATABASE: 1, SOURCE: 1})
    # shared again: found, remembered, and cheap again
    assert tick(emulator, tmp_path, env)[0] == Counter({DATABASE: 1, ME: 1, POLL: 1})
    assert tick(emulator, tmp_path, env)[0] == Counter({POLL: 1})


def test_doctor_always_asks_notion_and_refreshes_what_ticks_remember(
    emulator: EmulatorServer, tmp_path: Path, env: dict[str, str]
) -> None:
    tick(emulator, tmp_path, env)
    age_the_check(tmp_path, env["NOTION_BOARD_ID"], 2 * RECHECK_AFTER)
    for _ in range(2):
        before = requests(emulator)
        doctor = cli(tmp_path, env, "doctor")
        assert doctor.returncode == 0, doctor.stdout
        sent = requests(emulator) - before
        assert sent[DATABASE] >= 1 and sent[ME] >= 1 and sent[USERS] >= 1
    assert tick(emulator, tmp_path, env)[0] == Counter({POLL: 1})  # doctor's check counts
