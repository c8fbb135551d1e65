"""`nfactory start --metrics-port`: /healthz and /metrics leave the public webhook port.

Real worker processes against the emulator, checked the way an operator would: curl each
port and see what answers.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from integrations.notion_emulator.server import EmulatorServer, free_port
from integrations.notion_emulator.webhooks import sign
from tests.security.webhook_port.conftest import SECRET
from tests.worker.harness import Db, Stage, Worker, cli, wait_for


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def test_with_metrics_port_health_and_metrics_are_served_there_and_not_on_the_webhook_port(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    hooks, ops = free_port(), free_port()
    stage = Stage.create(
        emulator,
        tmp_path,
        db.url,
        NOTION_WEBHOOK_SECRET=SECRET,
        NFACTORY_WEBHOOK_MAX_BYTES="2048",
    )
    worker = Worker(stage, "split", "--webhook-port", str(hooks), "--metrics-port", str(ops))
    public, private = f"http://127.0.0.1:{hooks}", f"http://127.0.0.1:{ops}"
    try:
        wait_for(
            lambda: _status(f"{private}/healthz") == 200 or not worker.alive(),
            30,
            "the metrics port to answer",
            explain=worker.logs,
        )
        assert worker.alive(), worker.logs()
        health = httpx.get(f"{private}/healthz", timeout=10)
        assert health.json() == {"worker": "ok", "database": "ok", "factories": "ok"}
        metrics = httpx.get(f"{private}/metrics", timeout=10)
        assert metrics.status_code == 200 and "# TYPE nfactory_transitions_total " in metrics.text

        # the public port: only the webhook path
        assert _status(f"{public}/healthz") == 404
        assert _status(f"{public}/metrics") == 404
        event = {"id": "evt-1", "type": "page.created", "authors": [], "data": {}}
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "X-Notion-Signature": sign(body, SECRET)}
        taken = httpx.post(f"{public}/webhooks/notion", content=body, headers=headers, timeout=10)
        assert taken.status_code == 200 and taken.json()["woke"] == "intake", taken.text
        # and the private port takes no webhooks
        elsewhere = httpx.post(f"{private}/webhooks/notion", content=body, headers=headers)
        assert elsewhere.status_code == 404

        # NFACTORY_WEBHOOK_MAX_BYTES reaches the receiver
        big = json.dumps({**event, "id": "evt-2", "data": {"pad": "x" * 4096}}).encode()
        headers["X-Notion-Signature"] = sign(big, SECRET)
        refused = httpx.post(f"{public}/webhooks/notion", content=big, headers=headers)
        assert refused.status_code == 413, refused.text
        assert refused.json() == {"error": "body larger than 2048 bytes"}

        code, _ = worker.terminate(within=20)
    finally:
        worker.kill()
        stage.close()
    assert code == 0, worker.logs()
    assert SECRET not in worker.logs()


def test_metrics_port_alone_serves_a_worker_without_webhooks(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    ops = free_port()
    stage = Stage.create(emulator, tmp_path, db.url)
    # no NOTION_BOARD_ID: the local board, which has no Notion client to count requests
    worker = Worker(stage, "plain", "--metrics-port", str(ops), NOTION_BOARD_ID="")
    try:
        wait_for(
            lambda: _status(f"http://127.0.0.1:{ops}/metrics") == 200 or not worker.alive(),
            30,
            "the metrics port to answer",
            explain=worker.logs,
        )
        assert worker.alive(), worker.logs()
        metrics = httpx.get(f"http://127.0.0.1:{ops}/metrics", timeout=10).text
        assert "nfactory_notion_requests_total 0\n" in metrics, metrics
        health = httpx.get(f"http://127.0.0.1:{ops}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        code, _ = worker.terminate(within=20)
    finally:
        worker.kill()
        stage.close()
    assert code == 0, worker.logs()


def test_the_same_port_for_both_is_refused_with_one_line(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    stage = Stage.create(emulator, tmp_path, db.url)
    port = str(free_port())
    done = cli(tmp_path, stage.env, "start", "--webhook-port", port, "--metrics-port", port)
    stage.close()
    assert done.returncode != 0
    assert "--metrics-port must differ from --webhook-port" in done.stdout + done.stderr


def test_a_port_in_use_is_refused_with_one_line_before_any_card_is_claimed(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    stage = Stage.create(emulator, tmp_path, db.url)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cli(tmp_path, stage.env, "start", "--metrics-port", str(port))
    stage.close()
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"error: --metrics-port {port}: cannot listen on 127.0.0.1:{port}: Address already in use"
    ], done.stderr
