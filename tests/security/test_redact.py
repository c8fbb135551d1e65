"""The redactor: any token, in any form a message can carry it, comes out absent."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory.cli.live import JsonFormatter
from factory.redact import PLACEHOLDER, RedactingFilter, Redactor
from integrations.notion.client import NotionClient


def _utf8(token: str) -> bytes:
    return token.encode("utf-8", "backslashreplace")


# How a token turns up in text, each computed the way the library that leaks it does.
FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda t: t,
    "repr": repr,
    "ascii": ascii,
    "bytes repr": lambda t: repr(_utf8(t)),
    "bearer header bytes": lambda t: repr(b"Bearer " + _utf8(t)),
    "header error": lambda t: f"Illegal header value {(b'Bearer ' + _utf8(t))!r}",
    "json": json.dumps,
    "json unicode": lambda t: json.dumps(t, ensure_ascii=False),
    "url": lambda t: quote(_utf8(t), safe=""),
    "url path": lambda t: quote(_utf8(t)),
    "url form": lambda t: quote_plus(_utf8(t)),
    "url lowercase hex": lambda t: re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), quote(_utf8(t), safe="")
    ),
    "json of repr": lambda t: json.dumps(repr(_utf8(t))),
    "repr of json": lambda t: repr(json.dumps(t)),
    "repr in a tuple": lambda t: repr(("Authorization", f"Bearer {t}")),
}


def spellings(token: str) -> set[str]:
    """Every spelling of `token` itself (quotes stripped) that must not survive."""
    found = {token}
    for name in ("repr", "ascii", "bytes repr", "json", "json unicode"):
        text = FORMS[name](token)
        found.add(text[2:-1] if name == "bytes repr" else text[1:-1])
    for name in ("url", "url path", "url form"):
        found.add(FORMS[name](token))
    return {s for s in found if s}


@given(
    token=st.text(min_size=1, max_size=40),
    form=st.sampled_from(sorted(FORMS)),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_every_form_of_any_token_is_removed(token: str, form: str, before: str, after: str) -> None:
    message = before + FORMS[form](token) + after
    cleaned = Redactor([token])(message)
    for spelling in spellings(token):
        assert spelling not in cleaned


@given(
    token=st.from_regex(r"ntn_[A-Za-z0-9]{20,50}", fullmatch=True),
    form=st.sampled_from(sorted(FORMS)),
    before=st.text(alphabet="abc xyz:;.!", max_size=30),
    after=st.text(alphabet="abc xyz:;.!", max_size=30),
)
def test_a_real_shaped_token_leaves_the_rest_of_the_message(
    token: str, form: str, before: str, after: str
) -> None:
    cleaned = Redactor([token])(before + FORMS[form](token) + after)
    assert cleaned.startswith(before) and cleaned.endswith(after)
    assert PLACEHOLDER in cleaned and token not in cleaned


def test_text_without_the_token_is_unchanged() -> None:
    text = "Notion 404 object_not_found: Could not find page 1234"
    assert Redactor(["ntn_abcdefabcdefabcdef"])(text) is text


@pytest.mark.parametrize("formatter", [logging.Formatter(), JsonFormatter()])
def test_log_records_lose_the_token_in_message_args_and_traceback(
    formatter: logging.Formatter,
) -> None:
    token = "ntn_logcanary0123456789\n"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(Redactor([token])))
    log = logging.getLogger("tests.security.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("sending %r as %s", b"Bearer " + token.encode(), json.dumps(token))
        try:
            raise ValueError(f"Illegal header value {('Bearer ' + token).encode()!r}")
        except ValueError:
            log.exception("request failed for %s", token)
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "logcanary" not in written, written
    assert written.count(PLACEHOLDER) >= 4 and "ValueError" in written


async def test_a_client_error_never_quotes_the_token() -> None:
    """A transport failure's text is built by httpx; the client scrubs it regardless.

    The backslash is legal in a header and doubled by the bytes repr, so only a
    redactor that knows the escaped form catches it."""
    token = "ntn_clientcanary\\0123456789"

    def fail(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        raise httpx.ReadError(f"connection reset while sending {auth.encode()!r}", request=request)

    client = NotionClient(token, "https://notion.invalid", max_attempts=1)
    # the transport is the seam: no real server makes httpx quote the request headers
    client._sdk.client = httpx.AsyncClient(
        base_url="https://notion.invalid/v1/", transport=httpx.MockTransport(fail)
    )
    with pytest.raises(Exception) as caught:
        await client.me()
    await client.aclose()
    text = f"{caught.value} {caught.value!r}"
    assert "clientcanary" not in text and "ReadError" in text
