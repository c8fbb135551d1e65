"""Pure transition decisions: routing, retries, loops, feedback, caps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from factory import (
    Backoff,
    Retries,
    action,
    define_factory,
    done,
    failed,
    feedback,
    loop,
    orchestrate,
)
from factory.results import AgentResult
from factory.transitions import (
    Cancelled,
    Errored,
    GuardChecked,
    Replied,
    RunView,
    Selected,
    Succeeded,
    backoff_ms,
    cap_reached,
    decide,
)


def agent(_: object) -> dict[str, str]:
    return {"status": "done"}


def make(retries: int = 0, max_iterations: int = 3) -> object:
    return define_factory(
        id="t",
        start="work",
        states={
            "work": action(
                agent,
                on={"done": "check", "failed": "broken", "feedback": "ask"},
                retries=Retries(max=retries, backoff=Backoff(ms=100, max_ms=1000)),
            ),
            "check": loop(
                body="polish",
                max_iterations=max_iterations,
                until="good",
                on={"continue": "polish", "done": "route", "exhausted": "broken"},
            ),
            "polish": action(agent, on={"done": "check", "failed": "broken"}),
            "route": orchestrate(select=agent, on={"ship": "end", "hold": "ask"}),
            "ask": feedback(),
            "ask_work": feedback(resume="work"),
            "end": done(),
            "broken": failed(),
        },
        guards={"good": lambda ctx: bool(ctx.get("good"))},
    )


F = make()


def ok(status: str = "done", **data: object) -> Succeeded:
    return Succeeded(AgentResult(status=status, data=data, message="m"))  # type: ignore[arg-type]


def test_action_done_routes_and_merges_data_shallowly() -> None:
    step = decide(F, RunView("work", ctx={"a": 1, "nested": {"x": 1}}), ok(nested={"y": 2}))
    assert (step.to_state, step.reason, step.run_status) == ("check", "action.done", "running")
    assert step.ctx == {"a": 1, "nested": {"y": 2}}
    assert step.next_attempt == 0


def test_action_feedback_status_pauses_with_the_message() -> None:
    step = decide(F, RunView("work"), ok("feedback"))
    assert (step.to_state, step.run_status, step.message) == ("ask", "feedback", "m")
    assert step.pauses


def test_feedback_status_without_route_is_a_failed_attempt_naming_the_state() -> None:
    step = decide(F, RunView("polish"), ok("feedback"))
    assert step.to_state == "broken"
    assert "state 'polish'" in (step.error or "") and "feedback" in (step.error or "")


@given(retries=st.integers(0, 6), failed_so_far=st.integers(0, 8))
def test_failures_retry_until_max_then_route_failed(retries: int, failed_so_far: int) -> None:
    factory = make(retries=retries)
    step = decide(factory, RunView("work", attempt=failed_so_far), Errored("boom"))
    assert step.ctx["last_error"] == "boom"
    if failed_so_far + 1 <= retries:
        assert (step.to_state, step.reason) == ("work", "action.failed.retry")
        assert step.next_attempt == failed_so_far + 1
        assert step.retry_delay_ms is not None
    else:
        assert (step.to_state, step.reason) == ("broken", "action.failed.exhausted")
        assert step.run_status == "failed" and step.error == "boom"
        assert step.next_attempt == 0


def test_failed_status_counts_as_a_failed_attempt_with_its_message() -> None:
    step = decide(make(retries=1), RunView("work"), ok("failed"))
    assert step.reason == "action.failed.retry" and step.error == "m"


def test_success_clears_last_error_of_earlier_attempts() -> None:
    step = decide(F, RunView("work", ctx={"last_error": "old"}, attempt=1), ok())
    assert "last_error" not in step.ctx


@given(
    strategy=st.sampled_from(["fixed", "exponential"]),
    ms=st.integers(0, 10_000),
    max_ms=st.integers(0, 100_000),
    n=st.integers(0, 500),
)
def test_backoff_is_capped_and_never_shrinks(strategy: str, ms: int, max_ms: int, n: int) -> None:
    b = Backoff(strategy=strategy, ms=ms, max_ms=max_ms)  # type: ignore[arg-type]
    assert 0 <= backoff_ms(b, n) <= max_ms
    assert backoff_ms(b, n) <= backoff_ms(b, n + 1)
    if strategy == "fixed":
        assert backoff_ms(b, n) == min(ms, max_ms)


def test_exponential_backoff_doubles() -> None:
    b = Backoff(strategy="exponential", ms=500, max_ms=5000)
    assert [backoff_ms(b, n) for n in range(5)] == [500, 1000, 2000, 4000, 5000]


@given(max_iterations=st.integers(1, 10), guard_results=st.lists(st.booleans(), max_size=30))
def test_loop_never_exceeds_max_iterations(max_iterations: int, guard_results: list[bool]) -> None:
    factory = make(max_iterations=max_iterations)
    run = RunView("check")
    bodies = 0
    for satisfied in [*guard_results, *([False] * (max_iterations + 2))]:
        step = decide(factory, run, GuardChecked(satisfied))
        if step.to_state == "polish":
            bodies += 1
            assert step.reason == "loop.continue" and step.loop_iteration == bodies
            run = RunView("check", iterations=step.iterations)
            continue
        assert step.reason == ("loop.done" if satisfied else "loop.exhausted")
        assert "check" not in step.iterations  # reset on leaving
        break
    assert bodies <= max_iterations


def test_loop_exhausted_routes_exhausted() -> None:
    step = decide(F, RunView("check", iterations={"check": 3}), GuardChecked(False))
    assert (step.to_state, step.reason, step.event) == ("broken", "loop.exhausted", "exhausted")


def test_orchestrate_select_routes_on_event_and_unknown_event_fails_run() -> None:
    assert decide(F, RunView("route"), Selected("ship")).to_state == "end"
    step = decide(F, RunView("route"), Selected("nope"))
    assert step.run_status == "failed" and step.reason == "orchestrate.failed.unrouted"
    assert "'nope'" in (step.error or "") and "routes: ship, hold" in (step.error or "")


def test_orchestrate_agent_routes_on_data_event_then_status() -> None:
    factory = define_factory(
        id="o",
        start="r",
        states={
            "r": orchestrate(agent=agent, on={"a": "x", "done": "y", "failed": "z"}),
            "x": done(),
            "y": done(),
            "z": failed(),
        },
    )
    assert decide(factory, RunView("r"), ok(event="a")).to_state == "x"
    assert decide(factory, RunView("r"), ok()).to_state == "y"
    assert decide(factory, RunView("r"), ok("failed")).to_state == "z"


def test_feedback_resumes_previous_or_explicit_target_with_reply_in_ctx() -> None:
    reply = Replied("looks good\n\nship it", ({"author": "ann"}, {"author": "bob"}))
    step = decide(F, RunView("ask", previous_state_id="route"), reply)
    assert (step.to_state, step.reason) == ("route", "feedback.reply")
    assert step.ctx["human_feedback"] == "looks good\n\nship it"
    assert [m["author"] for m in step.ctx["human_feedback_meta"]] == ["ann", "bob"]
    assert decide(F, RunView("ask_work", previous_state_id="route"), reply).to_state == "work"


def test_cancel_stops_where_the_run_stands() -> None:
    step = decide(F, RunView("polish"), Cancelled())
    assert (step.to_state, step.run_status, step.reason) == ("polish", "cancelled", "run.cancelled")


@given(transitions=st.integers(0, 400), cap=st.integers(1, 300))
def test_cap_fails_the_run_exactly_at_the_cap(transitions: int, cap: int) -> None:
    step = cap_reached(RunView("work", transitions=transitions), cap)
    if transitions < cap:
        assert step is None
    else:
        assert step is not None and step.run_status == "failed"
        assert step.reason == "run.transition_cap" and str(cap) in (step.error or "")
