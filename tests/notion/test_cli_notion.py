"""The CLI against a Notion board (the emulator): setup, doctor, cards, ticks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from integrations.notion_emulator import render
from integrations.notion_emulator.server import EmulatorServer

NFACTORY = Path(sys.executable).with_name("nfactory")
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def cli(tmp: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NFACTORY), *args],
        cwd=tmp,
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def column(emu: EmulatorServer, page_id: str) -> str:
    ws = emu.workspace
    with ws.lock:
        return render.page(ws, ws.page(page_id))["properties"]["State"]["select"]["name"]


def test_setup_doctor_create_and_tick_on_a_notion_board(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    root = httpx.get(f"{emulator.base_url}/_emulator/root").json()["page_id"]
    env = {
        "NOTION_TOKEN": emulator.token,
        "NOTION_BASE_URL": emulator.base_url,
        "NFACTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "NFACTORY_WORKFLOWS": str(WORKFLOWS),
    }
    no_board = cli(tmp_path, env, "doctor")
    assert no_board.returncode == 1 and "NOTION_BOARD_ID is not set" in no_board.stdout

    made = cli(tmp_path, env, "board", "setup", "--parent-page", root, "--title", "Work")
    assert made.returncode == 0, made.stderr
    board_id = re.search(r"NOTION_BOARD_ID=([0-9a-f-]{36})", made.stdout)
    assert board_id is not None, made.stdout
    env["NOTION_BOARD_ID"] = board_id.group(1)

    again = cli(tmp_path, env, "board", "setup")
    assert again.returncode == 0 and "is ready" in again.stdout, again.stdout + again.stderr
    doctor = cli(tmp_path, env, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    for name in ("database", "factories", "token", "board", "schema", "comments"):
        assert re.search(rf"OK\s+{name}", doctor.stdout), doctor.stdout

    created = cli(
        tmp_path,
        env,
        "task",
        "create",
        "--factory",
        "triage",
        "--title",
        "App crashes",
        "--body",
        "There is an error on login",
    )
    assert created.returncode == 0, created.stderr
    page_id = created.stdout.strip()
    assert column(emulator, page_id) == "Queue"

    ticked = cli(tmp_path, env, "tick")
    assert ticked.returncode == 0, ticked.stderr
    assert "1 new" in ticked.stdout
    assert column(emulator, page_id) == "Done"
    status = cli(tmp_path, env, "status", "--json")
    assert '"status": "done"' in status.stdout


def test_a_wrong_token_is_one_clear_line_without_the_token(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    secret = "secret_wrong_0123456789abcdef"
    env = {
        "NOTION_TOKEN": secret,
        "NOTION_BASE_URL": emulator.base_url,
        "NOTION_BOARD_ID": "8c5e4ba2-2fb5-4a5e-9b2a-1d2f1b0c9e11",
        "NFACTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "NFACTORY_WORKFLOWS": str(WORKFLOWS),
    }
    doctor = cli(tmp_path, env, "doctor")
    assert doctor.returncode == 1
    assert "NOTION_TOKEN is wrong or revoked" in doctor.stdout
    tick = cli(tmp_path, env, "tick")
    assert tick.returncode == 1
    assert tick.stderr.count("\n") == 1 and "401" in tick.stderr
    for output in (doctor.stdout, doctor.stderr, tick.stdout, tick.stderr):
        assert secret not in output
