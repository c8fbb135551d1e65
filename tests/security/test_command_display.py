"""No argv or output of a command agent can break out of its block on the page
(issue 8, item 8): a backtick or a fence line in a card title used to end the
inline code and let the rest be page markdown."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from factory.effects import one_line
from factory.shell_agent import fenced, render_output, shell_line
from integrations.notion.markdown import markdown_to_blocks
from integrations.notion_emulator import markdown as emulator_markdown

HOSTILE = "Fix `login`\n```\n# pwned\n~~~\n- [ ] injected"

# Text as a card or a program could hold it: no NUL (argv cannot carry one).
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
FENCY = st.lists(st.sampled_from(["```", "~~~", "````", " ```", "`", "\n", "# h", "x", "\t"]))


def _code_blocks(blocks: list[dict]) -> list[str]:
    return [
        "".join(t["text"]["content"] for t in b["code"]["rich_text"])
        for b in blocks
        if b["type"] == "code"
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=4))
def test_the_shown_command_reads_back_as_the_same_argv(argv: list[str]) -> None:
    line = shell_line(argv)
    assert "\n" not in line and "\r" not in line
    # bash parses it back: each argument one word, byte for byte
    echoed = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {line}"],
        capture_output=True,
        check=True,
        env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert echoed.split(b"\0")[:-1] == [a.encode("utf-8", "surrogateescape") for a in argv]


@settings(max_examples=200, deadline=None)
@given(st.one_of(TEXT, FENCY.map("".join)))
def test_nothing_inside_a_fence_can_close_it(text: str) -> None:
    md = "before\n\n" + fenced(text, "sh") + "\n\nafter"
    ours = markdown_to_blocks(md)
    assert [b["type"] for b in ours] == ["paragraph", "code", "paragraph"]
    emulated = [spec.type for spec in emulator_markdown.parse(md)]
    assert emulated == ["paragraph", "code", "paragraph"]


def test_render_output_keeps_argv_and_output_in_their_blocks() -> None:
    page = render_output(["echo", HOSTILE], 0, f"{HOSTILE}\n", "")
    blocks = markdown_to_blocks(page)
    assert [b["type"] for b in blocks] == ["paragraph", "code", "code"]
    assert "# pwned" in _code_blocks(blocks)[1]


def test_a_multi_line_agent_message_stays_on_its_log_line() -> None:
    assert "\n" not in one_line("failed:\n```\n# pwned")
