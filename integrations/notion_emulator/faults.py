"""Seeded fault decisions and the error responses Notion sends for them.

Each request's fate is a pure function of ``(seed, request_index)``: the n-th
request of a run draws from its own RNG seeded with both.  A run that repeats
the same request sequence with the same seed therefore meets the same faults,
and changing the fault rate or the rate limiter's timing does not shift the
draws of later requests.

Error bodies and codes:

* 429 ``rate_limited``, 500 ``internal_server_error``, 503
  ``service_unavailable`` and 504 ``gateway_timeout`` are Notion's documented
  error codes (developers.notion.com status-codes page; notion-sdk-py 3.1's
  ``APIErrorCode`` knows all four) and are answered with Notion's JSON error
  body.  429 always carries ``Retry-After``.
* 502 is not in Notion's documented table: in the field it comes from the edge
  proxy in front of the API with a non-JSON HTML page (notion-sdk-js #457 shows
  clients surfacing it as ``UnknownHTTPResponseError ... status: 502``).  The
  emulator reproduces that, so integrations are tested against an error body
  they cannot parse, which is what they will meet.
* 529 ``service_overload`` is the workspace-wide overload answer described in
  newer Notion docs.  The SDK does not know the code (it raises
  ``UnknownHTTPResponseError``); no ``Retry-After`` is sent because Notion does
  not document one, so clients must fall back to their own backoff.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.responses import HTMLResponse, Response

FAULT_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504, 529})

_JSON_ERRORS: dict[int, tuple[str, str]] = {
    429: ("rate_limited", "You have been rate limited. Please try again in a few minutes."),
    500: ("internal_server_error", "Unexpected error occurred."),
    503: ("service_unavailable", "Notion is unavailable, please try again later."),
    504: (
        "gateway_timeout",
        "Notion timed out while attempting to complete this request. Please try again later.",
    ),
    529: ("service_overload", "Notion is overloaded, please try again later."),
}

_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class FaultDraw:
    """What happens to one request: an injected status, a long delay, or nothing."""

    status: int | None
    delayed: bool


NO_FAULT = FaultDraw(status=None, delayed=False)


def draw(
    seed: int,
    index: int,
    fault_rate: float,
    statuses: Sequence[int],
    timeout_rate: float,
) -> FaultDraw:
    """Decide the fate of request number ``index`` of a run seeded with ``seed``."""
    # A string seed is hashed with SHA-512 by random.Random, so this is stable
    # across processes and Python versions (unlike hash() of a tuple).
    rng = random.Random(f"{seed}:{index}")
    # Always draw all three numbers so each knob is independent of the others.
    fault_roll, status_roll, timeout_roll = rng.random(), rng.random(), rng.random()
    if statuses and fault_roll < fault_rate:
        ordered = sorted(statuses)
        return FaultDraw(status=ordered[int(status_roll * len(ordered))], delayed=False)
    if timeout_roll < timeout_rate:
        return FaultDraw(status=None, delayed=True)
    return NO_FAULT


def error_body(status: int, code: str, message: str) -> dict[str, object]:
    """Notion's error object; every error carries a fresh request id as Notion's do."""
    return {
        "object": "error",
        "status": status,
        "code": code,
        "message": message,
        "request_id": str(uuid.uuid4()),
    }


def error_response(
    status: int,
    *,
    retry_after: int | None = None,
    message: str | None = None,
) -> Response:
    """A ready response for an injected or limiter-generated error."""
    if status == 502:
        return HTMLResponse(_BAD_GATEWAY_HTML, status_code=502)
    if status not in _JSON_ERRORS:
        raise ValueError(f"no Notion error body is defined for status {status}")
    code, default_message = _JSON_ERRORS[status]
    headers: dict[str, str] = {}
    if status == 429:
        # Notion always tells a rate-limited client when to come back.
        headers["Retry-After"] = str(max(1, retry_after if retry_after is not None else 1))
    # Compact separators: byte-for-byte the way Notion serialises its errors.
    body = json.dumps(error_body(status, code, message or default_message), separators=(",", ":"))
    return Response(
        body,
        status_code=status,
        headers=headers,
        media_type="application/json; charset=utf-8",
    )
