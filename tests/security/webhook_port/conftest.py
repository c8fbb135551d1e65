"""The webhook receiver served by a real uvicorn on a free port, and a raw HTTP client that
can stream a body the way an attacker would (chunk by chunk, or announce more than it sends)."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import pytest
import uvicorn

from factory.cli.metrics import render as render_metrics
from factory.worker import WorkerStats
from integrations.notion.webhooks import WebhookReceiver
from integrations.notion_emulator.server import free_port
from tests.worker.conftest import _worker_emulator, emulator  # noqa: F401 - fixtures
from tests.worker.harness import Db, wait_for

SECRET = "secret_security_tests_0123456789"
BOT = "bot-0000"


@dataclass
class Served:
    """A WebhookReceiver on 127.0.0.1:`port`, over a real SQLite database."""

    receiver: WebhookReceiver
    port: int
    woke: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_file(self) -> Path:
        return self.receiver.token_file


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    found = Db(f"sqlite:///{tmp_path / 'nfactory.db'}")
    yield found
    found.dispose()


@pytest.fixture
def serve(db: Db, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """serve(secret=..., **options): a receiver on its own port, stopped after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(secret: str | None = SECRET, **options: Any) -> Served:
        woke: list[str] = []
        receiver = WebhookReceiver(
            db.engine,
            secret,
            BOT,
            woke.append,
            lambda: {"worker": "ok", "database": "ok"},
            lambda: render_metrics(WorkerStats(), db.engine),
            tmp_path / ".nfactory" / "webhook-verification-token",
            **options,
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                receiver.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started, 20, "the receiver to listen")
        return Served(receiver, port, woke)

    yield start
    for server, _ in servers:
        server.should_exit = True
    for _, thread in servers:
        thread.join(20)


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int  # body bytes the client got out before the answer came


def raw_post(
    port: int,
    headers: dict[str, str],
    chunks: Iterable[bytes],
    *,
    chunked: bool = False,
    end: bool = True,
    within: float = 30,
) -> Answer:
    """POST /webhooks/notion, sending `chunks` only while no answer has arrived.

    The server may answer before the body is complete (a 413 should); the client then
    stops sending, as a browser or proxy would, and reads the answer. `end=False`
    leaves the body unfinished, as a client announcing more than it sends would.
    """
    conn = h11.Connection(h11.CLIENT)
    sock = socket.create_connection(("127.0.0.1", port), timeout=within)
    try:
        head = [("Host", f"127.0.0.1:{port}"), *headers.items()]
        if chunked:
            head.append(("Transfer-Encoding", "chunked"))
        pending = conn.send(h11.Request(method="POST", target="/webhooks/notion", headers=head))
        queue = iter(chunks)
        sent, finished = 0, False
        while True:
            writing = bool(pending) or not finished
            readable, writable, _ = select.select([sock], [sock] if writing else [], [], within)
            if readable:
                break  # the answer (or a close) is here: stop sending
            if not writable:
                raise AssertionError(f"no answer within {within:g}s ({sent} body bytes sent)")
            if not pending:
                chunk = next(queue, None)
                if chunk is None:
                    pending = (conn.send(h11.EndOfMessage()) if end else None) or b""
                    finished = True
                else:
                    pending = conn.send(h11.Data(data=chunk)) or b""
                    sent += len(chunk)
            try:
                pending = pending[sock.send(pending) :]
            except (BrokenPipeError, ConnectionResetError):
                break
        return _read_answer(conn, sock, sent)
    finally:
        sock.close()


def _read_answer(conn: h11.Connection, sock: socket.socket, sent: int) -> Answer:
    status: int | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    assert status is not None, "the connection closed without an answer"
    return Answer(status, bytes(body), sent)
