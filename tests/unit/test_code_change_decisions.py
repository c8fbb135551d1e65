"""The coding workflow's pure decisions: reading a reply, the rounds, the prompt, the clip."""

from __future__ import annotations

import shlex
import sys

from hypothesis import given
from hypothesis import strategies as st

from factory.stand_in_coder import parse_prompt
from workflows.code_change import (
    MAX_ROUNDS,
    Approve,
    Revise,
    Unclear,
    agent_argv,
    build_prompt,
    clip,
    read_reply,
    redact_url_credentials,
    review_step,
)

notes = st.text(min_size=1, max_size=80).filter(lambda t: t.strip() != "")


def test_plain_approvals_approve_and_nothing_else_does() -> None:
    for text in ("approve", "Approve.", "  APPROVED!  ", "lgtm", "approve\n"):
        assert read_reply(text) == Approve(), text
    for text in ("don't approve", "approve? not yet", "Looks good, approve.", "", "revise:"):
        assert read_reply(text) == Unclear(), text


@given(notes)
def test_revise_carries_the_persons_words(note: str) -> None:
    assert read_reply(f"revise: {note}") == Revise(note.strip())
    assert read_reply(f"Revise:{note}") == Revise(note.strip())


@given(st.text(max_size=80))
def test_any_reply_is_exactly_one_thing_and_unclear_asks_again(text: str) -> None:
    step = review_step(read_reply(text), round_no=1)
    assert step["status"] in ("done", "feedback")
    if step["status"] == "feedback":
        assert step["message"] == "Please reply with approve or revise: <what to change>."
        assert step["data"]["review_pending"] is True


@given(st.integers(min_value=1, max_value=MAX_ROUNDS + 2), notes)
def test_revise_never_goes_past_the_last_round(round_no: int, note: str) -> None:
    step = review_step(Revise(note), round_no)
    if round_no >= MAX_ROUNDS:
        assert step["status"] == "failed"
        assert f"round {round_no} of {MAX_ROUNDS}: no rounds left" in step["message"]
    else:
        assert step["data"] == {
            "event": "revise",
            "review_pending": False,
            "round": round_no + 1,
            "revise_note": note,
        }


@given(st.text(max_size=40), st.text(max_size=200), st.integers(1, 5), st.text(max_size=80))
def test_the_stand_in_follows_only_the_latest_round(
    title: str, description: str, round_no: int, note: str
) -> None:
    prompt = build_prompt(title, description, round_no, note)
    if round_no > 1 and note.strip():
        assert parse_prompt(prompt) == parse_prompt(note.strip())
        assert prompt.endswith(note.strip())


@given(st.text(max_size=200))
def test_the_prompt_is_one_argument_appended_or_in_place(prompt: str) -> None:
    assert agent_argv("claude -p", prompt) == ["claude", "-p", prompt]
    assert agent_argv("aider --message {prompt} --yes", prompt) == [
        "aider",
        "--message",
        prompt,
        "--yes",
    ]
    assert agent_argv("", prompt) == [sys.executable, "-m", "factory.stand_in_coder", prompt]
    assert agent_argv(shlex.join(["my agent", "--x"]), prompt) == ["my agent", "--x", prompt]


@given(st.text(max_size=300), st.integers(min_value=20, max_value=200))
def test_a_clipped_diff_is_its_start_and_says_so(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    if len(text) <= limit:
        assert clipped == text
    else:
        shown, _, note = clipped.rpartition("[... ")
        assert text.startswith(shown) and len(shown) <= limit
        assert f"{len(text) - len(shown):,} more characters" in note


def test_credentials_in_a_remote_url_never_reach_the_card() -> None:
    said = "fatal: unable to access 'https://bot:ghp_secret123@github.com/a/b.git/': 403"
    assert "ghp_secret123" not in redact_url_credentials(said)
    assert "https://***@github.com/a/b.git/" in redact_url_credentials(said)
