"""Markdown and rich text for Notion: within the API's limits, nothing lost, order kept."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.notion.markdown import (
    BOT_HEADING,
    CODE_LANGUAGES,
    MAX_REQUEST_BLOCKS,
    TREE_BYTES,
    batches,
    blocks_bot_header,
    bot_section_header,
    comment_chunks,
    first_line,
    inline,
    markdown_chunks,
    markdown_to_blocks,
    plain_text,
    rich_text,
    split_bot_section,
)
from integrations.notion.richtext import split_text, units
from integrations.notion_emulator.blocks import normalize_children

# The closed enum, as Notion's own validation error lists it.
NOTION_LANGUAGES = frozenset(
    [
        "abap", "abc", "agda", "arduino", "bash", "basic", "bnf", "c", "c#", "c++", "clojure",
        "coffeescript", "coq", "css", "dart", "dhall", "diff", "docker", "ebnf", "elixir", "elm",
        "erlang", "f#", "flow", "fortran", "gherkin", "glsl", "go", "graphql", "groovy", "haskell",
        "hcl", "html", "idris", "java", "javascript", "json", "julia", "kotlin", "latex", "less",
        "lisp", "livescript", "lua", "makefile", "markdown", "markup", "matlab", "mathematica",
        "mermaid", "nix", "objective-c", "ocaml", "pascal", "perl", "php", "powershell", "prolog",
        "protobuf", "purescript", "python", "r", "racket", "reason", "ruby", "rust", "sass",
        "scala", "scheme", "scss", "shell", "smalltalk", "solidity", "sql", "swift", "toml",
        "typescript", "vb.net", "verilog", "vhdl", "webassembly", "xml", "yaml", "java/c/c++/c#",
    ]
)  # fmt: skip
NOTION_LANGUAGES |= {"ascii art", "llvm ir", "notion formula", "plain text", "visual basic"}

MARKUP = set("*_~`\\[]()#>-+.")


# -- helpers ----------------------------------------------------------------------


def walk(blocks: list[dict[str, Any]], depth: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    for block in blocks:
        yield block, depth
        yield from walk(block[block["type"]].get("children", []), depth + 1)


def count(blocks: list[dict[str, Any]]) -> int:
    return sum(1 for _ in walk(blocks))


def contents(items: list[dict[str, Any]]) -> str:
    return "".join(i["text"]["content"] for i in items)


def assert_items_ok(items: list[dict[str, Any]]) -> None:
    assert len(items) <= 100
    for it in items:
        assert it["type"] == "text"
        assert units(it["text"]["content"]) <= 2000
        link = it["text"].get("link")
        if link:
            assert units(link["url"]) <= 2000
            assert re.match(r"^(https?://|mailto:)\S+$", link["url"])


def assert_blocks_ok(blocks: list[dict[str, Any]]) -> None:
    """Every limit Notion checks on an append, for each top-level block on its own."""
    for block, depth in walk(blocks):
        kind = block["type"]
        body = block[kind]
        assert block["object"] == "block"
        assert depth <= 2
        if kind != "divider":
            assert_items_ok(body["rich_text"])
        assert_items_ok(body.get("caption", []))
        assert len(body.get("children", [])) <= 100
        if kind == "code":
            assert body["language"] in NOTION_LANGUAGES
    for top in blocks:
        assert count([top]) <= MAX_REQUEST_BLOCKS
        assert len(json.dumps(top)) <= TREE_BYTES


def items_text(items: list[dict[str, Any]]) -> str:
    """Contents in order, each linked item followed by its URL, as the markdown had it.

    A URL may repeat (a link split into items, or two links to one place merged):
    the checks below look for the input in order, so repeats are harmless.
    """
    out: list[str] = []
    for it in items:
        out.append(it["text"]["content"])
        out.append((it["text"].get("link") or {}).get("url") or "")
    return "".join(out)


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for block, _depth in walk(blocks):
        body = block[block["type"]]
        if block["type"] == "code":
            out.append(contents(body.get("caption", [])) + body["language"])
        out.append(items_text(body.get("rich_text", [])))
    return "\n".join(out)


_FENCE_LINE = re.compile(r"^\s*(`{3,}|~{3,}).*$")
_LINE_MARKERS = re.compile(r"^[\s>#*+\-\d.)]*(\[[ xX]\])?")


_LINK_URL = re.compile(r"\]\(\S*?\)")


def significant(text: str, source: bool) -> str:
    """Characters that must survive: no whitespace or markup, and for the markdown
    source no fence info strings (they become a language), line markers, or link
    URLs (two neighbouring links to one URL share an item, so their URL shows once)."""
    if source:
        text = _LINK_URL.sub("", text)
        lines = []
        for line in text.replace("\r\n", "\n").split("\n"):
            line = _FENCE_LINE.sub("", line)
            lines.append(_LINE_MARKERS.sub("", line))
        text = "\n".join(lines)
    return "".join(ch for ch in text if not ch.isspace() and ch not in MARKUP)


def in_order(needle: str, haystack: str) -> bool:
    it = iter(haystack)
    return all(ch in it for ch in needle)


# -- strategies -------------------------------------------------------------------

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789éü漢🤖", min_size=1, max_size=12)
tokens = st.sampled_from(
    ["**", "*", "_", "~~", "`", "``", "```", "```py\n", "~~~\n", "[", "](", "](https://e.com/",
     ")", "# ", "## ", "#### ", "- ", "* ", "+ ", "1. ", "- [ ] ", "- [x] ", "> ", "---", "\\",
     "\n", "\n", "\n\n", "  ", "    ", "\t", " ", " ", "\r\n", "\n  - ", "\n    - ", "\n      - "]
)  # fmt: skip
markdownish = st.lists(st.one_of(words, tokens), max_size=80).map("".join)
# Line-structured markdown reaches nesting, lists and fences far more often.
structured = st.lists(
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["", "  ", "    ", "      ", "        ", "\t", "\t\t\t"]),
            st.sampled_from(["", "- ", "* ", "1. ", "- [ ] ", "- [x] ", "> ", "## ", "```", "~~~"]),
            markdownish.map(lambda s: s.replace("\n", " ")),
        ),
    ),
    max_size=25,
).map("\n".join)
long_runs = st.builds(
    lambda ch, n, sep: (ch * n + sep) * 3,
    st.sampled_from(["a", "漢", "🤖", "*"]),
    st.integers(1, 2500),
    st.sampled_from(["", " ", "\n", "\n\n"]),
)


# -- rich text --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=5000), long_runs))
def test_rich_text_round_trips_within_limits(text: str) -> None:
    items = rich_text(text)
    assert contents(items) == text
    assert all(units(i["text"]["content"]) <= 2000 for i in items)
    assert all(i["text"]["content"] for i in items)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.integers(2, 60))
def test_split_text_keeps_every_character(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(0 < units(p) <= limit for p in pieces)


def test_rich_text_prefers_whitespace_and_newlines() -> None:
    line = " ".join(["word"] * 2000)  # 9,999 characters, one line
    items = rich_text(line)
    assert contents(items) == line
    assert len(items) == 5
    assert all(i["text"]["content"].endswith(" ") for i in items[:-1])
    lines = "".join(f"line {n:04}\n" for n in range(400))
    assert all(i["text"]["content"].endswith("\n") for i in rich_text(lines)[:-1])


def test_rich_text_hard_cuts_text_without_spaces() -> None:
    items = rich_text("x" * 10_000)
    assert [len(i["text"]["content"]) for i in items] == [2000] * 5


def test_rich_text_counts_emoji_as_two() -> None:
    # Notion counts UTF-16 units: 2,000 emoji are 4,000 of them.
    items = rich_text("🤖" * 2000)
    assert [len(i["text"]["content"]) for i in items] == [1000, 1000]


def test_rich_text_of_nothing_is_empty() -> None:
    assert rich_text("") == []


# -- inline markdown --------------------------------------------------------------


def style(items: list[dict[str, Any]]) -> list[tuple[str, set[str], str | None]]:
    return [
        (
            i["text"]["content"],
            {k for k, v in i.get("annotations", {}).items() if v},
            (i["text"].get("link") or {}).get("url"),
        )
        for i in items
    ]


def test_inline_annotations() -> None:
    items = inline("a **b** *c* _d_ `e*f` ~~g~~ ***h*** [i **j**](https://x.io/k)")
    assert style(items) == [
        ("a ", set(), None),
        ("b", {"bold"}, None),
        (" ", set(), None),
        ("c", {"italic"}, None),
        (" ", set(), None),
        ("d", {"italic"}, None),
        (" ", set(), None),
        ("e*f", {"code"}, None),
        (" ", set(), None),
        ("g", {"strikethrough"}, None),
        (" ", set(), None),
        ("h", {"bold", "italic"}, None),
        (" ", set(), None),
        ("i ", set(), "https://x.io/k"),
        ("j", {"bold"}, "https://x.io/k"),
    ]


@pytest.mark.parametrize(
    "md",
    ["snake_case_name", "2 * 3 * 4", "**not closed", "a ~ b", "[x](relative/path)", "`open"],
)
def test_inline_leaves_non_markup_as_written(md: str) -> None:
    assert contents(inline(md)) == md


def test_inline_link_urls_keep_balanced_parentheses() -> None:
    url = "https://en.wikipedia.org/wiki/Foo_(bar)"
    assert style(inline(f"([w]({url}))")) == [
        ("(", set(), None),
        ("w", set(), url),
        (")", set(), None),
    ]


def test_inline_escapes() -> None:
    assert style(inline(r"\*a\* \[b\]")) == [("*a* [b]", set(), None)]


def test_inline_links_with_long_urls_stay_text() -> None:
    ok = "https://e.com/" + "a" * (2000 - len("https://e.com/"))
    too_long = ok + "b"
    assert style(inline(f"[t]({ok})")) == [("t", set(), ok)]
    md = f"see [t]({too_long}) now"
    items = inline(md)
    assert contents(items) == md
    assert all("link" not in i["text"] for i in items)
    assert_items_ok(items)


def test_inline_splits_long_styled_text_keeping_style() -> None:
    items = inline("**" + "b" * 4500 + "**")
    assert style(items) == [("b" * 2000, {"bold"}, None)] * 2 + [("b" * 500, {"bold"}, None)]


@settings(max_examples=300, deadline=None)
@given(markdownish)
def test_inline_loses_nothing(md: str) -> None:
    items = inline(md)
    assert_items_ok(items[:100])
    assert all(units(i["text"]["content"]) <= 2000 for i in items)
    source = significant(_LINK_URL.sub("", md), source=False)
    assert in_order(source, significant(items_text(items), False))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abc 漢🤖\n", max_size=3000))
def test_inline_without_markup_is_plain_text(text: str) -> None:
    assert contents(inline(text)) == text


def test_inline_is_linear_on_unmatched_delimiters() -> None:
    md = "*a _b [c ~~d " * 4000 + "`e"  # 52,002 characters, nothing closes
    assert contents(inline(md)) == md


# -- blocks -----------------------------------------------------------------------


def kinds(blocks: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(d, b["type"], contents(b[b["type"]].get("rich_text", []))) for b, d in walk(blocks)]


def test_blocks_of_each_kind() -> None:
    md = (
        "# One\n## Two\n### Three\n#### Four\n\npara **b**\nline 2\n\n- bullet\n* star\n"
        "1. first\n2) second\n- [ ] open\n- [X] done\n\n> quoted\n> more\n\n---\n\n"
        "```python\nprint(1)\n```\n"
    )
    blocks = markdown_to_blocks(md)
    assert_blocks_ok(blocks)
    assert kinds(blocks) == [
        (0, "heading_1", "One"),
        (0, "heading_2", "Two"),
        (0, "heading_3", "Three"),
        (0, "heading_3", "Four"),
        (0, "paragraph", "para b\nline 2"),
        (0, "bulleted_list_item", "bullet"),
        (0, "bulleted_list_item", "star"),
        (0, "numbered_list_item", "first"),
        (0, "numbered_list_item", "second"),
        (0, "to_do", "open"),
        (0, "to_do", "done"),
        (0, "quote", "quoted\nmore"),
        (0, "divider", ""),
        (0, "code", "print(1)"),
    ]
    todo = [b["to_do"]["checked"] for b in blocks if b["type"] == "to_do"]
    assert todo == [False, True]
    assert blocks[-1]["code"]["language"] == "python"
    assert blocks[-1] == {
        "object": "block",
        "type": "code",
        "code": {
            "rich_text": [{"type": "text", "text": {"content": "print(1)"}}],
            "language": "python",
        },
    }


def test_a_bullet_starting_with_a_link_is_not_a_todo() -> None:
    (block,) = markdown_to_blocks("- [x](https://e.com) link")
    assert block["type"] == "bulleted_list_item"


@pytest.mark.parametrize(
    ("info", "language", "caption"),
    [
        ("", "plain text", ""),
        ("\r", "plain text", ""),
        ("py", "python", ""),
        ("TypeScript", "typescript", ""),
        ("c++", "c++", ""),
        ("sh", "shell", ""),
        ("brainfuck", "plain text", "brainfuck"),
        ('python title="x.py"', "python", 'python title="x.py"'),
    ],
)
def test_code_languages(info: str, language: str, caption: str) -> None:
    (block,) = markdown_to_blocks(f"```{info}\nx\n```")
    assert block["code"]["language"] == language
    assert contents(block["code"].get("caption", [])) == caption


def test_every_mapped_language_is_in_notions_enum() -> None:
    assert set(CODE_LANGUAGES.values()) <= NOTION_LANGUAGES


def test_unclosed_fence_runs_to_the_end() -> None:
    (block,) = markdown_to_blocks("```\na\n\n# not a heading")
    assert contents(block["code"]["rich_text"]) == "a\n\n# not a heading"


def test_long_code_fence_is_split_across_items_at_newlines() -> None:
    code = "".join(f"print({n:05})  # {'x' * 20}\n" for n in range(140))[:5000]
    blocks = markdown_to_blocks(f"```py\n{code}\n```")
    assert_blocks_ok(blocks)
    (block,) = blocks
    items = block["code"]["rich_text"]
    assert contents(items) == code
    assert len(items) == 3
    assert all(i["text"]["content"].endswith("\n") for i in items[:-1])


def test_nested_lists_four_deep_flatten_to_notions_two_levels() -> None:
    md = "- a\n  - b\n    - c\n      - d\n        - e\n  - f\n- g"
    blocks = markdown_to_blocks(md)
    assert_blocks_ok(blocks)
    assert kinds(blocks) == [
        (0, "bulleted_list_item", "a"),
        (1, "bulleted_list_item", "b"),
        (2, "bulleted_list_item", "c"),
        (2, "bulleted_list_item", "d"),
        (2, "bulleted_list_item", "e"),
        (1, "bulleted_list_item", "f"),
        (0, "bulleted_list_item", "g"),
    ]


def test_nesting_with_tabs_and_mixed_kinds() -> None:
    md = "1. one\n\t- [ ] sub\n\t\tmore text\n\n\t  indented paragraph\n\nafter"
    assert kinds(markdown_to_blocks(md)) == [
        (0, "numbered_list_item", "one"),
        (1, "to_do", "sub\nmore text"),
        (2, "paragraph", "indented paragraph"),
        (0, "paragraph", "after"),
    ]


def test_over_100_children_continue_under_an_empty_sibling() -> None:
    md = "- parent\n" + "".join(f"  - child {n}\n" for n in range(250))
    blocks = markdown_to_blocks(md)
    assert_blocks_ok(blocks)
    assert [contents(b["bulleted_list_item"]["rich_text"]) for b in blocks] == ["parent", "", ""]
    children = [c for b in blocks for c in b["bulleted_list_item"]["children"]]
    assert [contents(c["bulleted_list_item"]["rich_text"]) for c in children] == [
        f"child {n}" for n in range(250)
    ]


def test_paragraph_over_100_items_becomes_consecutive_paragraphs() -> None:
    text = "y" * 2000 * 130
    blocks = markdown_to_blocks(text)
    assert_blocks_ok(blocks)
    assert len(blocks) > 1
    assert {b["type"] for b in blocks} == {"paragraph"}
    assert "".join(contents(b["paragraph"]["rich_text"]) for b in blocks) == text


def test_byte_heavy_text_stays_under_the_request_size() -> None:
    # Escaped as JSON, each of these characters costs 12 bytes.
    text = "🤖" * 150_000
    blocks = markdown_to_blocks("- " + text + "\n  - " + text + "\n    - " + text)
    assert_blocks_ok(blocks)
    assert "".join(contents(b[b["type"]]["rich_text"]) for b, _ in walk(blocks)) == text * 3
    assert [normalize_children(b) for b in batches(blocks)]
    for batch in batches(blocks):
        assert len(json.dumps({"children": batch})) <= 450_000


def test_ten_thousand_character_line_lands_whole() -> None:
    line = "".join(f"{n:05} " for n in range(1667))[:10_000]
    (block,) = markdown_to_blocks(line)
    assert_blocks_ok([block])
    assert contents(block["paragraph"]["rich_text"]) == line.strip()


def test_250_log_lines_land_whole_in_three_requests() -> None:
    md = "\n".join(f"- step {n} done" for n in range(250))
    blocks = markdown_to_blocks(md)
    assert [contents(b["bulleted_list_item"]["rich_text"]) for b in blocks] == [
        f"step {n} done" for n in range(250)
    ]
    assert [len(b) for b in batches(blocks)] == [100, 100, 50]


@settings(max_examples=300, deadline=None)
@given(st.one_of(markdownish, structured))
def test_blocks_keep_every_character_within_limits(md: str) -> None:
    blocks = markdown_to_blocks(md)
    assert_blocks_ok(blocks)
    for batch in batches(blocks):
        normalize_children(batch)  # the emulator's copy of Notion's validation
    assert in_order(significant(md, source=True), significant(blocks_text(blocks), False))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(long_runs, markdownish), min_size=1, max_size=4).map("\n".join))
def test_blocks_of_long_input_keep_every_character(md: str) -> None:
    blocks = markdown_to_blocks(md)
    assert_blocks_ok(blocks)
    assert in_order(significant(md, source=True), significant(blocks_text(blocks), False))


# -- batches ----------------------------------------------------------------------


def para(text: str, children: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"rich_text": rich_text(text)}
    if children:
        body["children"] = children
    return {"object": "block", "type": "bulleted_list_item", "bulleted_list_item": body}


block_trees = st.recursive(
    st.builds(para, st.text(alphabet="ab漢", max_size=2500)),
    lambda kids: st.builds(para, st.just("p"), st.lists(kids, max_size=40)),
    max_leaves=200,
)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(block_trees, max_size=150),
    st.integers(1, 100),
    st.integers(5_000, 450_000),
)
def test_batches_respect_limits_and_order(
    blocks: list[dict[str, Any]], max_blocks: int, max_bytes: int
) -> None:
    out = batches(blocks, max_blocks=max_blocks, max_bytes=max_bytes)
    assert [b for batch in out for b in batch] == blocks
    for batch in out:
        assert batch
        assert len(batch) <= max_blocks
        if len(batch) > 1:
            assert count(batch) <= MAX_REQUEST_BLOCKS
            assert len(json.dumps({"children": batch})) <= max_bytes


def test_batches_count_nested_blocks() -> None:
    tree = para("p", [para("c", [para("g") for _ in range(9)]) for _ in range(30)])  # 301
    assert [len(b) for b in batches([tree] * 4)] == [3, 1]
    assert batches([]) == []


# -- markdown endpoint chunks -----------------------------------------------------


def fences_closed(chunk: str) -> bool:
    open_mark: str | None = None
    for line in chunk.split("\n"):
        s = line.strip()
        m = re.match(r"^(`{3,}|~{3,})", s)
        if open_mark is None and m:
            open_mark = m.group(1)
        elif open_mark and s and set(s) == {open_mark[0]} and len(s) >= len(open_mark):
            open_mark = None
    return open_mark is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.lists(st.one_of(words, tokens, long_runs), max_size=30).map("".join), structured),
    st.integers(8, 400),
)
def test_markdown_chunks_within_limit_and_lossless(md: str, max_chars: int) -> None:
    chunks = markdown_chunks(md, max_chars)
    assert all(0 < units(c) <= max_chars for c in chunks)
    assert in_order(significant(md, source=True), significant("".join(chunks), False))
    if "`" not in md and "~" not in md:
        assert "".join(chunks) == md


def test_markdown_chunks_cut_at_lines_and_blank_lines() -> None:
    md = "".join(f"para {n} line one\npara {n} line two\n\n" for n in range(200))
    chunks = markdown_chunks(md, 1000)
    assert "".join(chunks) == md
    assert all(c.endswith("\n\n") for c in chunks[:-1])
    assert markdown_chunks(md) == [md]


def test_markdown_chunks_never_cut_inside_a_fence() -> None:
    fence = "```py\n" + "x = 1\n" * 100 + "```\n"
    md = ("text\n" * 50 + fence) * 5
    chunks = markdown_chunks(md, 1000)
    assert "".join(chunks) == md
    assert all(fences_closed(c) for c in chunks)


def test_markdown_chunks_split_a_fence_longer_than_the_limit_into_fences() -> None:
    code = "".join(f"line {n:04}\n" for n in range(500))  # 5,000 characters
    chunks = markdown_chunks(f"intro\n\n```python\n{code}```\n", 2000)
    assert all(len(c) <= 2000 and fences_closed(c) for c in chunks)
    body = "".join(
        c.removeprefix("intro\n\n").removeprefix("```python\n").removesuffix("```\n")
        for c in chunks
    )
    assert body == code


def test_markdown_chunks_split_a_single_long_line() -> None:
    line = "word " * 3000
    chunks = markdown_chunks(line, 1000)
    assert "".join(chunks) == line
    assert all(len(c) <= 1000 for c in chunks)


# -- comments ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=3000), long_runs.map(lambda s: s * 30)))
def test_comment_chunks_keep_everything(text: str) -> None:
    chunks = comment_chunks(text)
    assert "".join(contents(c) for c in chunks) == text
    for chunk in chunks:
        assert chunk
        assert_items_ok(chunk)
        assert len(json.dumps({"rich_text": chunk})) < 450_000


def test_comment_chunks_split_long_comments_at_paragraphs() -> None:
    text = "\n\n".join(f"paragraph {n} " + "z" * 990 for n in range(150))
    chunks = comment_chunks(text)
    assert len(chunks) > 1
    assert all(contents(c).endswith("\n\n") for c in chunks[:-1])
    assert comment_chunks("short") == [[{"type": "text", "text": {"content": "short"}}]]
    assert comment_chunks("") == []


# -- the bot's section ------------------------------------------------------------


def test_split_bot_section() -> None:
    person = "# Task\n\nDo the thing.\n\n- detail\n"
    bot = f"## {BOT_HEADING}\n- started\n- done\n"
    assert split_bot_section(person + "\n" + bot) == (person.rstrip(), bot)
    assert split_bot_section(person) == (person.rstrip(), "")
    assert split_bot_section(bot) == ("", bot)
    assert split_bot_section(f"me\r\n## {BOT_HEADING}\r\nlog") == ("me", f"## {BOT_HEADING}\r\nlog")


@pytest.mark.parametrize("heading", [f"# {BOT_HEADING}", f"### {BOT_HEADING}  "])
def test_bot_heading_any_level(heading: str) -> None:
    assert split_bot_section(f"a\n{heading}\nb") == ("a", f"{heading}\nb")


@pytest.mark.parametrize(
    "md",
    [
        f"#### {BOT_HEADING}\nx",
        f"## {BOT_HEADING} extra\nx",
        f"{BOT_HEADING}\nx",
        f"- {BOT_HEADING}",
        f"```\n## {BOT_HEADING}\n```\nx",
    ],
)
def test_not_the_bot_heading(md: str) -> None:
    assert split_bot_section(md) == (md.rstrip(), "")


def test_bot_heading_escaped_by_notion() -> None:
    md = "me\n## 🤖 notion\\-factory log\nbot"
    assert split_bot_section(md)[0] == "me"


def test_bot_header_forms_agree() -> None:
    assert split_bot_section("x\n\n" + bot_section_header() + "log")[0] == "x"
    assert markdown_to_blocks(bot_section_header()) == blocks_bot_header()
    assert plain_text([para("mine"), *blocks_bot_header(), para("bot")]) == "- mine"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("\n\n  ## Fix the login bug  \nmore", "Fix the login bug"),
        ("- [ ] write tests", "write tests"),
        ("> 1. quoted item", "quoted item"),
        ("---\n```py\nprint()\n```", "print()"),
        ("#hashtag", "#hashtag"),
        ("", ""),
        ("#\n- \nreal", "real"),
    ],
)
def test_first_line(text: str, line: str) -> None:
    assert first_line(text) == line


# -- reading blocks back ----------------------------------------------------------


def response_item(text: str, href: str | None = None) -> dict[str, Any]:
    return {
        "type": "text",
        "text": {"content": text, "link": {"url": href} if href else None},
        "plain_text": text,
        "href": href,
    }


def response_block(kind: str, *items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"object": "block", "type": kind, kind: {"rich_text": list(items), **extra}}


def test_plain_text_of_api_blocks() -> None:
    blocks = [
        response_block("heading_1", response_item("Title")),
        response_block("paragraph", response_item("see "), response_item("docs", "https://d.io")),
        response_block("to_do", response_item("done"), checked=True),
        response_block("quote", response_item("a\nb")),
        {"object": "block", "type": "divider", "divider": {}},
        response_block("code", response_item("x = 1"), language="python"),
        {"object": "block", "type": "image", "image": {}},
        response_block("heading_2", response_item(BOT_HEADING)),
        response_block("paragraph", response_item("bot log")),
    ]
    assert plain_text(blocks) == (
        "# Title\nsee [docs](https://d.io)\n- [x] done\n> a\n> b\n---\n```python\nx = 1\n```"
    )


def test_plain_text_reads_nested_children_and_round_trips_markdown() -> None:
    md = "- a\n\t- b\n\t\t- c\n1. n\n\nplain"
    assert plain_text(markdown_to_blocks(md)) == md.replace("\n\n", "\n")
    assert first_line(plain_text(markdown_to_blocks(md))) == "a"
