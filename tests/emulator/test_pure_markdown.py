"""Markdown <-> blocks: round trips (hypothesis) and Notion's rendering of known inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.notion_emulator import markdown, richtext
from integrations.notion_emulator.blocks import BlockSpec, payload_for

# Text that may contain every markdown metacharacter; leading/trailing whitespace and
# newlines are excluded because Notion's markdown has no way to keep them at a line edge.
ALPHABET = "abcXYZ019 *_`~[]()<>#-.+!\\$"
words = st.text(ALPHABET, min_size=1, max_size=12).filter(lambda s: s == s.strip())


@st.composite
def rich_items(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 4))
    items: list[dict[str, Any]] = []
    for _ in range(count):
        code = draw(st.booleans())
        content = draw(words.filter(lambda s: "`" not in s) if code else words)
        raw: dict[str, Any] = {
            "text": {"content": content},
            "annotations": {
                "bold": draw(st.booleans()),
                "italic": draw(st.booleans()),
                "strikethrough": draw(st.booleans()),
                "code": code,
            },
        }
        if draw(st.integers(0, 4)) == 0:
            raw["text"]["link"] = {
                "url": draw(st.sampled_from(["https://a.test/x", "https://b.test"]))
            }
        items.append(richtext.normalize_item(raw, "t"))
    # A line's text cannot start or end with whitespace once rendered; normalize like Notion.
    return markdown.merge(items)


def spec(kind: str, rich: list[dict[str, Any]], **extra: Any) -> BlockSpec:
    return BlockSpec(kind, payload_for(kind, {"rich_text": rich, **extra}, "t"))


@st.composite
def leaf_blocks(draw: st.DrawFn) -> BlockSpec:
    kind = draw(
        st.sampled_from(
            [
                "paragraph",
                "heading_1",
                "heading_2",
                "heading_3",
                "bulleted_list_item",
                "numbered_list_item",
                "to_do",
                "quote",
                "divider",
                "code",
            ]
        )
    )
    if kind == "divider":
        return BlockSpec("divider", {})
    if kind == "code":
        body = draw(st.text("abc xyz\n{}()*_", max_size=30).filter(lambda s: "```" not in s))
        lang = draw(st.sampled_from(["plain text", "python", "bash"]))
        rich = [richtext.normalize_item({"text": {"content": body}}, "t")] if body else []
        return spec("code", rich, language=lang)
    extra = {"checked": draw(st.booleans())} if kind == "to_do" else {}
    return spec(kind, draw(rich_items()), **extra)


@st.composite
def documents(draw: st.DrawFn) -> list[BlockSpec]:
    blocks = draw(st.lists(leaf_blocks(), min_size=1, max_size=6))
    for block in blocks:
        if block.type in ("bulleted_list_item", "to_do") and draw(st.booleans()):
            block.children = draw(
                st.lists(leaf_blocks().filter(lambda b: b.type != "code"), min_size=1, max_size=2)
            )
    return blocks


def as_md(specs: list[BlockSpec]) -> list[markdown.MdBlock]:
    return [(s.type, s.payload, as_md(s.children)) for s in specs]


def comparable(specs: list[BlockSpec]) -> list[Any]:
    return [(s.type, s.payload, comparable(s.children)) for s in specs]


@settings(max_examples=300, deadline=None)
@given(documents())
def test_blocks_survive_a_markdown_round_trip(doc: list[BlockSpec]) -> None:
    text = markdown.render(as_md(doc))
    assert comparable(markdown.parse(text)) == comparable(doc), text


@given(rich_items())
def test_inline_round_trip(items: list[dict[str, Any]]) -> None:
    assert markdown.parse_inline(markdown.render_inline(items)) == items


def test_recorded_example_renders_like_notion() -> None:
    doc = markdown.parse("## New Section\n\nHello from markdown.")
    assert markdown.render(as_md(doc)) == "## New Section\nHello from markdown."
    doc = markdown.parse("# Hello\n\nAsync test content.")
    assert markdown.render(as_md(doc)) == "# Hello\nAsync test content."


def test_annotations_and_links_parse() -> None:
    items = markdown.parse_inline("a **b *c*** ~~d~~ `e` [f **g**](https://h.test)")
    flat = [
        (i["plain_text"], i["annotations"]["bold"], i["annotations"]["italic"], i["href"])
        for i in items
    ]
    assert ("b ", True, False, None) in flat
    assert ("c", True, True, None) in flat
    assert ("g", True, False, "https://h.test") in flat
    assert any(i["annotations"]["code"] and i["plain_text"] == "e" for i in items)
    assert any(i["annotations"]["strikethrough"] and i["plain_text"] == "d" for i in items)


def test_nesting_by_tabs_and_two_spaces() -> None:
    doc = markdown.parse("- a\n\t- b\n  - c\n- d")
    assert [b.type for b in doc] == ["bulleted_list_item", "bulleted_list_item"]
    assert [c.payload["rich_text"][0]["plain_text"] for c in doc[0].children] == ["b", "c"]


def test_toggle_and_callout() -> None:
    text = (
        '<details>\n<summary>More</summary>\n\tinside\n</details>\n<callout icon="💡">tip</callout>'
    )
    doc = markdown.parse(text)
    assert [b.type for b in doc] == ["toggle", "callout"]
    assert doc[0].children[0].payload["rich_text"][0]["plain_text"] == "inside"
    assert markdown.render(as_md(doc)) == text
