"""Markdown <-> blocks for the page markdown endpoints (a subset of Notion-flavored markdown).

Rendering joins blocks with single newlines, as the recorded responses show
("## New Section\\nHello from markdown."). Nested blocks are indented by tabs.
Inline annotations are written as *toggles* at the boundaries between rich text
items (`**` bold, `*` italic, `~~` strikethrough, backticks for code), so a run
of one to three stars always decodes unambiguously and `parse(render(x)) == x`
for the supported subset. Underline and colours are not rendered (Notion uses
`<span>` tags for them); that loss is listed in the emulator's report.
"""

from __future__ import annotations

import re
from typing import Any

from . import richtext
from .blocks import BlockSpec, payload_for

MdBlock = tuple[str, dict[str, Any], list["MdBlock"]]  # (type, payload, children)

_ALWAYS_ESCAPE = set("\\*`~[]<")
_LIST_MARK = re.compile(r"^([-*+]) (.*)$")
_TODO_MARK = re.compile(r"^- \[( |x|X)\] (.*)$")
_NUMBER_MARK = re.compile(r"^(\d+)\. (.*)$")
_HEADING = re.compile(r"^(#{1,3}) (.*)$")
_CALLOUT = re.compile(r'^<callout icon="([^"]*)">(.*)</callout>$')
_SUMMARY = re.compile(r"^<summary>(.*)</summary>$")
_CHILD_REF = re.compile(r'^<(page|database) url="[^"]*">.*</(page|database)>$')


# -- inline -------------------------------------------------------------------


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ALWAYS_ESCAPE:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("<br>")
        else:
            out.append(ch)
    return "".join(out)


def _toggles(before: dict[str, Any], after: dict[str, Any]) -> str:
    stars = (2 if before["bold"] != after["bold"] else 0) + (
        1 if before["italic"] != after["italic"] else 0
    )
    strike = "~~" if before["strikethrough"] != after["strikethrough"] else ""
    return "*" * stars + strike


def _render_run(items: list[dict[str, Any]]) -> str:
    """Items sharing one href: toggles between them, all closed at the end."""
    plain = richtext.default_annotations()
    state = plain
    out: list[str] = []
    for item in items:
        ann = item["annotations"]
        out.append(_toggles(state, ann))
        state = ann
        text = item["plain_text"]
        if item["type"] == "equation":
            out.append(f"${_escape(text)}$")
        elif ann["code"]:
            out.append(f"`{text}`")
        else:
            out.append(_escape(text))
    out.append(_toggles(state, plain))
    return "".join(out)


def render_inline(items: list[dict[str, Any]]) -> str:
    out: list[str] = []
    run: list[dict[str, Any]] = []
    for item in items:
        if run and run[-1]["href"] != item["href"]:
            out.append(_wrap_link(run))
            run = []
        run.append(item)
    if run:
        out.append(_wrap_link(run))
    return "".join(out)


def _wrap_link(run: list[dict[str, Any]]) -> str:
    body = _render_run(run)
    href = run[0]["href"]
    return f"[{body}]({href})" if href else body


def _items(text: str, state: dict[str, Any], href: str | None) -> list[dict[str, Any]]:
    # Markdown text has no length limit; Notion stores it as ≤2,000-character items.
    out = []
    for start in range(0, len(text), richtext.MAX_TEXT):
        raw: dict[str, Any] = {
            "type": "text",
            "text": {"content": text[start : start + richtext.MAX_TEXT]},
            "annotations": dict(state),
        }
        if href:
            raw["text"]["link"] = {"url": href}
        out.append(richtext.normalize_item(raw, "markdown"))
    return out


def _find_link_end(text: str, start: int) -> tuple[int, int] | None:
    """Index of the `]` closing the link text opened before `start`, and of its `)`."""
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "`":
            close = text.find("`", i + 1)
            i = close + 1 if close >= 0 else len(text)
            continue
        if ch == "]":
            if text.startswith("(", i + 1):
                end = text.find(")", i + 2)
                if end >= 0:
                    return i, end
            return None
        i += 1
    return None


def parse_inline(text: str) -> list[dict[str, Any]]:
    state = richtext.default_annotations()
    items: list[dict[str, Any]] = []
    _parse_into(text, state, None, items)
    return merge(items)


def _parse_into(
    text: str, state: dict[str, Any], href: str | None, items: list[dict[str, Any]]
) -> None:
    buf: list[str] = []

    def flush() -> None:
        if buf:
            items.extend(_items("".join(buf), state, href))
            buf.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
        elif text.startswith("<br>", i):
            buf.append("\n")
            i += 4
        elif ch == "*":
            run = len(text[i:]) - len(text[i:].lstrip("*"))
            flush()
            run = min(run, 3)
            if run >= 2:
                state["bold"] = not state["bold"]
            if run in (1, 3):
                state["italic"] = not state["italic"]
            i += run
        elif text.startswith("~~", i):
            flush()
            state["strikethrough"] = not state["strikethrough"]
            i += 2
        elif ch == "`" and text.find("`", i + 1) >= 0:
            flush()
            close = text.find("`", i + 1)
            items.extend(_items(text[i + 1 : close], state | {"code": True}, href))
            i = close + 1
        elif ch == "[" and href is None and (found := _find_link_end(text, i + 1)):
            flush()
            close, end = found
            _parse_into(text[i + 1 : close], state, text[close + 2 : end], items)
            i = end + 1
        else:
            buf.append(ch)
            i += 1
    flush()


def merge(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join neighbours with equal formatting and split at 2,000 characters, as Notion stores."""
    joined: list[dict[str, Any]] = []
    for item in items:
        prev = joined[-1] if joined else None
        if (
            prev is not None
            and prev["type"] == item["type"] == "text"
            and prev["annotations"] == item["annotations"]
            and prev["href"] == item["href"]
        ):
            text = prev["plain_text"] + item["plain_text"]
            joined[-1] = {**prev, "text": {**prev["text"], "content": text}, "plain_text": text}
        else:
            joined.append(item)
    out: list[dict[str, Any]] = []
    for item in joined:
        text = item["plain_text"]
        if item["type"] != "text" or len(text) <= richtext.MAX_TEXT:
            out.append(item)
            continue
        for k in range(0, len(text), richtext.MAX_TEXT):
            part = text[k : k + richtext.MAX_TEXT]
            out.append({**item, "text": {**item["text"], "content": part}, "plain_text": part})
    return out


# -- blocks -> markdown ------------------------------------------------------


def _line_start_safe(line: str) -> str:
    """Keep a paragraph from being read back as another block type."""
    if re.match(r"^(#|>|- |\+ |-{3}|<)", line):
        return "\\" + line
    match = re.match(r"^(\d+)\. ", line)
    if match:
        return f"{match.group(1)}\\. {line[match.end() :]}"
    return line


def render(blocks: list[MdBlock], depth: int = 0) -> str:
    lines: list[str] = []
    number = 0
    for kind, payload, children in blocks:
        number = number + 1 if kind == "numbered_list_item" else 0
        indent = "\t" * depth
        text = render_inline(payload.get("rich_text", []))
        if kind == "paragraph":
            line = _line_start_safe(text) if text else "<empty-block/>"
        elif kind.startswith("heading_"):
            line = "#" * int(kind[-1]) + " " + text
        elif kind == "bulleted_list_item":
            line = "- " + text
        elif kind == "numbered_list_item":
            line = f"{number}. " + text
        elif kind == "to_do":
            line = f"- [{'x' if payload.get('checked') else ' '}] " + text
        elif kind == "quote":
            line = "> " + text
        elif kind == "divider":
            line = "---"
        elif kind == "callout":
            icon = (payload.get("icon") or {}).get("emoji", "")
            line = f'<callout icon="{icon}">{text}</callout>'
        elif kind == "code":
            language = payload.get("language", "plain text")
            fence = "```" + ("" if language == "plain text" else language)
            body = "".join(item["plain_text"] for item in payload.get("rich_text", []))
            lines.append(indent + fence)
            lines.extend(indent + code_line for code_line in body.split("\n"))
            lines.append(indent + "```")
            continue
        elif kind == "toggle":
            lines.append(indent + "<details>")
            lines.append(indent + f"<summary>{text}</summary>")
            if children:
                lines.append(render(children, depth + 1))
            lines.append(indent + "</details>")
            continue
        elif kind in ("child_page", "child_database"):
            tag = "page" if kind == "child_page" else "database"
            line = f'<{tag} url="{payload["url"]}">{_escape(payload["title"])}</{tag}>'
        else:
            continue  # unknown to markdown: reported through unknown_block_ids
        lines.append(indent + line)
        if children:
            lines.append(render(children, depth + 1))
    return "\n".join(lines)


# -- markdown -> blocks -------------------------------------------------------


def _depth(line: str) -> tuple[int, str]:
    depth = 0
    rest = line
    while True:
        if rest.startswith("\t"):
            rest = rest[1:]
        elif rest.startswith("  ") and re.match(r"^\s*([-*+] |\d+\. )", rest):
            rest = rest[2:]
        else:
            return depth, rest
        depth += 1


def _spec(kind: str, fields: dict[str, Any]) -> BlockSpec:
    return BlockSpec(kind, payload_for(kind, fields, "markdown"))


def _text_block(kind: str, text: str, **extra: Any) -> BlockSpec:
    return _spec(kind, {"rich_text": parse_inline(text), **extra})


def _parse_line(rest: str) -> BlockSpec:
    if rest == "---":
        return _spec("divider", {})
    if rest == "<empty-block/>":
        return _spec("paragraph", {"rich_text": []})
    if match := _HEADING.match(rest):
        return _text_block(f"heading_{len(match.group(1))}", match.group(2))
    if match := _TODO_MARK.match(rest):
        return _text_block("to_do", match.group(2), checked=match.group(1) in "xX")
    if match := _LIST_MARK.match(rest):
        return _text_block("bulleted_list_item", match.group(2))
    if match := _NUMBER_MARK.match(rest):
        return _text_block("numbered_list_item", match.group(2))
    if rest.startswith("> ") or rest == ">":
        return _text_block("quote", rest[2:])
    if match := _CALLOUT.match(rest):
        icon = {"type": "emoji", "emoji": match.group(1)} if match.group(1) else None
        return _text_block("callout", match.group(2), icon=icon)
    return _text_block("paragraph", rest)


def parse(markdown: str) -> list[BlockSpec]:
    lines = markdown.split("\n")
    root: list[BlockSpec] = []
    # stack[d] is the list that receives blocks at depth d
    stack: list[list[BlockSpec]] = [root]
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if not raw.strip():
            continue
        depth, rest = _depth(raw)
        depth = min(depth, len(stack) - 1)
        del stack[depth + 1 :]
        target = stack[depth]
        if rest.startswith("```"):
            language = rest[3:].strip() or "plain text"
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i][depth:] if lines[i].startswith("\t" * depth) else lines[i])
                i += 1
            i += 1
            content = "\n".join(body)
            chunks = [
                content[k : k + richtext.MAX_TEXT]
                for k in range(0, len(content), richtext.MAX_TEXT)
            ]
            rich = [{"text": {"content": c}} for c in chunks]
            target.append(_spec("code", {"rich_text": rich, "language": language}))
            continue
        if rest == "<details>":
            summary = ""
            if i < len(lines) and (match := _SUMMARY.match(_depth(lines[i])[1])):
                summary = match.group(1)
                i += 1
            spec = _text_block("toggle", summary)
            target.append(spec)
            stack.append(spec.children)
            continue
        if rest == "</details>" or _CHILD_REF.match(rest):
            # Child pages and databases are not created from markdown; their
            # references are left alone when content is replaced.
            continue
        spec = _parse_line(rest)
        target.append(spec)
        stack.append(spec.children)
    return root
