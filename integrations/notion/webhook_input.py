"""What the public webhook port accepts before anything trusts it: pure checks, no I/O.

Everything here runs on unauthenticated input, so each check is bounded: the body
is capped while it is read, nothing is parsed before its signature is checked
(or, with no secret yet, unless it is small enough to be the verification request),
and a parse failure of any kind is a refusal, never a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 1 << 20
# Notion's verification request is `{"verification_token": "secret_..."}`: well under this.
VERIFICATION_MAX_BYTES = 4096
TOKEN_MAX_CHARS = 1024
# Notion's envelopes nest four or five levels; anything far deeper is not an event.
MAX_DEPTH = 32

_TOKEN = re.compile(rf"[A-Za-z0-9_\-]{{1,{TOKEN_MAX_CHARS}}}")


class Refused(Exception):
    """Input refused: `status` is the HTTP answer, `reason` a one-line error (never the input)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def declared_length_ok(content_length: str | None, cap: int) -> bool:
    """False when the client announces more than `cap` bytes: refuse before reading any."""
    if content_length is None:
        return True  # chunked: the cap is enforced while reading
    try:
        return int(content_length) <= cap
    except ValueError:
        return True  # the HTTP server rejects malformed framing itself


async def read_capped(chunks: AsyncIterator[bytes], cap: int) -> bytes:
    """The whole body, or `Refused(413)` as soon as it would exceed `cap`.

    The buffer never holds more than `cap` bytes: the chunk that would overflow it
    is refused, not appended.
    """
    body = bytearray()
    async for chunk in chunks:
        if len(body) + len(chunk) > cap:
            raise Refused(413, f"body larger than {cap} bytes")
        body += chunk
    return bytes(body)


def is_json_content_type(header: str | None) -> bool:
    """`application/json`, with or without parameters such as `; charset=utf-8`."""
    if not header:
        return False
    return header.split(";", 1)[0].strip().lower() == "application/json"


def depth(doc: Any) -> int:
    """How deeply `doc` nests (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in node)
    return deepest


def decode_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The parsed body, or `Refused(400)`. json's C parser guards its own recursion
    (RecursionError well before the C stack is at risk), so a deep body costs at most
    one linear pass before it is refused."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise Refused(400, f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:  # also invalid UTF-8 (UnicodeDecodeError)
        raise Refused(400, "body is not JSON") from None
    if depth(doc) > max_depth:
        raise Refused(400, f"JSON nested deeper than {max_depth} levels")
    return doc


def is_verification(doc: Any) -> bool:
    return isinstance(doc, dict) and "verification_token" in doc and "type" not in doc


def verification_token(doc: dict[str, Any]) -> str:
    """The token to store, or `Refused(400)`: it becomes a signing secret and a file's
    content, so only a short run of URL-safe characters is taken."""
    token = doc.get("verification_token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise Refused(
            400,
            f"verification_token must be 1 to {TOKEN_MAX_CHARS} letters, digits, '_' or '-'",
        )
    return token


@dataclass
class WarningLimiter:
    """At most one warning per `window` seconds; the next one says how many were held back.

    A public port that logs on every bad request lets anyone flood the log.
    """

    window: float
    _last: float | None = None
    _held: int = 0

    @property
    def held_back(self) -> int:
        """Warnings suppressed since the last one logged."""
        return self._held

    def admit(self, now: float) -> int | None:
        """None: stay quiet. Otherwise log now, saying the returned number were suppressed."""
        if self._last is not None and now - self._last < self.window:
            self._held += 1
            return None
        held, self._held, self._last = self._held, 0, now
        return held
