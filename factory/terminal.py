"""Card and agent text made safe to show on a terminal or in a log line.

Card titles, comments, agent messages and error texts come from people and
their tools. Written raw to a terminal, an escape sequence in a title can
retitle the window, recolour it or hide what follows; a newline in a log
message forges a log line; `[red]` in rich output is markup. So every such
text passes through `visible` (control characters shown as escapes) and, for
rich output, `shown` (markup escaped as well).
"""

from __future__ import annotations

import logging
import re

from rich.markup import escape

# C0 controls, DEL, C1 controls, and the bidirectional overrides and isolates
# that reorder what follows them ("Trojan Source").
_CONTROL_CLASS = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"


def control_chars(keep: str = "") -> re.Pattern[str]:
    """A pattern matching one control character, except those in `keep`."""
    if not keep:
        return re.compile(_CONTROL_CLASS)
    return re.compile(f"(?![{re.escape(keep)}]){_CONTROL_CLASS}")


CONTROL_CHARS = control_chars()
_UNSAFE_BUT_NEWLINE = control_chars(keep="\n")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\n`)."""
    pattern = _UNSAFE_BUT_NEWLINE if keep_newlines else CONTROL_CHARS
    return pattern.sub(_escape_char, text)


def shown(text: object) -> str:
    """`text` for rich output: control characters visible, markup escaped."""
    return escape(visible(str(text)))


class SafeFormatter(logging.Formatter):
    """A text log formatter that cannot be made to forge lines or send escapes.

    The message is one line whatever it holds; a traceback keeps its own line
    breaks (its frames are ours) but not the control characters of the error
    text inside it.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return visible(super().formatMessage(record))

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return visible(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return visible(super().formatStack(stack_info), keep_newlines=True)
