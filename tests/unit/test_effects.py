"""Effects a step implies, and outbox coalescing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory.board import PendingEffect
from factory.decide import Step
from factory.effects import SummaryComment, plan_effects
from factory.outbox import coalesce

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
    assert effects[0].payload == {"column": "Running", "step": "b", "error": ""}
    assert "**a** → **b** (action.done): drafted" in effects[1].payload["line"]
    assert effects[2].payload == {"markdown": "# Out"}


def test_entering_feedback_asks_the_message_as_a_comment() -> None:
    effects = plan_effects(step(run_status="feedback", message="Approve?"), AT, 2)
    assert effects[0].payload["column"] == "Feedback"
    assert effects[-1].kind == "comment" and effects[-1].payload == {"text": "Approve?"}


def test_a_failed_run_puts_the_error_on_the_card_and_summarises() -> None:
    effects = plan_effects(step(run_status="failed", error="boom", to_state="x"), AT, 7)
    assert effects[0].payload == {"column": "Failed", "step": "x", "error": "boom"}
    assert effects[-1].payload["text"] == "Failed at 'x' after 7 transitions: boom"


kinds = st.sampled_from(["state", "log", "page", "comment"])


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
    effects = [PendingEffect(i, "t", k, {"i": i}, f"k{i}", None) for i, k in enumerate(ks)]
    send, superseded = coalesce(effects)
    states = [e for e in effects if e.kind == "state"]
    assert [e for e in send if e.kind == "state"] == states[-1:]
    assert [e for e in send if e.kind != "state"] == [e for e in effects if e.kind != "state"]
    assert sorted(e.id for e in send + superseded) == list(range(len(ks)))
    assert [e.id for e in send] == sorted(e.id for e in send)
