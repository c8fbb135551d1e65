"""Webhook emitter: Notion's envelope, signatures, retries, lifecycle, a real receiver."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import notion_client
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.notion_emulator.server import EmulatorServer
from integrations.notion_emulator.webhooks import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    Subscription,
    WebhookEmitter,
    backoff_delay,
    new_verification_token,
    send_verification,
    sign,
    verify,
)

SECRET = "secret_emulator_test"
URL = "http://receiver.test/hook"
COMMENT = {"id": "7c0f9a3e-0000-4000-8000-000000000001", "type": "comment"}
PERSON = [{"id": "5a1b2c3d-0000-4000-8000-000000000002", "type": "person"}]
DATA = {"page_id": "p-1", "parent": {"id": "p-1", "type": "page"}}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class Captured:
    """Requests a fake receiver saw, and what it answers for each one in turn."""

    answers: list[int | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    @property
    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(r.content) for r in self.requests]


def emitter_for(captured: Captured, **kwargs: object) -> WebhookEmitter:
    emitter = WebhookEmitter(
        transport=httpx.MockTransport(captured.handler),
        backoff_base=0.001,
        backoff_cap=0.005,
        **kwargs,  # type: ignore[arg-type]
    )
    emitter.configure(URL, SECRET)
    return emitter


# --- signatures ------------------------------------------------------------------


def test_sign_matches_a_published_hmac_sha256_vector() -> None:
    body = b"The quick brown fox jumps over the lazy dog"
    assert sign(body, "key") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


@pytest.mark.parametrize(
    ("body", "header", "secret", "ok"),
    [
        (b'{"a":1}', sign(b'{"a":1}', SECRET), SECRET, True),
        (b'{"a":1}', sign(b'{"a":1}', SECRET), "another secret", False),
        (b'{"a": 1}', sign(b'{"a":1}', SECRET), SECRET, False),  # re-serialised body
        (b'{"a":1}', sign(b'{"a":1}', SECRET).removeprefix("sha256="), SECRET, False),
        (b'{"a":1}', None, SECRET, False),
        (b'{"a":1}', "", SECRET, False),
        (b'{"a":1}', "sha256=\u00e9\u00e9", SECRET, False),
    ],
)
def test_verify(body: bytes, header: str | None, secret: str, ok: bool) -> None:
    assert verify(body, header, secret) is ok


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 0.5, 5.0) for n in range(1, 8)] == [0.5, 1, 2, 4, 5, 5, 5]


def test_verification_tokens_look_like_notions() -> None:
    token = new_verification_token()
    assert token.startswith("secret_") and len(token) > 30
    assert token != new_verification_token()


# --- envelope and delivery ---------------------------------------------------------


async def test_envelope_has_notions_shape_and_a_valid_signature() -> None:
    captured = Captured()
    subscription = Subscription(workspace_id="w-1", integration_id="i-1", subscription_id="s-1")
    emitter = emitter_for(captured, subscription=subscription)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    assert await emitter.drain(2)
    await emitter.aclose()

    (request,) = captured.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert verify(request.content, request.headers[SIGNATURE_HEADER], SECRET)
    assert not verify(request.content, request.headers[SIGNATURE_HEADER], "wrong")

    body = json.loads(request.content)
    assert set(body) >= {
        "id",
        "timestamp",
        "workspace_id",
        "subscription_id",
        "integration_id",
        "type",
        "authors",
        "entity",
        "data",
        "attempt_number",
    }
    uuid.UUID(body["id"])
    assert ISO_MS.match(body["timestamp"])
    assert (body["workspace_id"], body["integration_id"], body["subscription_id"]) == (
        "w-1",
        "i-1",
        "s-1",
    )
    assert body["type"] == "comment.created"
    assert body["authors"] == PERSON
    assert body["entity"] == COMMENT
    assert body["data"] == DATA
    assert body["attempt_number"] == 1


async def test_entity_and_authors_are_trimmed_to_id_and_type() -> None:
    captured = Captured()
    emitter = emitter_for(captured)
    emitter.emit(
        "page.created",
        {"id": "p", "type": "page", "properties": {"big": 1}},
        [{"id": "u", "type": "bot", "name": "Bot"}],
        {"parent": {"id": "d", "type": "database"}},
    )
    await emitter.aclose()
    (body,) = captured.bodies
    assert body["entity"] == {"id": "p", "type": "page"}
    assert body["authors"] == [{"id": "u", "type": "bot"}]


async def test_failed_deliveries_are_retried_with_incrementing_attempt_number() -> None:
    captured = Captured(answers=[500, httpx.ConnectError("refused"), 429, 204])
    emitter = emitter_for(captured)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    assert await emitter.drain(2)
    await emitter.aclose()

    bodies = captured.bodies
    assert [b["attempt_number"] for b in bodies] == [1, 2, 3, 4]
    assert len({b["id"] for b in bodies}) == 1  # same event: receivers dedupe by id
    for request in captured.requests:
        assert verify(request.content, request.headers[SIGNATURE_HEADER], SECRET)
    stats = emitter.stats()
    assert (stats["sent"], stats["failed_attempts"], stats["pending"]) == (1, 3, 0)
    assert [d["status"] for d in emitter.deliveries()] == [500, None, 429, 204]
    assert emitter.deliveries()[1]["error"] == "ConnectError"


async def test_delivery_gives_up_after_eight_attempts() -> None:
    captured = Captured(answers=[503] * 20)
    emitter = emitter_for(captured)
    emitter.emit("page.created", {"id": "p", "type": "page"}, PERSON, {})
    assert await emitter.drain(2)
    await emitter.aclose()
    assert [b["attempt_number"] for b in captured.bodies] == list(range(1, MAX_ATTEMPTS + 1))
    stats = emitter.stats()
    assert (stats["sent"], stats["given_up"], stats["failed_attempts"]) == (0, 1, 8)


async def test_a_failing_event_does_not_hold_up_the_next_one() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["type"])
        return httpx.Response(500 if body["type"] == "page.created" else 200)

    emitter = WebhookEmitter(
        transport=httpx.MockTransport(handler), backoff_base=30, backoff_cap=30
    )
    emitter.configure(URL, SECRET)
    emitter.emit("page.created", {"id": "p", "type": "page"}, PERSON, {})
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    for _ in range(200):
        if "comment.created" in seen:
            break
        await asyncio.sleep(0.01)
    # The comment went out while the page event sits in a 30 s backoff.
    assert seen.count("comment.created") == 1 and seen.count("page.created") == 1
    await emitter.aclose(drain_timeout=0)
    assert emitter.stats()["cancelled"] == 1


async def test_emit_without_a_url_is_a_no_op() -> None:
    captured = Captured()
    emitter = emitter_for(captured)
    emitter.configure(None, None)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    await emitter.aclose()
    assert captured.requests == []
    assert emitter.stats()["emitted"] == 0


async def test_reconfiguring_affects_only_later_events() -> None:
    captured = Captured()
    emitter = emitter_for(captured)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    emitter.configure("http://other.test/hook", None)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    assert await emitter.drain(2)
    await emitter.aclose()
    first, second = captured.requests
    assert str(first.url) == URL and SIGNATURE_HEADER in first.headers
    assert str(second.url) == "http://other.test/hook"
    assert SIGNATURE_HEADER not in second.headers  # no secret, nothing to sign with


def test_entity_without_id_or_type_is_a_programming_error() -> None:
    emitter = WebhookEmitter()
    emitter.configure(URL, SECRET)
    with pytest.raises(ValueError, match="entity"):
        emitter.emit("page.created", {"id": "p"}, PERSON, {})


async def test_emit_from_another_thread_is_delivered_on_the_loop() -> None:
    captured = Captured()
    emitter = emitter_for(captured)
    await emitter.start()
    thread = threading.Thread(target=emitter.emit, args=("comment.created", COMMENT, PERSON, DATA))
    thread.start()
    thread.join()
    assert await emitter.drain(2)
    await emitter.aclose()
    assert len(captured.requests) == 1


async def test_events_emitted_before_any_loop_wait_in_a_backlog() -> None:
    captured = Captured()
    emitter = emitter_for(captured)

    def emit_without_a_loop() -> None:
        emitter.emit("comment.created", COMMENT, PERSON, DATA)

    # A fresh emitter used first from a thread with no loop cannot deliver yet.
    thread = threading.Thread(target=emit_without_a_loop)
    thread.start()
    thread.join()
    assert emitter.stats()["pending"] == 1 and captured.requests == []
    assert await emitter.drain(2)  # binds to this loop and sends the backlog
    await emitter.aclose()
    assert len(captured.requests) == 1


async def test_aclose_cancels_what_does_not_drain_in_time() -> None:
    captured = Captured(answers=[500] * 20)
    emitter = WebhookEmitter(
        transport=httpx.MockTransport(captured.handler), backoff_base=10, backoff_cap=10
    )
    emitter.configure(URL, SECRET)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    started = time.perf_counter()
    await emitter.aclose(drain_timeout=0.05)
    assert time.perf_counter() - started < 1
    stats = emitter.stats()
    assert (stats["pending"], stats["cancelled"], stats["sent"]) == (0, 1, 0)


# --- verification request ------------------------------------------------------------


async def test_send_verification_posts_the_token_unsigned() -> None:
    captured = Captured(answers=[200])
    status = await send_verification(
        URL, "secret_abc", transport=httpx.MockTransport(captured.handler)
    )
    assert status == 200
    (request,) = captured.requests
    assert json.loads(request.content) == {"verification_token": "secret_abc"}
    assert SIGNATURE_HEADER not in request.headers


async def test_send_verification_reports_an_unreachable_receiver_as_none() -> None:
    captured = Captured(answers=[httpx.ConnectError("refused")])
    transport = httpx.MockTransport(captured.handler)
    assert await send_verification(URL, "secret_abc", transport=transport) is None


# --- a real receiver over HTTP ---------------------------------------------------------


@dataclass
class Receiver:
    """A webhook endpoint like the product's: verifies the raw body's signature."""

    secret: str
    fail_first: int = 0
    received: list[tuple[bool, dict[str, object]]] = field(default_factory=list)
    url: str = ""

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        ok = verify(raw, request.headers.get(SIGNATURE_HEADER), self.secret)
        self.received.append((ok, json.loads(raw)))
        if len(self.received) <= self.fail_first:
            return Response(status_code=503)
        return Response(status_code=200 if ok else 401)


@pytest.fixture
def serve() -> Iterator[Callable[[Receiver], Receiver]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(receiver: Receiver) -> Receiver:
        app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.01)
        servers.append((server, thread))
        receiver.url = f"http://127.0.0.1:{port}/hook"
        return receiver

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


async def test_real_receiver_verifies_signature_and_sees_retries(
    serve: Callable[[Receiver], Receiver],
) -> None:
    receiver = serve(Receiver(secret=SECRET, fail_first=2))
    emitter = WebhookEmitter(backoff_base=0.01)
    emitter.configure(receiver.url, SECRET)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    assert await emitter.drain(5)
    await emitter.aclose()
    assert [ok for ok, _ in receiver.received] == [True, True, True]
    assert [body["attempt_number"] for _, body in receiver.received] == [1, 2, 3]
    assert emitter.stats()["sent"] == 1


async def test_real_receiver_rejects_a_signature_made_with_another_secret(
    serve: Callable[[Receiver], Receiver],
) -> None:
    receiver = serve(Receiver(secret="the receiver's secret"))
    emitter = WebhookEmitter(backoff_base=0.001, backoff_cap=0.001, max_attempts=2)
    emitter.configure(receiver.url, SECRET)
    emitter.emit("comment.created", COMMENT, PERSON, DATA)
    assert await emitter.drain(5)
    await emitter.aclose()
    assert [ok for ok, _ in receiver.received] == [False, False]
    assert emitter.stats()["given_up"] == 1


async def test_real_receiver_gets_the_verification_token_unsigned(
    serve: Callable[[Receiver], Receiver],
) -> None:
    receiver = serve(Receiver(secret=SECRET))
    token = new_verification_token()
    # The receiver checks signatures, and the one-time verification is unsigned
    # (the receiver has no secret yet), so it is refused: a product receiver
    # must special-case it.
    assert await send_verification(receiver.url, token) == 401
    assert receiver.received == [(False, {"verification_token": token})]


# --- end to end: the emulator fires webhooks as Notion does ---------------------------


def wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_emulator_sends_signed_webhooks_for_person_comments_and_bot_pages(
    serve: Callable[[Receiver], Receiver],
) -> None:
    receiver = serve(Receiver(secret=SECRET))
    with EmulatorServer("secret_webhook_e2e") as emu:
        base = emu.base_url
        config = httpx.put(
            f"{base}/_emulator/config", json={"webhook_url": receiver.url, "webhook_secret": SECRET}
        )
        config.raise_for_status()
        root = httpx.get(f"{base}/_emulator/root").json()
        made = httpx.post(
            f"{base}/_emulator/comments", json={"page_id": root["page_id"], "text": "Ship it"}
        )
        made.raise_for_status()
        wait_for(lambda: len(receiver.received) == 1)

        ok, body = receiver.received[0]
        assert ok, "signature must verify with the configured secret"
        assert body["type"] == "comment.created"
        assert body["entity"] == {"id": made.json()["id"], "type": "comment"}
        assert body["authors"] == [{"id": root["person_id"], "type": "person"}]
        data = body["data"]
        assert isinstance(data, dict) and data["page_id"] == root["page_id"]
        assert body["attempt_number"] == 1
        assert body["integration_id"] == root["bot_id"]

        with notion_client.Client(auth=emu.token, base_url=base) as notion:
            page = notion.pages.create(
                parent={"page_id": root["page_id"]},
                properties={"title": {"title": [{"text": {"content": "Card"}}]}},
            )
        wait_for(lambda: len(receiver.received) == 2)
        ok, body = receiver.received[1]
        assert ok and body["type"] == "page.created"
        assert body["entity"] == {"id": page["id"], "type": "page"}
        assert body["authors"] == [{"id": root["bot_id"], "type": "bot"}]

        webhooks = httpx.get(f"{base}/_emulator/stats").json()["webhooks"]
        assert (webhooks["sent"], webhooks["pending"], webhooks["failed_attempts"]) == (2, 0, 0)
