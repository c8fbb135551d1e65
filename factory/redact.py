"""Scrubbing secrets from text bound for people: error lines, log records.

A secret rarely leaks verbatim: an HTTP library quotes the header as bytes
(`b'Bearer ntn_…\\n'`), a traceback shows a repr, a JSON log escapes it, a URL
percent-encodes it. `Redactor` knows every such form of each secret it holds
and replaces them all. One process-wide redactor collects the secrets this
process has read (`register`), so the CLI's last-line guards (the one-line
error printer and the log filter) need no settings of their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import quote, quote_plus

PLACEHOLDER = "[redacted]"
# Shown instead of a text whose redaction could not be made complete (a secret
# so short or odd that the placeholder itself rebuilds it).
WITHHELD = "[message withheld: it contained a secret]"
_ESCAPE_HEX = re.compile(r"(\\x|\\u|\\U|%)([0-9a-fA-F]+)")


def _py_escape(text: str, quote_char: str | None, ascii_only: bool) -> str:
    """The inside of repr()/ascii() of `text`, escaping `quote_char` as repr would."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote_char:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable() and not (ascii_only and code > 0x7E):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _bytes_escape(data: bytes, quote_char: str | None) -> str:
    """The inside of repr() of `data`: byte for byte what ascii() does to its Latin-1 text."""
    return _py_escape(data.decode("latin-1"), quote_char, ascii_only=True)


def _encodings(secret: str) -> list[bytes]:
    found = [secret.encode("utf-8", "backslashreplace")]
    with contextlib.suppress(UnicodeEncodeError):
        found.append(secret.encode("latin-1"))
    return found


def _escaped_once(secret: str) -> set[str]:
    forms = {secret}
    for quote_char in ("'", '"', None):
        forms.add(_py_escape(secret, quote_char, ascii_only=False))
        forms.add(_py_escape(secret, quote_char, ascii_only=True))
        for data in _encodings(secret):
            forms.add(_bytes_escape(data, quote_char))
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    for data in _encodings(secret):
        forms.add(quote(data, safe=""))
        forms.add(quote(data))
        forms.add(quote_plus(data))
    # Escapes come in either case (`\xC4`, `%c3`): add both spellings of the hex.
    for form in list(forms):
        forms.add(_ESCAPE_HEX.sub(lambda m: m.group(1) + m.group(2).lower(), form))
        forms.add(_ESCAPE_HEX.sub(lambda m: m.group(1) + m.group(2).upper(), form))
    return forms


@lru_cache(maxsize=64)
def secret_forms(secret: str) -> frozenset[str]:
    """Every spelling of `secret` a message may carry: raw, repr/ascii/bytes repr,
    JSON-escaped, URL-encoded, and each of those escaped once more (a JSON log
    line quoting a repr)."""
    if not secret:
        return frozenset()
    first = _escaped_once(secret)
    forms = set(first)
    for form in first:
        forms.add(json.dumps(form)[1:-1])
        forms.add(_py_escape(form, "'", ascii_only=False))
        forms.add(_py_escape(form, '"', ascii_only=False))
    return frozenset(f for f in forms if f)


class Redactor:
    """Replaces every form of every secret it holds with PLACEHOLDER."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: tuple[str, ...] = ()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.add(secret)
            forms = set(self._forms) | secret_forms(secret)
            # Longest first, so `Bearer x\n` goes whole rather than leaving `\n` behind.
            self._forms = tuple(sorted(forms, key=lambda f: (-len(f), f)))
            self._pattern = re.compile("|".join(re.escape(f) for f in self._forms))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        pattern, forms = self._pattern, self._forms
        if pattern is None or not pattern.search(text):
            return text
        for _ in range(4):
            text = pattern.sub(PLACEHOLDER, text)
            if not pattern.search(text):
                return text
        # The placeholder next to what is left spells a secret again: show nothing of it.
        return "" if any(f in WITHHELD for f in forms) else WITHHELD


_process = Redactor()


def register(secret: str | None) -> None:
    """Remember a secret this process holds, so every later message is scrubbed of it."""
    _process.add(secret)


def redact(text: str) -> str:
    """`text` without any form of any registered secret."""
    return _process(text)


class RedactingFilter(logging.Filter):
    """Scrubs a record's message, exception and stack text before any handler formats it.

    The message is rendered here (args merged) and the exception pre-formatted
    into `exc_text`, which formatters print instead of formatting `exc_info` again.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or _process

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor:
            return True
        record.msg = self.redactor(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


def install_log_redaction() -> None:
    """Put the process redactor on every handler that exists now (root, named, last resort)."""
    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
