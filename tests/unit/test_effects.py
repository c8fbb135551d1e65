"""Effects a step implies, and outbox coalescing."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from factory.board import PendingEffect
from factory.decide import Step
from factory.effects import plan_effects
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


@given(st.lists(kinds, max_size=40))
def test_coalesce_keeps_only_the_newest_state_and_everything_else_in_order(ks: list[str]) -> None:
    effects = [PendingEffect(i, "t", k, {"i": i}, f"k{i}", None) for i, k in enumerate(ks)]
    send, superseded = coalesce(effects)
    states = [e for e in effects if e.kind == "state"]
    assert [e for e in send if e.kind == "state"] == states[-1:]
    assert [e for e in send if e.kind != "state"] == [e for e in effects if e.kind != "state"]
    assert sorted(e.id for e in send + superseded) == list(range(len(ks)))
    assert [e.id for e in send] == sorted(e.id for e in send)
