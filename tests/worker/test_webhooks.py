"""The webhook receiver: signatures, durable dedupe, bot-authored events, the verification
token, /healthz and /metrics; then a real run where the emulator's webhooks wake a running
`nfactory start --webhook-port` long before its next poll."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from factory.board_protocol import RequestStats
from factory.cli.metrics import render as render_metrics
from factory.clock import SystemClock
from factory.engine import Engine, EngineConfig
from factory.local_board import LocalBoard
from factory.worker import Worker as SchedulerWorker
from factory.worker import WorkerConfig, WorkerStats
from integrations.notion.webhooks import WebhookReceiver
from integrations.notion_emulator.server import EmulatorServer, free_port
from integrations.notion_emulator.webhooks import sign
from tests.worker.harness import Db, Stage, Worker, wait_for

SECRET = "secret_webhook_signing_0123456789"
BOT = "bot-0000"
PERSON = {"id": "person-0001", "type": "person"}


class Receiver:
    """A WebhookReceiver over a real database, recording which jobs it woke."""

    def __init__(self, db: Db, token_file: Path, secret: str | None = SECRET) -> None:
        self.woke: list[str] = []
        self.receiver = WebhookReceiver(
            db.engine,
            secret,
            BOT,
            self.woke.append,
            lambda: {"worker": "ok", "database": "ok"},
            lambda: render_metrics(WorkerStats(transitions=7), db.engine, RequestStats(total=3)),
            token_file,
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.receiver.app), base_url="http://receiver"
        )

    async def post(self, event: dict[str, Any], signature: str | None = "valid") -> httpx.Response:
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            headers["X-Notion-Signature"] = sign(body, SECRET)
        elif signature is not None:
            headers["X-Notion-Signature"] = signature
        return await self.client.post("/webhooks/notion", content=body, headers=headers)


def event(kind: str = "comment.created", authors: list[dict[str, str]] | None = None) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-23T01:00:00.000Z",
        "type": kind,
        "authors": [PERSON] if authors is None else authors,
        "entity": {"id": str(uuid.uuid4()), "type": "comment" if "comment" in kind else "page"},
        "data": {},
    }


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    found = Db(f"sqlite:///{tmp_path / 'nfactory.db'}")
    yield found
    found.dispose()


@pytest.fixture
async def receiver(db: Db, tmp_path: Path) -> AsyncIterator[Receiver]:
    made = Receiver(db, tmp_path / ".nfactory" / "webhook-verification-token")
    yield made
    await made.client.aclose()


# -- the receiver app ---------------------------------------------------------------------


async def test_a_valid_signature_is_accepted_and_wakes_the_matching_job(receiver: Receiver) -> None:
    reply = await receiver.post(event("comment.created"))
    assert reply.status_code == 200 and reply.json() == {"ok": True, "woke": "feedback"}
    edit = await receiver.post(event("page.properties_updated"))
    assert edit.status_code == 200 and edit.json()["woke"] == "intake"
    assert receiver.woke == ["feedback", "intake"]


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha256=nothex", sign(b"another body", SECRET), "md5=abc"],
    ids=["missing", "empty", "zeros", "garbage", "other-body", "wrong-scheme"],
)
async def test_a_bad_or_missing_signature_is_401_and_wakes_nothing(
    receiver: Receiver, signature: str | None
) -> None:
    reply = await receiver.post(event(), signature=signature)
    assert reply.status_code == 401
    assert receiver.woke == []


async def test_a_signature_by_another_secret_is_401(receiver: Receiver) -> None:
    body = json.dumps(event()).encode()
    reply = await receiver.client.post(
        "/webhooks/notion",
        content=body,
        headers={"X-Notion-Signature": sign(body, "secret_someone_else")},
    )
    assert reply.status_code == 401 and receiver.woke == []


async def test_the_same_event_twice_is_a_duplicate_even_for_a_new_receiver(
    receiver: Receiver, db: Db, tmp_path: Path
) -> None:
    first = event()
    assert (await receiver.post(first)).json() == {"ok": True, "woke": "feedback"}
    again = await receiver.post(first)  # Notion retries with the same id
    assert again.status_code == 200 and again.json() == {"ok": True, "duplicate": True}
    assert receiver.woke == ["feedback"]

    # durable: a restarted worker (a new receiver on the same database) still knows it
    restarted = Receiver(db, tmp_path / "token")
    late = await restarted.post(first)
    await restarted.client.aclose()
    assert late.status_code == 200 and late.json()["duplicate"] is True
    assert restarted.woke == []


async def test_events_authored_only_by_the_bot_are_ignored(receiver: Receiver) -> None:
    own = await receiver.post(event(authors=[{"id": BOT, "type": "bot"}]))
    assert own.status_code == 200 and own.json()["ignored"] == "authored by this integration"
    assert receiver.woke == []
    # the bot and a person together: a person acted, so it wakes
    shared = await receiver.post(event(authors=[{"id": BOT, "type": "bot"}, PERSON]))
    assert shared.json()["woke"] == "feedback"
    assert receiver.woke == ["feedback"]


async def test_the_verification_token_goes_to_a_private_file_never_to_the_log(
    db: Db, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # before the secret is configured: the only time Notion's handshake is taken
    receiver = Receiver(db, tmp_path / ".nfactory" / "webhook-verification-token", secret=None)
    token = "secret_verification_" + uuid.uuid4().hex
    with caplog.at_level(logging.DEBUG):
        reply = await receiver.client.post("/webhooks/notion", json={"verification_token": token})
    await receiver.client.aclose()
    assert reply.status_code == 200
    written = receiver.receiver.token_file
    assert written.read_text().strip() == token
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert str(written) in caplog.text, "the log should say where the token is"
    assert token not in caplog.text
    assert receiver.woke == []


async def test_healthz_and_metrics(receiver: Receiver) -> None:
    health = await receiver.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"worker": "ok", "database": "ok"}
    metrics = await receiver.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    for name in (
        "nfactory_transitions_total",
        "nfactory_ticks_total",
        "nfactory_runs",
        "nfactory_notion_requests_total",
        "nfactory_notion_rate_limited_total",
        "nfactory_outbox_backlog",
        "nfactory_lease_takeovers_total",
    ):
        assert f"# TYPE {name} " in text, text
    assert "nfactory_transitions_total 7\n" in text
    assert "nfactory_notion_requests_total 3\n" in text


# -- a real worker woken by the emulator's webhooks --------------------------------------


def test_a_reply_comment_wakes_a_running_worker_through_the_emulators_webhook(
    emulator: EmulatorServer, tmp_path: Path, db: Db
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # a poll far in the future: only the webhook can resume the card in time
    stage = Stage.create(
        emulator, tmp_path, db.url, NFACTORY_POLL_SECONDS="120", NOTION_WEBHOOK_SECRET=SECRET
    )
    stage.control.put(
        "/_emulator/config",
        json={"webhook_url": f"{url}/webhooks/notion", "webhook_secret": SECRET},
    ).raise_for_status()
    page = stage.add_card("Release notes", "writing")
    worker = Worker(stage, "hooked", "--webhook-port", str(port))
    try:
        wait_for(lambda: _answers(url), 20, "the webhook server to answer")
        wait_for(
            lambda: stage.column(page) == "Feedback" and db.backlog() == 0,
            20,
            "the card to ask for approval",
            explain=worker.logs,
        )
        stage.comment(page, "Looks good, approve.")
        took = wait_for(lambda: stage.column(page) == "Done", 30, "the card to resume", 0.05)
        print(f"reply -> Done via webhook in {took:.2f}s (poll is every 120s)")

        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 200, health.text
        assert health.json() == {"worker": "ok", "database": "ok", "factories": "ok"}
        metrics = httpx.get(f"{url}/metrics").text
        assert 'nfactory_runs{status="done"} 1' in metrics, metrics
        assert "nfactory_transitions_total 0" not in metrics

        # with the secret configured, an unsigned verification request is refused: it
        # would otherwise let anyone overwrite the token file (tests/security has the
        # handshake before a secret is set)
        token = "secret_verify_" + uuid.uuid4().hex
        refused = httpx.post(f"{url}/webhooks/notion", json={"verification_token": token})
        assert refused.status_code == 401, refused.text
        code, _ = worker.terminate(within=15)
    finally:
        worker.kill()
        stage.control.put("/_emulator/config", json={"webhook_url": None, "webhook_secret": None})
    assert code == 0, worker.logs()
    assert not (tmp_path / ".nfactory" / "webhook-verification-token").exists()
    assert token not in worker.logs() and SECRET not in worker.logs()
    sent = stage.control.get("/_emulator/stats").json()["webhooks"]
    assert sent["sent"] > 0 and sent["given_up"] == 0, sent
    stage.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


# -- a wake must not be lost when the job is already running ------------------------------


async def test_a_wake_while_the_job_runs_makes_it_run_again_right_after(db: Db) -> None:
    """A webhook for card B arriving while the feedback pass is past card B must not wait
    for the next poll (max_instances=1 would otherwise drop the wake)."""
    first_pass = asyncio.Event()
    passes: list[float] = []

    class Watched(SchedulerWorker):
        async def feedback(self) -> None:
            passes.append(time.monotonic())
            if len(passes) == 1:
                first_pass.set()
                await asyncio.sleep(0.3)  # a pass listing comments on many cards

    clock = SystemClock()
    engine = Engine(db.engine, {}, EngineConfig(worker_id="w"), clock)
    slow = WorkerConfig(poll_seconds=60, dispatch_seconds=60, deliver_seconds=60)
    worker = Watched(engine, LocalBoard(db.engine, clock), slow)
    worker.start()
    try:
        await asyncio.wait_for(first_pass.wait(), 5)
        worker.wake("feedback")  # while the first pass runs
        async with asyncio.timeout(5):
            while len(passes) < 2:  # noqa: ASYNC110 - the scheduler runs the job
                await asyncio.sleep(0.02)
        assert passes[1] - passes[0] < 2, "the wake waited for the next poll"
    finally:
        await worker.stop(grace=1)


async def test_a_comment_event_names_its_card_so_that_card_is_checked_first(
    receiver: Receiver,
) -> None:
    hints: list[tuple[str, str]] = []
    receiver.receiver.hint = lambda job, page: hints.append((job, page))
    page = str(uuid.uuid4())
    reply = event("comment.created")
    reply["data"] = {"page_id": page, "parent": {"id": page, "type": "page"}}
    assert (await receiver.post(reply)).status_code == 200
    assert hints == [("feedback", page)] and receiver.woke == ["feedback"]
