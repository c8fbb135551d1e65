"""Text to Notion rich text objects, within Notion's per-item limits.

Pure functions, no I/O. Notion validates lengths as JavaScript does, in UTF-16
code units, so an emoji counts twice: every length here is measured that way,
which is never less than Python's count of code points. Splitting never drops
or alters a character: joining the `content` of the items gives the input back.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Any

MAX_TEXT = 2000  # characters per text.content
MAX_URL = 2000  # characters per link url
MAX_ITEMS = 100  # items per rich text array

ANNOTATIONS = ("bold", "italic", "strikethrough", "code")

# Only schemes Notion is known to accept as links; anything else stays text
# rather than risking a 400 for the whole request.
_LINKABLE = re.compile(r"^(?:https?://|mailto:)\S+$", re.IGNORECASE)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def units(text: str) -> int:
    """Length as Notion counts it (UTF-16 code units)."""
    return len(text) + len(_ASTRAL.findall(text))


def _prefix_within(text: str, start: int, limit: int) -> int:
    """The largest end such that text[start:end] is at most `limit` units."""
    end = min(len(text), start + limit)
    extra = len(_ASTRAL.findall(text, start, end))
    if end - start + extra <= limit:
        return end
    used = 0
    i = start
    while i < len(text):
        width = 2 if ord(text[i]) > 0xFFFF else 1
        if used + width > limit:
            break
        used += width
        i += 1
    return i


def _cut(text: str, start: int, end: int, seps: tuple[str, ...]) -> int:
    """Where to end a piece in text[start:end]: after a separator in its second half.

    Only the second half is searched so pieces stay at least half full; a
    piece cut at the first space of a long window would multiply the item
    count and hit the 100-item array limit sooner.
    """
    low = start + max(1, (end - start) // 2)
    for sep in seps:
        if sep == " ":
            for i in range(end - 1, low - 1, -1):
                if text[i].isspace():
                    return i + 1
        else:
            i = text.rfind(sep, low, end)
            if i >= 0:
                return i + len(sep)
    return end


def split_text(text: str, limit: int, seps: tuple[str, ...] = ("\n", " ")) -> list[str]:
    """Pieces of at most `limit` units, cut after a separator when one is near the end.

    `" "` in `seps` stands for any whitespace. `"".join(result) == text`.
    """
    if limit < 2:
        raise ValueError("limit must allow a surrogate pair")
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = _prefix_within(text, start, limit)
        if end < len(text):
            end = _cut(text, start, end, seps)
        pieces.append(text[start:end])
        start = end
    return pieces


def item(
    content: str, marks: frozenset[str] = frozenset(), href: str | None = None
) -> dict[str, Any]:
    """One rich text object in request form; defaults are left out to keep requests small."""
    text: dict[str, Any] = {"content": content}
    if href:
        text["link"] = {"url": href}
    out: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        out["annotations"] = {name: True for name in ANNOTATIONS if name in marks}
    return out


def rich_text(text: str) -> list[dict[str, Any]]:
    """Plain text as rich text items of at most 2,000 characters each.

    The array may exceed 100 items for very long text; callers that need an
    array limit (blocks, comments) group the items themselves.
    """
    return [item(piece) for piece in split_text(text, MAX_TEXT)]


def linkable(url: str) -> bool:
    return units(url) <= MAX_URL and bool(_LINKABLE.match(url))


# -- inline markdown ------------------------------------------------------------

_DELIMS = "*_~"
_MAX_NESTING = 32  # deeper emphasis is kept as literal text, never recursed into
_ESCAPABLE = frozenset("\\`*_{}[]()#+-.!~>|<")

Segment = tuple[str, frozenset[str], str | None]  # (text, marks, href)


class _Scan:
    """Positions of the inline constructs of one string, found once up front.

    Code spans bind tighter than everything else and their content is literal,
    so they are found first and the other constructs ignore their insides.
    Closers are looked up by position, so a string full of unmatched
    delimiters costs linear time instead of a rescan per delimiter.
    """

    def __init__(self, s: str) -> None:
        self.s = s
        self.escaped: set[int] = set()  # positions of backslashes that escape the next char
        self.code: dict[int, int] = {}  # start of a code span -> its end (exclusive)
        self.runs: dict[int, int] = {}  # start of a delimiter run -> its length
        self.closers: dict[tuple[str, int], list[int]] = {}
        self.brackets: dict[int, int] = {}  # "[" -> matching "]"
        self._find()

    def _find(self) -> None:
        s = self.s
        ticks: dict[int, list[int]] = {}
        runs: list[tuple[int, int]] = []
        i = 0
        while i < len(s):
            ch = s[i]
            if ch == "\\" and i + 1 < len(s) and s[i + 1] in _ESCAPABLE:
                self.escaped.add(i)
                i += 2
                continue
            if ch == "`" or ch in _DELIMS:
                j = i
                while j < len(s) and s[j] == ch:
                    j += 1
                if ch == "`":
                    ticks.setdefault(j - i, []).append(i)
                runs.append((i, j - i))
                i = j
                continue
            i += 1
        self._pair_code(ticks)
        stack: list[int] = []
        i = 0
        while i < len(s):
            if i in self.code:
                i = self.code[i]
                continue
            if i in self.escaped:
                i += 2
                continue
            if s[i] == "[":
                stack.append(i)
            elif s[i] == "]" and stack:
                self.brackets[stack.pop()] = i
            i += 1
        for start, length in runs:
            if s[start] == "`" or self._in_code(start):
                continue
            self.runs[start] = length
            before = s[start - 1] if start else " "
            after = s[start + length] if start + length < len(s) else " "
            if before.isspace() or (s[start] == "_" and after.isalnum()):
                continue
            self.closers.setdefault((s[start], length), []).append(start)

    def _pair_code(self, ticks: dict[int, list[int]]) -> None:
        # A run of n backticks closes at the next run of exactly n backticks.
        opens = sorted((pos, n) for n, positions in ticks.items() for pos in positions)
        taken_until = -1
        for pos, n in opens:
            if pos < taken_until:
                continue
            same = ticks[n]
            k = bisect_right(same, pos)
            if k < len(same):
                self.code[pos] = taken_until = same[k] + n
        self._starts = sorted(self.code)

    def _in_code(self, pos: int) -> bool:
        k = bisect_right(self._starts, pos) - 1
        return k >= 0 and self._starts[k] < pos < self.code[self._starts[k]]

    def closer(self, kind: tuple[str, int], after: int, limit: int) -> int | None:
        positions = self.closers.get(kind, [])
        k = bisect_left(positions, after)
        if k < len(positions) and positions[k] + kind[1] <= limit:
            return positions[k]
        return None


def _marks_for(ch: str, length: int) -> frozenset[str] | None:
    if ch == "~":
        return frozenset({"strikethrough"}) if length == 2 else None
    return {1: frozenset({"italic"}), 2: frozenset({"bold"}), 3: frozenset({"bold", "italic"})}.get(
        length
    )


def _parse(
    scan: _Scan,
    start: int,
    end: int,
    marks: frozenset[str],
    href: str | None,
    depth: int,
) -> Iterator[Segment]:
    s = scan.s
    buf: list[str] = []

    def flush() -> Iterator[Segment]:
        if buf:
            yield "".join(buf), marks, href
            buf.clear()

    i = start
    while i < end:
        ch = s[i]
        if i in scan.code and scan.code[i] <= end:
            close = scan.code[i]
            n = 1
            while s[i + n] == "`":
                n += 1
            yield from flush()
            yield s[i + n : close - n], marks | {"code"}, href
            i = close
            continue
        if i in scan.escaped:
            buf.append(s[i + 1])
            i += 2
            continue
        if ch == "[" and depth < _MAX_NESTING:
            link = _link_at(scan, i, end)
            if link is not None:
                text_end, url, after = link
                yield from flush()
                yield from _parse(scan, i + 1, text_end, marks, url, depth + 1)
                i = after
                continue
        if i in scan.runs:
            length = scan.runs[i]
            new = _marks_for(ch, length)
            nxt = s[i + length] if i + length < len(s) else " "
            prev = s[i - 1] if i else " "
            opens = (
                new is not None
                and depth < _MAX_NESTING
                and not nxt.isspace()
                and not (ch == "_" and prev.isalnum())
            )
            close = scan.closer((ch, length), i + length + 1, end) if opens else None
            if close is not None and new is not None:
                yield from flush()
                yield from _parse(scan, i + length, close, marks | new, href, depth + 1)
                i = close + length
                continue
            buf.append(s[i : i + length])
            i += length
            continue
        buf.append(ch)
        i += 1
    yield from flush()


def _link_at(scan: _Scan, i: int, end: int) -> tuple[int, str, int] | None:
    """(end of the link text, url, position after the link) for `[text](url)` at i."""
    s = scan.s
    close = scan.brackets.get(i)
    if close is None or close + 1 >= end or s[close + 1] != "(":
        return None
    # Balanced parentheses belong to the URL, as in .../wiki/Foo_(bar).
    depth = 0
    paren = close + 2
    while paren < end:
        if s[paren] == "(":
            depth += 1
        elif s[paren] == ")":
            if depth == 0:
                break
            depth -= 1
        elif s[paren].isspace():
            return None
        paren += 1
    if paren >= end:
        return None
    url = s[close + 2 : paren]
    if not linkable(url):
        return None
    return close, url, paren + 1


def segments(md: str) -> list[Segment]:
    """Inline markdown as (text, marks, href) runs, neighbours with equal style merged."""
    out: list[Segment] = []
    for text, marks, href in _parse(_Scan(md), 0, len(md), frozenset(), None, 0):
        if not text:
            continue
        if out and out[-1][1] == marks and out[-1][2] == href:
            out[-1] = (out[-1][0] + text, marks, href)
        else:
            out.append((text, marks, href))
    return out


def inline(md: str) -> list[dict[str, Any]]:
    """Inline markdown (bold, italic, code, strikethrough, links) as rich text items.

    Unmatched delimiters and links Notion would refuse (URL over 2,000
    characters, or not http(s)/mailto) stay in the text as written, so nothing
    the person wrote disappears. Items over 2,000 characters are split with
    the same annotations.
    """
    return [
        item(piece, marks, href)
        for text, marks, href in segments(md)
        for piece in split_text(text, MAX_TEXT)
    ]


def plain(items: list[dict[str, Any]]) -> str:
    """The text of rich text items, in request form (text.content) or response form."""
    out: list[str] = []
    for it in items:
        if "plain_text" in it:
            out.append(str(it["plain_text"]))
        elif "text" in it:
            out.append(str(it["text"].get("content", "")))
        elif "equation" in it:
            out.append(str(it["equation"].get("expression", "")))
    return "".join(out)
