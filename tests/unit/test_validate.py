"""Load-time validation: each error names the factory, the file and the state."""

from __future__ import annotations

import pytest

from factory import FactoryError, action, define_factory, done, failed, feedback, loop, orchestrate
from factory.validate import check_factory


def agent(_: object) -> dict[str, str]:
    return {"status": "done"}


def problems(**kwargs: object) -> str:
    with pytest.raises(FactoryError) as caught:
        define_factory(id="bad", **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("factory 'bad' (") and __file__ in message
    return message


def test_start_must_exist() -> None:
    assert "start state 'nope' does not exist" in problems(start="nope", states={"a": done()})


def test_every_target_must_exist() -> None:
    msg = problems(start="a", states={"a": action(agent, on={"done": "b", "failed": "a"})})
    assert "state 'a': on['done'] targets unknown state 'b'" in msg


def test_action_needs_done_and_failed_routes() -> None:
    msg = problems(start="a", states={"a": action(agent, on={"done": "z"}), "z": done()})
    assert "state 'a': action needs an on['failed'] route" in msg


def test_agent_must_be_callable() -> None:
    msg = problems(
        start="a",
        states={"a": action("agent", on={"done": "z", "failed": "z"}), "z": done()},  # type: ignore[arg-type]
    )
    assert "state 'a': agent 'agent' is not callable" in msg


def test_loop_continue_must_equal_body_and_guard_must_exist() -> None:
    msg = problems(
        start="l",
        states={
            "l": loop(body="b", until="ok", on={"continue": "z", "done": "z", "exhausted": "z"}),
            "b": action(agent, on={"done": "l", "failed": "z"}),
            "z": done(),
        },
    )
    assert "loop on['continue'] must equal body 'b', got 'z'" in msg
    assert "guard 'ok' is not defined" in msg


def test_orchestrate_takes_exactly_one_of_select_or_agent() -> None:
    msg = problems(start="o", states={"o": orchestrate(on={"x": "z"}), "z": done()})
    assert "state 'o': orchestrate takes exactly one of select= or agent=" in msg


def test_feedback_resume_target_must_exist() -> None:
    msg = problems(start="f", states={"f": feedback(resume="gone")})
    assert "state 'f': resume target 'gone' does not exist" in msg


def test_unreachable_states_are_warnings_not_errors() -> None:
    factory = define_factory(
        id="ok",
        start="a",
        states={
            "a": action(agent, on={"done": "z", "failed": "y"}),
            "z": done(),
            "y": failed(),
            "orphan": done(),
        },
    )
    assert check_factory(factory) == ["state 'orphan' is unreachable from start 'a'"]
