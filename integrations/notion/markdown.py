"""Markdown for a Notion page, cut to fit Notion's request limits. Pure, no I/O.

Writing: `markdown_to_blocks` (the blocks API) and `markdown_chunks` (the
markdown endpoint), `batches` for append requests, `comment_chunks` for
comments. Reading: `split_bot_section` and `plain_text` separate the person's
description from the bot's own section, so the bot's log never becomes the
context of a later run.

Limits (Notion answers 400 validation_error beyond them): 2,000 characters
per rich text item, 100 items per rich text array, 100 blocks per children
array, 2 levels of nesting below the appended blocks, 1,000 blocks and 500 KB
per request. Whenever something is too big it is split, never shortened.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from integrations.notion.richtext import (
    MAX_ITEMS,
    MAX_TEXT,
    inline,
    plain,
    rich_text,
    split_text,
    units,
)

__all__ = [
    "BOT_HEADING",
    "CODE_LANGUAGES",
    "batches",
    "blocks_bot_header",
    "bot_section_header",
    "comment_chunks",
    "first_line",
    "inline",
    "markdown_chunks",
    "markdown_to_blocks",
    "plain_text",
    "rich_text",
    "split_bot_section",
]

BOT_HEADING = "🤖 notion-factory log"

MAX_CHILD_DEPTH = 2  # levels of children Notion takes below the appended blocks
MAX_CHILDREN = 100  # blocks per children array, at any level
MAX_REQUEST_BLOCKS = 1000  # blocks per request, nested ones included
# One block's rich text, JSON-encoded, stays under this so that a block and its
# two levels of parents always fit one request under TREE_BYTES.
BLOCK_TEXT_BYTES = 100_000
# A top-level block with all its children stays under this, below the
# 450 KB default of `batches` and Notion's 500 KB per request.
TREE_BYTES = 400_000
# A comment's text: with JSON escaping at most 6 bytes per unit this is
# ~360 KB, and items split at whitespace (each at least half full) stay
# far below 100 per comment.
COMMENT_UNITS = 60_000

# Notion's code language enum is closed: anything else is a 400 for the
# whole append. This is the part of it people write in fences, plus the
# usual fence aliases; everything else becomes "plain text".
CODE_LANGUAGES: dict[str, str] = {
    name: name
    for name in (
        "bash", "c", "c#", "c++", "clojure", "css", "dart", "diff", "docker", "elixir",
        "elm", "erlang", "go", "graphql", "groovy", "haskell", "html", "java", "javascript",
        "json", "julia", "kotlin", "latex", "lua", "makefile", "markdown", "mermaid", "nix",
        "ocaml", "perl", "php", "plain text", "powershell", "protobuf", "python", "r", "ruby",
        "rust", "scala", "scss", "shell", "sql", "swift", "toml", "typescript", "xml", "yaml",
    )
} | {
    "py": "python", "python3": "python", "js": "javascript", "jsx": "javascript",
    "mjs": "javascript", "ts": "typescript", "tsx": "typescript", "sh": "shell",
    "zsh": "shell", "console": "shell", "shell-session": "shell", "ps1": "powershell",
    "pwsh": "powershell", "yml": "yaml", "cpp": "c++", "cxx": "c++", "h": "c",
    "cs": "c#", "csharp": "c#", "rb": "ruby", "rs": "rust", "kt": "kotlin",
    "golang": "go", "dockerfile": "docker", "md": "markdown", "tex": "latex",
    "proto": "protobuf", "make": "makefile", "htm": "html", "jsonc": "json",
    "patch": "diff", "text": "plain text", "txt": "plain text", "plaintext": "plain text",
    "ex": "elixir", "exs": "elixir", "erl": "erlang", "hs": "haskell", "ml": "ocaml",
    "pl": "perl", "svg": "xml", "postgresql": "sql", "mysql": "sql", "sqlite": "sql",
}  # fmt: skip

_TEXT_KINDS = frozenset(
    {"paragraph", "heading_1", "heading_2", "heading_3", "bulleted_list_item",
     "numbered_list_item", "to_do", "quote", "callout", "toggle", "code"}
)  # fmt: skip
_LIST_KINDS = frozenset({"bulleted_list_item", "numbered_list_item", "to_do"})

_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")
_DIVIDER = re.compile(r"^([-*_])(?:[ \t]*\1){2,}$")
_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})(?:[ \t]+(.*))?$")
_ITEM = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$")
_TODO = re.compile(r"^\[([ xX])\](?:[ \t]+(.*))?$")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?(.*)$")
_MARKERS = re.compile(r"^(?:>|(?:#{1,6}|[-*+]|\d{1,9}[.)]|\[[ xX]\])(?:[ \t]+|$))")


# -- markdown to blocks -----------------------------------------------------------


@dataclass
class _Node:
    kind: str
    text: str
    depth: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    children: list[_Node] = field(default_factory=list)
    parent: _Node | None = None


def _indent(line: str) -> int:
    width = 0
    for ch in line:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += 4 - width % 4
        else:
            break
    return width


def _language(info: str) -> tuple[str, str]:
    """(Notion language, caption): an info string Notion can't take is kept as the caption."""
    info = info.strip()
    if not info:
        return "plain text", ""
    exact = CODE_LANGUAGES.get(info.lower())
    if exact:
        return exact, ""
    first = info.split()[0].lower()
    return CODE_LANGUAGES.get(first, "plain text"), info


class _Tree:
    """Builds the block tree line by line; list items nest by indentation."""

    def __init__(self) -> None:
        self.root: list[_Node] = []
        self.items: list[tuple[int, _Node]] = []  # open list items: (indent, node)
        self.open: _Node | None = None  # block that takes the next line as continuation

    def place(self, node: _Node, indent: int | None) -> None:
        """Under the innermost open list item indented less than `indent` (None: top level)."""
        while self.items and (indent is None or self.items[-1][0] >= indent):
            self.items.pop()
        parent = self.items[-1][1] if self.items else None
        # Deeper than Notion nests in one request: a sibling of the deepest allowed level.
        while parent is not None and parent.depth >= MAX_CHILD_DEPTH:
            parent = parent.parent
        if parent is None:
            self.root.append(node)
        else:
            node.depth, node.parent = parent.depth + 1, parent
            parent.children.append(node)
        if node.kind in _LIST_KINDS and indent is not None:
            self.items.append((indent, node))


def _parse(md: str) -> list[_Node]:
    lines = md.replace("\r\n", "\n").split("\n")
    tree = _Tree()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped:
            tree.open = None
            continue
        indent = _indent(line)
        fence = _FENCE.match(line)
        if fence and units(fence.group(3)) <= MAX_TEXT:
            i = _code(tree, fence, lines, i, indent)
            continue
        heading = _HEADING.match(line)
        if heading:
            level = min(3, len(heading.group(1)))
            tree.place(_Node(f"heading_{level}", (heading.group(2) or "").strip()), None)
            tree.open = None
            continue
        if _DIVIDER.match(stripped):
            tree.place(_Node("divider", ""), None)
            tree.open = None
            continue
        item = _ITEM.match(line)
        if item:
            text = (item.group(3) or "").strip()
            if item.group(2)[0].isdigit():
                node = _Node("numbered_list_item", text)
            else:
                todo = _TODO.match(text)
                if todo:
                    node = _Node("to_do", (todo.group(2) or "").strip())
                    node.extra["checked"] = todo.group(1) != " "
                else:
                    node = _Node("bulleted_list_item", text)
            tree.place(node, indent)
            tree.open = node
            continue
        quote = _QUOTE.match(line)
        if quote:
            if tree.open is not None and tree.open.kind == "quote":
                tree.open.text += "\n" + quote.group(1).strip()
            else:
                node = _Node("quote", quote.group(1).strip())
                tree.place(node, indent)
                tree.open = node
            continue
        if tree.open is not None:
            # A line right below a paragraph, quote or list item continues it.
            tree.open.text += "\n" + stripped
            continue
        node = _Node("paragraph", stripped)
        tree.place(node, indent)
        tree.open = node
    return tree.root


def _code(tree: _Tree, fence: re.Match[str], lines: list[str], i: int, indent: int) -> int:
    """Collect a fenced code block opened by `fence`; returns the index after it."""
    mark = fence.group(2)
    body: list[str] = []
    while i < len(lines):
        close = lines[i].strip()
        if close and set(close) == {mark[0]} and len(close) >= len(mark):
            i += 1
            break
        # The fence's own indentation is not part of the code.
        body.append(lines[i][min(indent, len(lines[i]) - len(lines[i].lstrip(" \t"))) :])
        i += 1
    language, caption = _language(fence.group(3))
    node = _Node("code", "\n".join(body), extra={"language": language, "caption": caption})
    tree.place(node, indent)
    tree.open = None
    return i


def _size(obj: Any) -> int:
    # ASCII-escaped JSON is never shorter than any other encoding of it (a
    # UTF-8 character is at most 4 bytes, its escape 6 or 12), so limits
    # checked this way hold however the HTTP client serializes.
    return len(json.dumps(obj))


def _group(items: list[dict[str, Any]], max_bytes: int) -> list[list[dict[str, Any]]]:
    groups: list[list[dict[str, Any]]] = [[]]
    size = 0
    for it in items:
        cost = _size(it) + 2
        if groups[-1] and (len(groups[-1]) >= MAX_ITEMS or size + cost > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(it)
        size += cost
    return groups


def _block(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"object": "block", "type": kind, kind: body}


def _blocks(node: _Node) -> list[dict[str, Any]]:
    if node.kind == "divider":
        return [_block("divider", {})]
    items = rich_text(node.text) if node.kind == "code" else inline(node.text)
    out: list[dict[str, Any]] = []
    for n, group in enumerate(_group(items, BLOCK_TEXT_BYTES)):
        body: dict[str, Any] = {"rich_text": group}
        if node.kind == "code":
            body["language"] = node.extra["language"]
            if node.extra["caption"] and n == 0:
                body["caption"] = rich_text(node.extra["caption"])
        elif node.kind == "to_do":
            body["checked"] = node.extra["checked"]
        out.append(_block(node.kind, body))
    if node.children:
        # Children follow their parent's text, so they go under its last piece.
        out[-1][node.kind]["children"] = [b for c in node.children for b in _blocks(c)]
    return out


def _continuation(shell: dict[str, Any]) -> dict[str, Any]:
    kind = shell["type"]
    body = {k: v for k, v in shell[kind].items() if k not in ("rich_text", "caption")}
    return _block(kind, {**body, "rich_text": []})


def _fit(block: dict[str, Any], max_bytes: int, max_count: int) -> list[dict[str, Any]]:
    """`block` as one or more same-level blocks, each within one request's limits.

    Children past 100, 1,000 blocks or the byte budget move under an
    empty block of the same type right after it, so every text keeps its
    nesting level and order.
    """
    kind = block["type"]
    kids = block[kind].get("children")
    if not kids:
        return [block]
    shell = _block(kind, {k: v for k, v in block[kind].items() if k != "children"})
    shell_bytes = _size(shell) + len(', "children": []')
    pieces = [p for k in kids for p in _fit(k, max_bytes - shell_bytes, max_count - 1)]
    groups: list[list[dict[str, Any]]] = [[]]
    count, size = 1, shell_bytes
    for p in pieces:
        p_count, p_size = _count(p), _size(p) + 2
        full = len(groups[-1]) >= MAX_CHILDREN
        if groups[-1] and (full or count + p_count > max_count or size + p_size > max_bytes):
            groups.append([])
            count, size = 1, shell_bytes
        groups[-1].append(p)
        count += p_count
        size += p_size
    out = []
    for n, group in enumerate(groups):
        head = shell if n == 0 else _continuation(shell)
        out.append(_block(kind, {**head[kind], "children": group}))
    return out


def _count(block: dict[str, Any]) -> int:
    kids = block.get(block.get("type", ""), {}).get("children") or []
    return 1 + sum(_count(k) for k in kids)


def markdown_to_blocks(md: str) -> list[dict[str, Any]]:
    """Block markdown as the `children` of an append request (any number of blocks).

    Supported: paragraphs, `#`..`###` headings (deeper ones as heading_3),
    `-`/`*`/`+` and `1.` list items, `- [ ]`/`- [x]` to-dos, fenced code,
    `>` quotes and `---` dividers, with inline markdown. Nested list items
    become children down to Notion's two levels; deeper ones join the
    deepest level. Text too long for one block continues in the next
    block of the same type. Use `batches` to cut the result into requests.
    """
    blocks = [b for node in _parse(md) for b in _blocks(node)]
    return [piece for b in blocks for piece in _fit(b, TREE_BYTES, MAX_REQUEST_BLOCKS)]


def batches(
    blocks: list[dict[str, Any]], max_blocks: int = 100, max_bytes: int = 450_000
) -> list[list[dict[str, Any]]]:
    """Consecutive groups of blocks, each one append request within Notion's limits.

    Nested children count toward the 1,000-block and byte limits. A single
    block over the limits on its own (never one from `markdown_to_blocks`
    with the defaults) still gets a request of its own rather than being cut.
    """
    envelope = _size({"children": []})
    out: list[list[dict[str, Any]]] = []
    count = size = 0
    for block in blocks:
        b_count, b_size = _count(block), _size(block) + 2
        if out and out[-1]:
            over = (
                len(out[-1]) >= max_blocks
                or count + b_count > MAX_REQUEST_BLOCKS
                or size + b_size > max_bytes
            )
            if not over:
                out[-1].append(block)
                count += b_count
                size += b_size
                continue
        out.append([block])
        count, size = b_count, envelope + b_size
    return out


# -- markdown for the markdown endpoint -------------------------------------------


def _lines(md: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", md)


def _segments(md: str) -> list[tuple[list[str], bool]]:
    """Lines grouped into (lines, is_fence): a fenced block is one unit."""
    lines = _lines(md)
    out: list[tuple[list[str], bool]] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i].rstrip("\n"))
        if not fence:
            out.append(([lines[i]], False))
            i += 1
            continue
        mark = fence.group(2)
        j = i + 1
        while j < len(lines):
            close = lines[j].strip()
            j += 1
            if close and set(close) == {mark[0]} and len(close) >= len(mark):
                break
        out.append((lines[i:j], True))
        i = j
    return out


def _closed(fence: list[str]) -> bool:
    if len(fence) < 2:
        return False
    mark = _FENCE.match(fence[0].rstrip("\n"))
    close = fence[-1].strip()
    return mark is not None and bool(close) and set(close) == {mark.group(2)[0]}


def _split_fence(fence: list[str], max_chars: int) -> list[str]:
    """A fence longer than max_chars as several complete fences, content in order."""
    opener = fence[0] if fence[0].endswith("\n") else fence[0] + "\n"
    closed = _closed(fence)
    content = fence[1:-1] if closed else fence[1:]
    match = _FENCE.match(opener.rstrip("\n"))
    closer = fence[-1] if closed else (match.group(1) + match.group(2) if match else "```")
    closer = closer if closer.endswith("\n") else closer + "\n"
    budget = max_chars - units(opener) - units(closer) - 1  # 1: a newline before the closer
    if budget < 2:
        # Not even a short fence fits: plain pieces are all that's left.
        return [p for line in fence for p in split_text(line, max(2, max_chars), (" ",))]
    parts: list[str] = []
    for line in content:
        parts += split_text(line, budget, (" ",))
    pieces: list[str] = []
    body: list[str] = []
    size = 0
    for part in parts:
        if body and size + units(part) > budget:
            pieces.append(_fenced(opener, body, closer))
            body, size = [], 0
        body.append(part)
        size += units(part)
    last = _fenced(opener, body, closer if closed else "")
    return [*pieces, last]


def _fenced(opener: str, body: list[str], closer: str) -> str:
    text = "".join(body)
    if closer and text and not text.endswith("\n"):
        text += "\n"
    return opener + text + closer


def markdown_chunks(md: str, max_chars: int = 50_000) -> list[str]:
    """Markdown cut at line boundaries into pieces of at most max_chars.

    Cuts prefer a blank line (so a paragraph or list is not split in two) and
    never fall inside a fenced code block, unless the fence alone is too
    long: then it becomes several complete fences. A single line longer than
    max_chars is cut too. Without such splits `"".join(chunks) == md`.
    """
    if max_chars < 2:
        raise ValueError("max_chars must be at least 2")
    pieces: list[str] = []
    for lines, is_fence in _segments(md):
        text = "".join(lines)
        if units(text) <= max_chars:
            pieces.append(text)
        elif is_fence:
            pieces += _split_fence(lines, max_chars)
        else:
            pieces += split_text(text, max_chars, (" ",))
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for piece in pieces:
        while cur and size + units(piece) > max_chars:
            cut = _blank_cut(cur, max_chars)
            chunks.append("".join(cur[:cut]))
            cur = cur[cut:]
            size = sum(map(units, cur))
        cur.append(piece)
        size += units(piece)
    if cur:
        chunks.append("".join(cur))
    return chunks


def _blank_cut(cur: list[str], max_chars: int) -> int:
    """Where to end a full chunk: after its last blank line if that keeps it half full."""
    size = 0
    best = len(cur)
    for n, piece in enumerate(cur, 1):
        size += units(piece)
        if not piece.strip() and n < len(cur) and size >= max_chars // 2:
            best = n
    return best


# -- comments ---------------------------------------------------------------------


def comment_chunks(text: str) -> list[list[dict[str, Any]]]:
    """A comment's text as the rich_text arrays of one or more comments, in order.

    Long text is cut at a paragraph break, else a line break, else a space.
    Empty text gives no comment at all.
    """
    out = []
    for piece in split_text(text, COMMENT_UNITS, ("\n\n", "\n", " ")):
        items = rich_text(piece)
        # Whitespace cuts keep items half full, so this never splits in practice.
        out += [items[k : k + MAX_ITEMS] for k in range(0, len(items), MAX_ITEMS)]
    return out


# -- the bot's section of a page --------------------------------------------------


_BOT_LINE = re.compile(r"^[ \t]{0,3}#{1,3}[ \t]+(.*?)[ \t]*$")
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def bot_section_header() -> str:
    return f"## {BOT_HEADING}\n"


def blocks_bot_header() -> list[dict[str, Any]]:
    return [_block("heading_2", {"rich_text": rich_text(BOT_HEADING)})]


def _is_bot_heading(line: str) -> bool:
    m = _BOT_LINE.match(line)
    # Notion's markdown may backslash-escape punctuation it renders.
    return m is not None and _UNESCAPE.sub(r"\1", m.group(1)) == BOT_HEADING


def split_bot_section(markdown: str) -> tuple[str, str]:
    """(the person's part, the bot's part) of a page's markdown.

    The bot's part starts at the first heading line (`#` to `###`) reading
    exactly BOT_HEADING outside a code fence; the person's part is what comes
    before, without trailing whitespace.
    """
    offset = 0
    fence: str | None = None
    for line in _lines(markdown):
        bare = line.rstrip("\r\n")
        m = _FENCE.match(bare)
        if fence is None and m:
            fence = m.group(2)
        elif fence is not None:
            close = bare.strip()
            if close and set(close) == {fence[0]} and len(close) >= len(fence):
                fence = None
        elif _is_bot_heading(bare):
            return markdown[:offset].rstrip(), markdown[offset:]
        offset += len(line)
    return markdown.rstrip(), ""


def first_line(text: str) -> str:
    """The first line with words in it, without heading, list, to-do or quote markers."""
    for line in text.split("\n"):
        s = line.strip()
        if _FENCE.match(s) or _DIVIDER.match(s):
            continue
        while True:
            bare = _MARKERS.sub("", s, count=1).strip()
            if bare == s:
                break
            s = bare
        if s:
            return s
    return ""


# -- reading blocks back ----------------------------------------------------------

_PREFIX = {
    "heading_1": "# ",
    "heading_2": "## ",
    "heading_3": "### ",
    "bulleted_list_item": "- ",
    "numbered_list_item": "1. ",
    "quote": "> ",
}


def _items_text(items: list[dict[str, Any]]) -> str:
    # Links keep their URL: for an agent reading the card, the address is the content.
    out = []
    for it in items:
        text = plain([it])
        href = it.get("href") or ((it.get("text") or {}).get("link") or {}).get("url")
        out.append(f"[{text}]({href})" if href else text)
    return "".join(out)


def _render(block: dict[str, Any], depth: int) -> list[str]:
    kind = block.get("type", "")
    body = block.get(kind) or {}
    pad = "\t" * depth
    if kind == "divider":
        lines = [pad + "---"]
    elif kind == "code":
        language = body.get("language", "plain text")
        fence = "```" + ("" if language == "plain text" else language)
        lines = [pad + fence, *(pad + ln for ln in plain(body.get("rich_text", [])).split("\n"))]
        lines.append(pad + "```")
    elif kind in _TEXT_KINDS:
        prefix = _PREFIX.get(kind, "")
        if kind == "to_do":
            prefix = "- [x] " if body.get("checked") else "- [ ] "
        text = _items_text(body.get("rich_text", []))
        # Continuation lines stay inside their block when read back as markdown.
        cont = prefix if kind == "quote" else " " * len(prefix)
        lines = [pad + prefix + text.replace("\n", "\n" + pad + cont)]
    else:
        lines = []  # images, embeds...: nothing a prompt can use
    kids = block.get("children") or body.get("children") or []
    for kid in kids:
        lines += _render(kid, depth + 1)
    return lines


def _is_bot_block(block: dict[str, Any]) -> bool:
    kind = block.get("type", "")
    if not (kind.startswith("heading_") or kind == "toggle"):
        return False
    return plain((block.get(kind) or {}).get("rich_text", [])).strip() == BOT_HEADING


def plain_text(blocks: list[dict[str, Any]]) -> str:
    """A page's blocks (as the blocks API lists them) as markdown-like text.

    Stops at the bot's heading: what follows is the bot's. Children are read
    when present in the block (the API lists them separately).
    """
    lines: list[str] = []
    for block in blocks:
        if _is_bot_block(block):
            break
        lines += _render(block, 0)
    return "\n".join(lines).rstrip()
