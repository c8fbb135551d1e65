"""The CLI against a Notion board (the emulator): setup, doctor, cards, ticks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from integrations.notion_emulator import render
from integrations.notion_emulator.server import EmulatorServer
from tests.factory_sources import BETA

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
    root = emulator_root(emulator)
    env = emulator_env(emulator, tmp_path, WORKFLOWS)
    env["NFACTORY_CODER_REPO"] = str(WORKFLOWS.parent)  # code_change needs a git repository
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
        "NFACTORY_CODER_REPO": str(WORKFLOWS.parent),  # code_change needs a git repository
    }
    doctor = cli(tmp_path, env, "doctor")
    assert doctor.returncode == 1
    assert "NOTION_TOKEN is wrong or revoked" in doctor.stdout
    tick = cli(tmp_path, env, "tick")
    assert tick.returncode == 1
    assert tick.stderr.count("\n") == 1 and "401" in tick.stderr
    for output in (doctor.stdout, doctor.stderr, tick.stdout, tick.stderr):
        assert secret not in output


def prop_text(emu: EmulatorServer, page_id: str, name: str) -> str:
    ws = emu.workspace
    with ws.lock:
        prop = render.page(ws, ws.page(page_id))["properties"][name]
    return "".join(t["plain_text"] for t in prop["rich_text"])


def status_of(tmp: Path, env: dict[str, str], ref: str) -> dict[str, object]:
    """The task of a card (page id) or task id, as `status --json` shows it."""
    found = cli(tmp, env, "history", "--task", ref, "--json")
    assert found.returncode == 0, found.stderr
    task_id = json.loads(found.stdout)["task_id"]
    shown = cli(tmp, env, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    (task,) = [t for t in json.loads(shown.stdout)["tasks"] if t["id"] == task_id]
    return task


def emulator_root(emulator: EmulatorServer) -> str:
    """The page the emulator's integration is shared with: where a board is set up."""
    return str(httpx.get(f"{emulator.base_url}/_emulator/root").json()["page_id"])


def emulator_env(emulator: EmulatorServer, tmp_path: Path, workflows: Path) -> dict[str, str]:
    """The settings of a CLI on the emulator, with a database in `tmp_path`; no board yet."""
    return {
        "NOTION_TOKEN": emulator.token,
        "NOTION_BASE_URL": emulator.base_url,
        "NFACTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "NFACTORY_WORKFLOWS": str(workflows),
    }


def notion_env(emulator: EmulatorServer, tmp_path: Path, workflows: Path) -> dict[str, str]:
    root = emulator_root(emulator)
    env = emulator_env(emulator, tmp_path, workflows)
    made = cli(tmp_path, env, "board", "setup", "--parent-page", root, "--title", "Work")
    assert made.returncode == 0, made.stderr
    board_id = re.search(r"NOTION_BOARD_ID=([0-9a-f-]{36})", made.stdout)
    assert board_id is not None, made.stdout
    return {**env, "NOTION_BOARD_ID": board_id.group(1)}


def transitions_of(tmp: Path, env: dict[str, str], task_id: str) -> int:
    shown = cli(tmp, env, "history", "--task", task_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return len(json.loads(shown.stdout)["transitions"])


def test_a_tick_works_only_its_own_boards_cards_in_a_shared_database(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    on_notion = notion_env(emulator, tmp_path, WORKFLOWS)
    on_local = {k: v for k, v in on_notion.items() if k != "NOTION_BOARD_ID"}
    made = cli(tmp_path, on_local, "task", "create", "--factory", "triage", "--title", "Crash")
    assert made.returncode == 0, made.stderr
    local = made.stdout.strip()
    made = cli(
        tmp_path, on_notion, "task", "create", "--factory", "triage", "--title", "Login crashes"
    )
    assert made.returncode == 0, made.stderr
    page = made.stdout.strip()

    # the Notion board's tick takes its card in and runs one step of it: never the local card
    one_step = {**on_notion, "NFACTORY_MAX_TRANSITIONS_PER_TICK": "1"}
    ticked = cli(tmp_path, one_step, "tick")
    assert ticked.returncode == 0, ticked.stderr
    notion_task = str(status_of(tmp_path, on_notion, page)["id"])
    assert (
        column(emulator, page) == "Running"
        and transitions_of(tmp_path, on_notion, notion_task) == 1
    )
    untouched = status_of(tmp_path, on_local, local)
    assert (untouched["status"], untouched["column"], untouched["transitions"]) == (
        "queued",
        None,
        0,
    ), untouched
    assert transitions_of(tmp_path, on_local, local) == 0

    # the local board's tick runs the local card, and leaves the Notion card (still running,
    # due now) to the Notion board's worker; `run` refuses a card of the other board
    ticked = cli(tmp_path, on_local, "tick")
    assert ticked.returncode == 0, ticked.stderr
    assert status_of(tmp_path, on_local, local)["status"] == "done"
    assert transitions_of(tmp_path, on_local, notion_task) == 1
    refused = cli(tmp_path, on_local, "run", "--task", page)
    assert refused.returncode == 1
    source = status_of(tmp_path, on_local, page)
    assert refused.stderr.splitlines() == [
        f"error: task {notion_task} is on board {source['board']!r}, not on this board "
        f"('local'); set NOTION_BOARD_ID to {source['board']} to run it"
    ], refused.stderr
    refused = cli(tmp_path, on_notion, "run", "--task", local)
    assert refused.returncode == 1 and "is on board 'local'" in refused.stderr, refused.stderr
    assert "unset NOTION_BOARD_ID to run it" in refused.stderr
    assert transitions_of(tmp_path, on_local, notion_task) == 1
    assert column(emulator, page) == "Running"

    ticked = cli(tmp_path, on_notion, "tick")
    assert ticked.returncode == 0, ticked.stderr
    assert column(emulator, page) == "Done"


def test_a_card_whose_module_fails_to_import_stays_in_queue_with_the_error_on_the_card(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "triage.py").write_text((WORKFLOWS / "triage.py").read_text())
    beta = folder / "beta.py"
    beta.write_text(BETA)
    env = notion_env(emulator, tmp_path, folder)  # the board offers both factories
    made = cli(tmp_path, env, "task", "create", "--factory", "beta", "--title", "Beta card")
    assert made.returncode == 0, made.stderr
    page = made.stdout.strip()

    beta.write_text("import no_such_dependency\n" + BETA)
    for _ in range(2):  # a second cycle changes nothing on the card
        ticked = cli(tmp_path, env, "tick")
        assert ticked.returncode == 0, ticked.stderr
        assert "0 blocked" in ticked.stdout and "held" in ticked.stdout, ticked.stdout
        assert column(emulator, page) == "Queue"
        error = prop_text(emulator, page, "Error")
        assert str(beta) in error and "No module named 'no_such_dependency'" in error, error
        assert "factory 'beta' is not loaded" in error
        assert emulator.workspace.comments_of(page) == []
    task = status_of(tmp_path, env, page)
    assert (task["status"], task["transitions"]) == ("queued", 0)
    doctor = cli(tmp_path, env, "doctor")
    assert doctor.returncode == 1 and "no_such_dependency" in doctor.stdout

    beta.write_text(BETA)
    ticked = cli(tmp_path, env, "tick")
    assert ticked.returncode == 0, ticked.stderr
    assert column(emulator, page) == "Done" and prop_text(emulator, page, "Error") == ""
