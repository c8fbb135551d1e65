"""Effects a step implies, and outbox coalescing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory.board_protocol import PendingEffect
from factory.effects import (
    CommentEffect,
    Effect,
    GraphEffect,
    LogEffect,
    PageEffect,
    StateEffect,
    SummaryComment,
    blocked_effects,
    effect_from_row,
    plan_effects,
    run_started_effects,
)
from factory.outbox import coalesce
from factory.transitions import Step

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def step(**kw: object) -> Step:
    base: dict[str, object] = dict(
        from_state="a",
        to_state="b",
        event="done",
        reason="action.done",
        ctx={},
        run_status="running",
    )
    return Step(**(base | kw))  # type: ignore[arg-type]


def test_a_running_step_moves_the_card_and_logs() -> None:
    effects = plan_effects(step(message="drafted", page="# Out"), AT, 3)
    assert [e.kind for e in effects] == ["state", "log", "page"]
    assert effects[0] == StateEffect("Running", "b", "")
    assert isinstance(effects[1], LogEffect)
    assert "**a** → **b** (action.done): drafted" in effects[1].line
    assert effects[2] == PageEffect("# Out")


def test_entering_feedback_asks_the_message_as_a_comment() -> None:
    effects = plan_effects(step(run_status="feedback", message="Approve?"), AT, 2)
    assert effects[0] == StateEffect("Feedback", "b", "")
    assert effects[-1] == CommentEffect("Approve?")


def test_a_failed_run_puts_the_error_on_the_card_and_summarises() -> None:
    effects = plan_effects(step(run_status="failed", error="boom", to_state="x"), AT, 7)
    assert effects[0] == StateEffect("Failed", "x", "boom")
    assert effects[-1] == CommentEffect("Failed at 'x' after 7 transitions: boom")


# Outbox rows as workers before typed effects wrote them (kind column, JSON payload column):
# a database upgraded with such rows pending must still deliver them.
STORED_ROWS = [
    ("state", {"column": "Running", "step": "draft", "error": ""}),
    ("state", {"column": "Blocked", "step": "", "error": "unknown factory 'x'"}),
    ("log", {"line": "`2026-11-23 10:00:00` **a** → **b** (action.done)"}),
    ("page", {"markdown": "# Output\n\nsome *text*"}),
    ("comment", {"text": "Blocked: unknown factory 'x'"}),
]


@pytest.mark.parametrize(("kind", "payload"), STORED_ROWS)
def test_an_outbox_row_in_the_stored_shape_reads_back_and_writes_the_same(
    kind: str, payload: dict[str, str]
) -> None:
    effect = effect_from_row(kind, payload)
    assert effect.kind == kind
    assert effect.to_payload() == payload


def test_stored_rows_read_as_the_typed_effects_the_board_delivers() -> None:
    assert [effect_from_row(k, p) for k, p in STORED_ROWS] == [
        StateEffect("Running", "draft", ""),
        StateEffect("Blocked", "", "unknown factory 'x'"),
        LogEffect("`2026-11-23 10:00:00` **a** → **b** (action.done)"),
        PageEffect("# Output\n\nsome *text*"),
        CommentEffect("Blocked: unknown factory 'x'"),
    ]


def test_a_state_row_with_no_step_or_a_null_error_reads_as_empty() -> None:
    assert effect_from_row("state", {"column": "Done", "error": None}) == StateEffect("Done")


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("banner", {"text": "hi"}, "unknown kind 'banner'"),
        ("log", {"text": "hi"}, "log effect has no 'line'"),
        ("state", {"step": "a"}, "state effect has no 'column'"),
    ],
)
def test_a_malformed_row_is_named_not_guessed(
    kind: str, payload: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        effect_from_row(kind, payload)


@given(
    st.one_of(
        st.builds(StateEffect, st.text(), st.text(), st.text()),
        st.builds(LogEffect, st.text()),
        st.builds(PageEffect, st.text()),
        st.builds(GraphEffect, st.text()),
        st.builds(CommentEffect, st.text()),
    )
)
def test_every_effect_survives_the_outbox_round_trip(effect: Effect) -> None:
    assert effect_from_row(effect.kind, effect.to_payload()) == effect


def test_the_blocked_and_run_started_effects_say_what_the_card_shows() -> None:
    assert blocked_effects("no factory 'x'") == [
        StateEffect("Blocked", "", "no factory 'x'"),
        CommentEffect("Blocked: no factory 'x'"),
    ]
    assert run_started_effects("writing", "draft", AT) == [
        StateEffect("Running", "draft", ""),
        LogEffect("`2026-11-23 10:00:00` run started: factory **writing**, state **draft**"),
    ]


def test_a_run_start_with_a_diagram_shows_it_after_the_first_log_line() -> None:
    fence = "```mermaid\nflowchart TD\n```"
    effects = run_started_effects("writing", "draft", AT, fence)
    assert [e.kind for e in effects] == ["state", "log", "graph"]
    assert effects[2] == GraphEffect(fence)
    assert effect_from_row("graph", {"markdown": fence}) == GraphEffect(fence)


kinds = st.sampled_from(["state", "log", "page", "comment"])


def effect_of(kind: str, i: int) -> Effect:
    return {
        "state": StateEffect(f"column {i}"),
        "log": LogEffect(f"line {i}"),
        "page": PageEffect(f"page {i}"),
        "comment": CommentEffect(f"comment {i}"),
    }[kind]


ENDINGS = ("done", "failed", "blocked", "cancelled")


@pytest.mark.parametrize(
    ("setting", "commented"),
    [
        (SummaryComment.all, {"done", "failed", "blocked", "cancelled"}),
        (SummaryComment.problems, {"failed", "blocked", "cancelled"}),
        (SummaryComment.off, set()),
    ],
)
def test_which_endings_get_a_summary_comment(setting: SummaryComment, commented: set[str]) -> None:
    got = {
        ending
        for ending in ENDINGS
        if any(e.kind == "comment" for e in plan_effects(step(run_status=ending), AT, 4, setting))
    }
    assert got == commented


def test_by_default_a_done_card_gets_no_comment_and_a_failed_one_does() -> None:
    assert [e.kind for e in plan_effects(step(run_status="done"), AT, 5)] == ["state", "log"]
    assert plan_effects(step(run_status="failed", error="boom"), AT, 5)[-1].kind == "comment"


@given(
    run_status=st.sampled_from(["running", "feedback", *ENDINGS]),
    setting=st.sampled_from(list(SummaryComment)),
    page=st.sampled_from([None, "# Out"]),
)
def test_the_setting_only_ever_drops_the_summary(
    run_status: str, setting: SummaryComment, page: str | None
) -> None:
    """Whatever the setting, the card's column, log, page and question are unchanged."""
    s = step(run_status=run_status, page=page, message="Approve?", error="boom")
    everything = plan_effects(s, AT, 3, SummaryComment.all)
    chosen = plan_effects(s, AT, 3, setting)
    if run_status in ENDINGS:
        assert everything[-1].kind == "comment"
        assert chosen in (everything, everything[:-1])
        assert (chosen == everything) == (
            setting is SummaryComment.all
            or (setting is SummaryComment.problems and run_status != "done")
        )
    else:
        assert chosen == everything


@given(st.lists(kinds, max_size=40))
def test_coalesce_keeps_only_the_newest_state_and_everything_else_in_order(ks: list[str]) -> None:
    effects = [PendingEffect(i, "t", effect_of(k, i), f"k{i}", None) for i, k in enumerate(ks)]
    send, superseded = coalesce(effects)
    states = [e for e in effects if e.kind == "state"]
    assert [e for e in send if e.kind == "state"] == states[-1:]
    assert [e for e in send if e.kind != "state"] == [e for e in effects if e.kind != "state"]
    assert sorted(e.id for e in send + superseded) == list(range(len(ks)))
    assert [e.id for e in send] == sorted(e.id for e in send)
