"""`nfactory start` misconfigured or sharing its database: it must never block, run or touch
cards it cannot or should not work. A wrong workflows path stops it at once; a workflow
module that fails to import leaves that module's cards in Queue, saying why; a worker on
one board never claims a card of another board kept in the same database."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from factory.store.tables import outbox, runs, tasks
from integrations.notion_emulator import render
from integrations.notion_emulator.server import EmulatorServer, free_port
from tests.factory_sources import BETA
from tests.worker.harness import WORKFLOWS, Db, Stage, Worker, cli, wait_for

BROKEN_BETA = "import no_such_dependency\n" + BETA


def error_property(stage: Stage, page_id: str) -> str:
    ws = stage.emu.workspace
    with ws.lock:
        prop = render.page(ws, ws.page(page_id))["properties"]["Error"]
    return "".join(t["plain_text"] for t in prop["rich_text"])


def task_row(db: Db, task_id: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        return dict(conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().one())


def task_of_card(db: Db, page_id: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.external_id == page_id)).mappings().one()
    return dict(row)


def count(db: Db, table: Any, task_id: str) -> int:
    return int(db.scalar(select(func.count()).select_from(table).where(table.c.task_id == task_id)))


def undelivered(db: Db, page_id: str) -> int:
    """Effects of a card still waiting for delivery."""
    return int(
        db.scalar(
            select(func.count())
            .select_from(outbox.join(tasks, tasks.c.id == outbox.c.task_id))
            .where(tasks.c.external_id == page_id, outbox.c.status.in_(("pending", "sending")))
        )
    )


def assert_never_touched(db: Db, task_id: str) -> None:
    row = task_row(db, task_id)
    assert (row["status"], row["lease_owner"], row["lease_epoch"]) == ("queued", None, 0), row
    assert count(db, runs, task_id) == 0 and count(db, outbox, task_id) == 0


def test_start_on_one_board_never_claims_a_card_of_another_board_in_the_same_database(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    stage = Stage.create(emulator, tmp_path, database.url)
    local_env = {**stage.env, "NOTION_BOARD_ID": ""}
    made = cli(tmp_path, local_env, "task", "create", "--factory", "triage", "--title", "Crash")
    assert made.returncode == 0, made.stderr
    local = made.stdout.strip()
    page = stage.add_card("Login crashes with an error", "triage")

    # a worker on the Notion board works its card; the local card is not its to claim
    worker = Worker(stage, "on-notion")
    try:
        wait_for(
            lambda: stage.column(page) == "Done" and undelivered(database, page) == 0,
            60,
            "the Notion card to be done",
            explain=worker.logs,
        )
        code, _ = worker.terminate(within=15)
    finally:
        worker.kill()
    assert code == 0, worker.logs()
    assert_never_touched(database, local)

    # vice versa: a Notion card left mid-run (due now) is not the local worker's to take
    second = stage.add_card("Export fails with an error", "triage")
    one_step = cli(tmp_path, {**stage.env, "NFACTORY_MAX_TRANSITIONS_PER_TICK": "1"}, "tick")
    assert one_step.returncode == 0, one_step.stderr
    running = task_of_card(database, second)
    assert running["status"] == "running" and stage.column(second) == "Running"
    epoch = running["lease_epoch"]
    worker = Worker(stage, "on-local", NOTION_BOARD_ID="")
    try:
        wait_for(
            lambda: task_row(database, local)["status"] == "done",
            60,
            "the local card to be done",
            explain=worker.logs,
        )
        code, _ = worker.terminate(within=15)
    finally:
        worker.kill()
    assert code == 0, worker.logs()
    after = task_of_card(database, second)
    assert (after["status"], after["lease_epoch"]) == ("running", epoch), after
    assert stage.column(second) == "Running"
    stage.close()


def test_start_refuses_a_workflows_path_that_does_not_exist(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    stage = Stage.create(emulator, tmp_path, database.url)
    page = stage.add_card("Login crashes with an error", "triage")
    worker = Worker(stage, "typo", NFACTORY_WORKFLOWS="wrkflows")
    try:
        code = worker.proc.wait(timeout=30)
    finally:
        worker.kill()
    assert code == 1, worker.logs()
    (line,) = worker.err.read_text().splitlines()  # --log-format json: a JSON line too
    doc = json.loads(line)
    assert (doc["level"], doc["message"]) == (
        "error",
        f"NFACTORY_WORKFLOWS: path 'wrkflows' does not exist (looked in {tmp_path}/wrkflows)",
    )
    assert stage.column(page) == "Queue" and database.task_count() == 0
    stage.close()


def _held_ticks(url: str) -> int:
    found = re.search(r'nfactory_ticks_total\{outcome="held"\} (\d+)', httpx.get(url).text)
    return int(found.group(1)) if found else 0


def test_a_card_whose_module_fails_to_import_waits_in_queue_until_the_module_is_fixed(
    emulator: EmulatorServer, tmp_path: Path, database: Db
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "triage.py").write_text((WORKFLOWS / "triage.py").read_text())
    beta = folder / "beta.py"
    beta.write_text(BETA)
    stage = Stage.create(emulator, tmp_path, database.url, workflows=folder)
    held = stage.add_card("Beta card", "beta")
    other = stage.add_card("Login crashes with an error", "triage")
    beta.write_text(BROKEN_BETA)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    worker = Worker(stage, "degraded", "--webhook-port", str(port))
    try:
        wait_for(
            lambda: (
                stage.column(other) == "Done"
                and "no_such_dependency" in error_property(stage, held)
            ),
            60,
            "the triage card done and the beta card saying why it waits",
            explain=worker.logs,
        )
        assert stage.column(held) == "Queue"
        error = error_property(stage, held)
        assert str(beta) in error and "factory 'beta' is not loaded" in error, error
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["factories"] == (
            f"degraded (1 workflow module(s) failed to load: {beta}: import failed (line 1): "
            "ModuleNotFoundError: No module named 'no_such_dependency')"
        )
        # polls and dispatches go on (every 0.5 s and 1 s); the held card is not claimed again
        # and its reason is sent to the card once
        time.sleep(3)
        assert _held_ticks(f"{url}/metrics") == 1
        assert count(database, outbox, task_of_card(database, held)["id"]) == 1
        code, _ = worker.terminate(within=15)
    finally:
        worker.kill()
    assert code == 0, worker.logs()
    logs = worker.logs()
    assert f"workflow module {beta} failed to load" in logs and "no_such_dependency" in logs
    task = task_of_card(database, held)
    assert (task["status"], count(database, runs, task["id"])) == ("queued", 0)
    assert stage.emu.workspace.comments_of(held) == []

    beta.write_text(BETA)
    worker = Worker(stage, "fixed")
    try:
        wait_for(
            lambda: stage.column(held) == "Done", 60, "the beta card to run", explain=worker.logs
        )
        wait_for(lambda: error_property(stage, held) == "", 30, "the Error property cleared")
        code, _ = worker.terminate(within=15)
    finally:
        worker.kill()
    assert code == 0, worker.logs()
    stage.close()
