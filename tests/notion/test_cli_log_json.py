"""`nfactory start --log-format json`: every line on stderr is one JSON object, the web
server's (uvicorn's) lines and a refusal to start included."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from integrations.notion_emulator.server import EmulatorServer
from tests.notion.test_cli_notion import NFACTORY, WORKFLOWS, notion_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def json_lines(text: str) -> list[dict[str, object]]:
    """Each line parsed; a line that is not one JSON object fails with the line shown."""
    docs = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n{text}") from None
        assert isinstance(doc, dict) and {"time", "level", "logger", "message"} <= set(doc), line
        docs.append(doc)
    return docs


def test_uvicorns_lines_are_json_too(emulator: EmulatorServer, tmp_path: Path) -> None:
    env = notion_env(emulator, tmp_path, WORKFLOWS)
    port = free_port()
    err = tmp_path / "start.err"
    with err.open("w") as sink:
        worker = subprocess.Popen(
            [str(NFACTORY), "start", "--log-format", "json", "--webhook-port", str(port)],
            cwd=tmp_path,
            env={**os.environ, **env, "NOTION_WEBHOOK_SECRET": "s3cret-for-the-test"},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 60
        while "webhooks on" not in err.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        # what uvicorn itself logs: a request that is not HTTP (once it listens: the log
        # line comes as its server starts)
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
        with conn:
            conn.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            conn.recv(1024)
        while "Invalid HTTP request" not in err.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    docs = json_lines(err.read_text())
    assert any(
        d["logger"].startswith("uvicorn") and "Invalid HTTP request" in str(d["message"])
        for d in docs
    ), docs
    assert any("worker stopped" in str(d["message"]) for d in docs)


def test_a_refusal_to_start_is_a_json_line(tmp_path: Path) -> None:
    refused = subprocess.run(
        [str(NFACTORY), "start", "--log-format", "json"],
        cwd=tmp_path,
        env={
            **os.environ,
            "NFACTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "NFACTORY_WORKFLOWS": str(tmp_path / "missing"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    (doc,) = json_lines(refused.stderr)
    assert doc["level"] == "error" and "NFACTORY_WORKFLOWS" in str(doc["message"]), doc
