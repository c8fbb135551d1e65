"""The public webhook port refuses what it should, over real HTTP to a uvicorn-served receiver:
bodies over the cap (announced or streamed), unsigned bodies before any parsing, deep or
broken JSON, the wrong content type, and a verification handshake once a secret is set."""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from integrations.notion_emulator.webhooks import sign
from tests.security.webhook_port.conftest import SECRET, Served, raw_post

MiB = 1 << 20
UNSET_WARNING = "NOTION_WEBHOOK_SECRET is not set"


def event(**data: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-23T01:00:00.000Z",
        "type": "comment.created",
        "authors": [{"id": "person-0001", "type": "person"}],
        "entity": {"id": str(uuid.uuid4()), "type": "comment"},
        "data": data,
    }


def signed(body: bytes, content_type: str | None = "application/json") -> dict[str, str]:
    headers = {"X-Notion-Signature": sign(body, SECRET)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def post(served: Served, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{served.url}/webhooks/notion", content=body, headers=headers, timeout=30)


def megabytes(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    chunk = b"[" * size
    for _ in range(total // size):
        yield chunk


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# -- size -----------------------------------------------------------------------------------


def test_a_body_announced_larger_than_the_cap_is_refused_before_it_is_sent(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    headers = {"Content-Type": "application/json", "Content-Length": str(100 * MiB)}
    # not one byte of the body goes out: the answer must come from the header alone
    answer = raw_post(served.port, headers, [], end=False)
    assert answer.status == 413, answer
    assert json.loads(answer.body) == {"error": f"body larger than {MiB} bytes"}
    assert served.woke == []


@pytest.mark.parametrize("secret", [SECRET, None], ids=["secret-set", "no-secret"])
def test_an_unsigned_chunked_body_past_the_cap_is_refused_while_it_arrives(
    serve: Callable[..., Served], secret: str | None
) -> None:
    """No Content-Length: the cap holds while reading, so the answer arrives long before the
    64 MiB are sent (the receiver stopped buffering; only socket buffers took the rest)."""
    served = serve(secret)
    total = 64 * MiB
    answer = raw_post(
        served.port, {"Content-Type": "application/json"}, megabytes(total), chunked=True
    )
    # with a secret: over the 1 MiB cap; without one nothing but the small verification
    # request is read, so the body is refused as soon as it outgrows that
    assert answer.status == (413 if secret else 401), answer
    assert "error" in json.loads(answer.body)
    assert answer.sent < total // 2, f"the receiver read on to {answer.sent} bytes"


def test_a_signed_body_over_the_configured_cap_is_413_and_one_under_it_is_taken(
    serve: Callable[..., Served],
) -> None:
    served = serve(max_bytes=4096)
    small = json.dumps(event()).encode()
    assert post(served, small, signed(small)).json() == {"ok": True, "woke": "feedback"}
    big = json.dumps(event(padding="x" * 5000)).encode()
    refused = post(served, big, signed(big))
    assert refused.status_code == 413
    assert refused.json() == {"error": "body larger than 4096 bytes"}
    assert served.woke == ["feedback"]


# -- signature before parsing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{not json", nested(100_000), b'{"verification_token": "x"}'],
    ids=["broken-json", "deeply-nested", "verification"],
)
def test_with_a_secret_an_unsigned_body_is_401_whatever_it_contains(
    serve: Callable[..., Served], body: bytes
) -> None:
    served = serve()
    reply = post(served, body, {"Content-Type": "application/json"})
    assert reply.status_code == 401, reply.text
    assert reply.json() == {"error": "bad or missing X-Notion-Signature"}


# -- what a signed body must be -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [nested(100_000), json.dumps(event(deep=json.loads(nested(40)))).encode()],
    ids=["past-the-parser's-recursion-limit", "an-event-40-levels-deep"],
)
def test_deeply_nested_json_is_400_with_a_json_error(
    serve: Callable[..., Served], body: bytes
) -> None:
    served = serve()
    reply = post(served, body, signed(body))
    assert reply.status_code == 400, reply.text
    assert reply.json() == {"error": "JSON nested deeper than 32 levels"}
    assert served.woke == []


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_signed_event_that_is_not_application_json_is_415(
    serve: Callable[..., Served], content_type: str | None
) -> None:
    served = serve()
    body = json.dumps(event()).encode()
    reply = post(served, body, signed(body, content_type))
    assert reply.status_code == 415, reply.text
    assert reply.json() == {"error": "Content-Type must be application/json"}
    assert served.woke == []
    # the same event with the right type (a charset parameter is fine) is taken
    fine = post(served, body, signed(body, "Application/JSON; charset=utf-8"))
    assert fine.json() == {"ok": True, "woke": "feedback"}


@pytest.mark.parametrize(
    "odd",
    [{"data": ["page"]}, {"authors": "bot-0000"}, {"authors": [None]}, {"data": "x"}],
    ids=["data-a-list", "authors-a-string", "authors-not-objects", "data-a-string"],
)
def test_a_signed_event_of_an_odd_shape_still_gets_a_json_answer_not_a_500(
    serve: Callable[..., Served], odd: dict[str, object]
) -> None:
    served = serve()
    body = json.dumps({**event(), **odd}).encode()
    reply = post(served, body, signed(body))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"ok": True, "woke": "feedback"}


# -- the verification handshake ---------------------------------------------------------------


def test_with_a_secret_set_a_verification_request_is_401_and_the_token_file_is_untouched(
    serve: Callable[..., Served],
) -> None:
    served = serve()
    served.token_file.parent.mkdir(parents=True)
    served.token_file.write_text("secret_the_real_one\n")
    before = served.token_file.stat()
    for token in ("secret_" + uuid.uuid4().hex, "A" * (10 * 1024)):
        body = json.dumps({"verification_token": token}).encode()
        reply = post(served, body, {"Content-Type": "application/json"})
        assert reply.status_code == 401, reply.text
    assert served.token_file.read_text() == "secret_the_real_one\n"
    assert served.token_file.stat().st_mtime_ns == before.st_mtime_ns


def test_without_a_secret_the_token_replaces_the_file_atomically_readable_by_the_user_only(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = serve(None)
    folder = served.token_file.parent
    folder.mkdir(parents=True)
    # an older token left world-readable, and a symlink planted at the path: a write in
    # place would keep the old mode and write through the link into the other file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours\n")
    elsewhere.chmod(0o644)
    served.token_file.symlink_to(elsewhere)

    token = "secret_" + uuid.uuid4().hex
    reply = httpx.post(
        f"{served.url}/webhooks/notion", json={"verification_token": token}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    assert not served.token_file.is_symlink()
    assert served.token_file.read_text() == token + "\n"
    assert stat.S_IMODE(served.token_file.stat().st_mode) == 0o600
    assert elsewhere.read_text() == "not yours\n"
    assert sorted(os.listdir(folder)) == [served.token_file.name], "a temp file was left"

    # the same over a plain 0644 file left by an older version
    served.token_file.unlink()
    served.token_file.write_text("old\n")
    served.token_file.chmod(0o644)
    again = httpx.post(
        f"{served.url}/webhooks/notion", json={"verification_token": token}, timeout=30
    )
    assert again.status_code == 200
    assert stat.S_IMODE(served.token_file.stat().st_mode) == 0o600
    assert served.token_file.read_text() == token + "\n"


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("A" * (10 * 1024), 401),  # larger than any verification request: not read
        ("secret_" + "A" * 1100, 400),
        ("secret_abc\nNOTION_WEBHOOK_SECRET=mine", 400),
        ("", 400),
        (12345, 400),
    ],
    ids=["10-KiB", "over-1-KiB", "newline", "empty", "not-a-string"],
)
def test_without_a_secret_an_oversized_or_odd_verification_token_is_refused_and_not_written(
    serve: Callable[..., Served], token: object, status: int
) -> None:
    served = serve(None)
    reply = httpx.post(
        f"{served.url}/webhooks/notion", json={"verification_token": token}, timeout=30
    )
    assert reply.status_code == status, reply.text
    assert "error" in reply.json()
    assert not served.token_file.exists()


# -- the log ------------------------------------------------------------------------------


def test_a_flood_without_a_secret_logs_one_warning_per_window(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    served = serve(None)
    body = json.dumps(event()).encode()
    headers = {"Content-Type": "application/json"}
    with (
        caplog.at_level(logging.WARNING, logger="nfactory.webhooks"),
        httpx.Client(base_url=served.url, timeout=30) as client,
    ):
        for _ in range(50):
            reply = client.post("/webhooks/notion", content=body, headers=headers)
            assert reply.status_code == 401
    warnings = [r for r in caplog.records if UNSET_WARNING in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_after_the_window_the_next_warning_counts_the_ones_held_back(
    serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    served = serve(None, clock=lambda: now[0])
    body = json.dumps(event()).encode()
    headers = {"Content-Type": "application/json"}
    with caplog.at_level(logging.WARNING, logger="nfactory.webhooks"):
        for _ in range(10):
            assert post(served, body, headers).status_code == 401
        now[0] += 59
        assert post(served, body, headers).status_code == 401
        now[0] += 2  # 61 s after the first warning
        assert post(served, body, headers).status_code == 401
    messages = [r.getMessage() for r in caplog.records if UNSET_WARNING in r.getMessage()]
    assert len(messages) == 2, messages
    assert "10 more rejected since the last warning" in messages[1]
