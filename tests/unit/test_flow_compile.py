"""The flow compiler: any well-formed flow compiles to a factory validation accepts, whose
runs (driven by the pure `decide`) take exactly the path the flow reads in; bad flows are
refused at load time naming the factory, the file and the step."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import factory
from factory import (
    AgentInput,
    FactoryError,
    Retries,
    action,
    ask,
    decide,
    define_factory,
    done,
    end,
    failed,
    flow,
    loop,
    one_of,
    step,
    write,
)
from factory.dsl import Factory
from factory.results import parse_result
from factory.states import Action, Feedback, Loop, Orchestrate, Terminal
from factory.transitions import GuardChecked, Replied, RunView, Selected, Succeeded
from factory.transitions import decide as transition
from factory.validate import check_factory

HERE = __file__

# -- random flows ------------------------------------------------------------------------
# A shape is a tuple: ("step",) ("ask",) ("write",) ("end", outcome) ("decide", branches)
# ("loop", body, max_iterations, exhausted). Names are given when the shape becomes a flow.

leaf = st.sampled_from([("step",), ("ask",), ("write",)])
ending = st.sampled_from([("end", "done"), ("end", "failed"), ("end", "blocked")])


def sequences(inner: st.SearchStrategy[Any], min_size: int = 0) -> st.SearchStrategy[Any]:
    """Steps with at most one end, and that one last (steps after an end are refused)."""
    return st.tuples(st.lists(inner, min_size=min_size, max_size=3), st.none() | ending).map(
        lambda parts: [*parts[0], *([parts[1]] if parts[1] else [])]
    )


def _extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    branches = st.lists(sequences(inner), min_size=1, max_size=3).map(
        lambda seqs: {f"e{i}": s for i, s in enumerate(seqs)}
    )
    body = sequences(inner, min_size=1)
    return st.one_of(
        branches.map(lambda b: ("decide", b)),
        st.tuples(
            st.just("loop"), body, st.integers(1, 3), st.none() | sequences(inner, min_size=1)
        ),
    )


def ends(shape: Any) -> bool:
    """A run entering `shape` never leaves it: an end, or a decide whose branches all end."""
    if shape[0] == "end":
        return True
    return shape[0] == "decide" and all(any(map(ends, seq)) for seq in shape[1].values())


def live(seq: list[Any]) -> bool:
    """No step follows one that always ends (the compiler refuses such flows)."""
    for i, shape in enumerate(seq):
        if ends(shape) and i < len(seq) - 1:
            return False
        inner = list(shape[1].values()) if shape[0] == "decide" else []
        if shape[0] == "loop":
            inner = [shape[1], *([shape[3]] if shape[3] else [])]
        if not all(live(s) for s in inner):
            return False
    return True


nodes = st.recursive(leaf, _extend, max_leaves=12)
flows = sequences(nodes, min_size=1).filter(lambda s: s[0][0] != "end").filter(live)


def done_agent(inp: AgentInput) -> dict[str, Any]:
    return {"status": "done", "data": {"seen": [*inp.ctx.get("seen", []), inp.state_id]}}


def build(shapes: list[Any], names: Iterator[str]) -> list[Any]:
    built = []
    for shape in shapes:
        kind = shape[0]
        if kind == "end":
            built.append(end(shape[1]))
            continue
        name = next(names)
        if kind == "step":
            built.append(step(done_agent, name=name))
        elif kind == "ask":
            built.append(ask(f"question {name}?", name=name))
        elif kind == "write":
            built.append(write(f"page of {name}", name=name))
        elif kind == "decide":
            branches = {event: build(seq, names) for event, seq in shape[1].items()}
            built.append(decide(lambda inp: "chosen by the test", branches, name=name))
        else:
            _, body, cap, exhausted = shape
            built.append(
                loop(
                    *build(body, names),
                    until=lambda ctx: False,  # the test decides each guard
                    max_iterations=cap,
                    exhausted=None if exhausted is None else build(exhausted, names),
                    name=name,
                )
            )
    return built


def names() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"n{n}"


# -- what the flow says happens: the reference reading of a flow ------------------------


class Ended(Exception):
    def __init__(self, outcome: str) -> None:
        self.outcome = outcome


def expected_path(shapes: list[Any], names: Iterator[str], rng: random.Random) -> list[str]:
    """The states a run visits, read straight off the flow (the spec the compiler meets)."""
    named = _name_tree(shapes, names)
    path: list[str] = []
    try:
        _read(named, path, rng)
        path.append("done")
    except Ended as stop:
        path.append(stop.outcome)
    return path


def _name_tree(shapes: list[Any], names: Iterator[str]) -> list[Any]:
    """The shapes with the names `build` gives them (same order of `next(names)`)."""
    out = []
    for shape in shapes:
        kind = shape[0]
        if kind == "end":
            out.append(shape)
        elif kind == "decide":
            name = next(names)
            out.append(("decide", name, {e: _name_tree(s, names) for e, s in shape[1].items()}))
        elif kind == "loop":
            name = next(names)
            body = _name_tree(shape[1], names)
            exhausted = None if shape[3] is None else _name_tree(shape[3], names)
            out.append(("loop", name, body, shape[2], exhausted))
        else:
            out.append((kind, next(names)))
    return out


def _read(seq: list[Any], path: list[str], rng: random.Random) -> None:
    for node in seq:
        kind = node[0]
        if kind == "end":
            raise Ended(node[1])
        if kind in ("step", "write"):
            path.append(node[1])
        elif kind == "ask":
            path += [f"ask_{node[1]}", node[1], f"ask_{node[1]}"]  # asks, waits, reads
        elif kind == "decide":
            path.append(node[1])
            _read(node[2][rng.choice(sorted(node[2]))], path, rng)
        else:
            _, name, body, cap, exhausted = node
            count = 0
            while True:
                path.append(name)
                if rng.random() < 0.3:  # the guard holds
                    break
                if count >= cap:
                    _read(exhausted or [], path, rng)
                    break
                count += 1
                _read(body, path, rng)


# -- what the compiled machine does, decided by the engine's pure decide() --------------


def machine_path(built: Factory, rng: random.Random) -> list[str]:
    run = RunView(state_id=built.start, ctx={})
    path = [run.state_id]
    for _ in range(5_000):
        state = built.states[run.state_id]
        match state:
            case Terminal():
                return path
            case Action():
                inp = AgentInput("t", "card", "", "", dict(run.ctx), run.state_id, "r", "k", 1)
                outcome: Any = Succeeded(parse_result(state.agent(inp), run.state_id))
            case Orchestrate():
                outcome = Selected(rng.choice(sorted(state.on)))
            case Loop():
                outcome = GuardChecked(rng.random() < 0.3)
            case Feedback():
                outcome = Replied("any reply")
        step = transition(built, run, outcome)
        assert step.error is None, step.error
        previous = run.previous_state_id if step.to_state == step.from_state else step.from_state
        run = RunView(
            state_id=step.to_state,
            previous_state_id=previous,
            ctx=step.ctx,
            attempt=step.next_attempt,
            iterations=step.iterations,
            transitions=run.transitions + 1,
        )
        path.append(run.state_id)
    raise AssertionError(f"no end after 5000 transitions: {path[-20:]}")


@settings(max_examples=300, deadline=None)
@given(shapes=flows)
def test_any_well_formed_flow_compiles_to_a_factory_validation_accepts(shapes: list[Any]) -> None:
    built = define_factory(id="random", run=flow(*build(shapes, names())))
    assert check_factory(built) == []  # no errors and no unreachable state
    assert built.start == _first_state(shapes)


def _first_state(shapes: list[Any]) -> str:
    kind = shapes[0][0]
    return "ask_n1" if kind == "ask" else "n1"


@settings(max_examples=300, deadline=None)
@given(shapes=flows, seed=st.integers(0, 2**32 - 1))
def test_the_compiled_machine_walks_the_flow_in_its_order(shapes: list[Any], seed: int) -> None:
    built = define_factory(id="random", run=flow(*build(shapes, names())))
    want = expected_path(shapes, names(), random.Random(seed))
    assert machine_path(built, random.Random(seed)) == want


def test_a_linear_flow_runs_its_steps_in_order_with_generated_names() -> None:
    def draft(inp: AgentInput) -> dict[str, Any]:
        return {"status": "done"}

    built = define_factory(
        id="linear",
        run=flow(
            step(draft),
            write("hello"),
            ask("ok?"),
            step(draft),
            step(lambda inp: {"status": "done"}),
        ),
    )
    assert list(built.states) == [
        "draft",
        "write",
        "ask_reply",
        "reply",
        "draft_2",
        "step",
        "done",
        "failed",
    ]
    assert built.start == "draft"
    assert machine_path(built, random.Random(0))[:6] == [
        "draft",
        "write",
        "ask_reply",
        "reply",
        "ask_reply",
        "draft_2",
    ]


def test_one_step_used_in_two_places_becomes_two_states() -> None:
    def check(inp: AgentInput) -> dict[str, Any]:
        return {"status": "done"}

    again = step(check)
    built = define_factory(id="twice", run=flow(again, write("between"), again))
    assert list(built.states)[:3] == ["check", "write", "check_2"]
    assert machine_path(built, random.Random(0)) == ["check", "write", "check_2", "done"]


def test_decide_on_a_context_key_routes_on_its_value_and_names_a_missing_one() -> None:
    built = define_factory(
        id="d", run=flow(decide("kind", {"bug": write("bug"), "idea": end("blocked")}))
    )
    select = built.states["decide"].select  # type: ignore[union-attr]
    assert select(agent_input({"kind": "bug"})) == "bug"
    with pytest.raises(KeyError, match="the run's context has no 'kind' to decide on"):
        select(agent_input({}))


def test_step_options_reach_the_compiled_action() -> None:
    def fetch(inp: AgentInput) -> dict[str, Any]:
        return {"status": "done"}

    built = define_factory(
        id="opts", run=flow(step(fetch, retries=Retries(max=3), timeout=9, name="get"))
    )
    get = built.states["get"]
    assert isinstance(get, Action)
    assert (get.retries.max, get.timeout, get.on) == (3, 9, {"done": "done", "failed": "failed"})


# -- ask ----------------------------------------------------------------------------------


def agent_input(ctx: dict[str, Any]) -> AgentInput:
    return AgentInput("t", "card", "", "", ctx, "ask_n", "r", "k", 1)


def test_ask_asks_then_reads_the_reply_and_asks_again_with_the_reason() -> None:
    built = define_factory(id="a", run=flow(ask("Ship it?", one_of("approve", "revise"))))
    agent = built.states["ask_reply"].agent  # type: ignore[union-attr]
    first = agent(agent_input({}))
    assert first == {"status": "feedback", "message": "Ship it?", "data": {"asking": "reply"}}
    waiting = {"asking": "reply", "human_feedback": "no idea"}
    assert agent(agent_input(waiting)) == {
        "status": "feedback",
        "message": "Please reply with approve or revise.",
    }
    got = agent(agent_input({**waiting, "human_feedback": "Revise: shorter"}))
    assert got["status"] == "done" and got["data"] == {"reply": "revise", "asking": ""}


def test_a_parse_error_without_words_re_asks_the_question() -> None:
    def days(text: str) -> int:
        if not text.isdigit():
            raise ValueError
        return int(text)

    built = define_factory(id="a", run=flow(ask("How many days?", days, name="days")))
    agent = built.states["ask_days"].agent  # type: ignore[union-attr]
    got = agent(agent_input({"asking": "days", "human_feedback": "a few"}))
    assert got["message"] == "I could not read that reply. How many days?"
    assert agent(agent_input({"asking": "days", "human_feedback": " 12 "}))["data"]["days"] == 12


def test_a_parse_that_returns_what_the_context_cannot_keep_fails_the_step() -> None:
    built = define_factory(id="a", run=flow(ask("?", lambda text: object(), name="x")))
    agent = built.states["ask_x"].agent  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="ask 'x': parse returned a object"):
        agent(agent_input({"asking": "x", "human_feedback": "hi"}))


@pytest.mark.parametrize(
    ("reply", "read"),
    [("approve", "approve"), ("APPROVE.", "approve"), ("**Revise** it", "revise"), ("ok", None)],
)
def test_one_of_reads_the_first_word_in_any_case(reply: str, read: str | None) -> None:
    parse = one_of("approve", "revise")
    if read is None:
        with pytest.raises(ValueError, match=r"^Please reply with approve or revise\.$"):
            parse(reply)
    else:
        assert parse(reply) == read


def test_one_of_refuses_choices_it_could_never_match() -> None:
    with pytest.raises(ValueError, match="'ship it' is more than one word"):
        one_of("approve", "ship it")
    with pytest.raises(ValueError, match="needs one or more non-empty strings"):
        one_of()


# -- load-time errors: the factory, the file and the step --------------------------------


def draft(inp: AgentInput) -> dict[str, Any]:
    return {"status": "done"}


@pytest.mark.parametrize(
    ("run", "problem"),
    [
        (flow(), "flow() has no steps"),
        (flow(step(draft), draft), "flow item 2 is the function 'draft' (wrap it: step(draft))"),
        (flow(step(draft), step(draft, name="draft")), None),  # auto names step aside
        (flow(step(draft, name="x"), ask("?", name="x")), "ask name 'x' is used twice"),
        (flow(step(draft, name="done")), "step name 'done' is taken by the end state 'done'"),
        (flow(step(draft, name="two words")), "step name 'two words' must be a word"),
        (flow(ask("?", name="go"), step(draft, name="ask_go")), "name 'ask_go' is used twice"),
        (flow(ask("?", name="asking")), "ask name 'asking' is a context key the engine keeps"),
        (flow(ask("?", name="last_error")), "ask name 'last_error' is a context key"),
        (flow(ask("?", name="human_feedback")), "ask name 'human_feedback' is a context key"),
        (flow(end(), step(draft)), "flow item 1: end('done') is followed by steps"),
        (
            flow(decide(lambda inp: "a", {"a": end(), "b": [step(draft), end()]}), step(draft)),
            "flow item 1 (decide): every branch ends, so the steps after it can never run",
        ),
        (flow(end("won")), "flow item 1: end('won') is not one of done, failed, blocked"),
        (flow(step("draft")), "flow item 1 (step): agent 'draft' is not callable"),  # type: ignore[arg-type]
        (flow(step(draft, retries=2)), "step 'draft' (flow item 1): retries must be Retries("),  # type: ignore[arg-type]
        (flow(ask(" ", name="ok")), "ask 'ok' (flow item 1): the prompt is empty"),
        (flow(ask(3)), "flow item 1 (ask): the prompt must be a str"),  # type: ignore[arg-type]
        (
            flow(decide(lambda inp: "a", {"a": "publish"}, name="route")),
            "decide 'route' (flow item 1): branch 'a' is a str, not a step or a list of steps",
        ),
        (flow(decide("", {"a": []}, name="r")), "decide 'r' (flow item 1): select is an empty"),
        (flow(decide(3, {"a": []})), "flow item 1 (decide): select 3 is neither a context key"),  # type: ignore[arg-type]
        (flow(decide(lambda inp: "a", {}, name="route")), "decide 'route' (flow item 1): needs"),
        (flow(loop(name="again")), "loop 'again' (flow item 1): loop() has no steps"),
        (
            flow(loop(step(draft), draft, name="again")),
            "loop 'again' (flow item 1) item 2 is the function 'draft'",
        ),
        (
            flow(loop(step(draft), name="again", max_iterations=0)),
            "state 'again': max_iterations must be a positive integer, got 0",
        ),
        (
            flow(loop(step(draft), name="again", until="ready")),
            "state 'again': guard 'ready' is not defined",
        ),
        ("draft", "run= must be flow(...), not a str"),
    ],
)
def test_a_bad_flow_is_refused_naming_the_factory_the_file_and_the_step(
    run: Any, problem: str | None
) -> None:
    if problem is None:
        define_factory(id="bad", run=run)
        return
    with pytest.raises(FactoryError) as refused:
        define_factory(id="bad", run=run)
    message = str(refused.value)
    assert message.startswith(f"factory 'bad' ({HERE}): "), message
    assert problem in message, message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(FactoryError) as refused:
        define_factory(id="bad", run=flow(draft, step(draft, name="done"), 42))
    assert len(refused.value.problems) == 2  # the two non-steps (names are checked after)
    assert "flow item 3 is an int" in str(refused.value)


def test_a_factory_is_a_table_or_a_flow_not_both() -> None:
    with pytest.raises(FactoryError, match="takes either run=flow"):
        define_factory(id="x", start="a", states={"a": done()}, run=flow(step(draft)))
    with pytest.raises(FactoryError, match=r"needs start= and states=, or run=flow\(\.\.\.\)"):
        define_factory(id="x")


# -- the two styles share `loop` and the package's names ---------------------------------


def test_loop_is_the_table_loop_with_body_and_on_and_the_flow_loop_with_steps() -> None:
    table = loop(body="b", on={"continue": "b", "done": "d", "exhausted": "d"}, until="g")
    assert isinstance(table, Loop) and table.body == "b"
    built = define_factory(
        id="t",
        start="l",
        guards={"g": lambda ctx: True},
        states={
            "l": table,
            "b": action(draft, on={"done": "l", "failed": "f"}),
            "d": done(),
            "f": failed(),
        },
    )
    assert built.states["l"] is table
    with pytest.raises(TypeError, match="not both"):
        loop(step(draft), body="b", on={})
    with pytest.raises(TypeError, match="needs both body= and on="):
        loop(body="b")


def test_the_package_exports_the_flow_steps_apart_from_the_transition_module() -> None:
    import factory.transitions as transitions

    assert factory.decide is decide and callable(factory.flow)
    assert transitions.decide is transition
    assert {"flow", "step", "ask", "decide", "loop", "write", "end"} <= set(factory.__all__)


# -- the guide's flow is the bundled one --------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "authoring.md"


def test_the_guides_flow_example_compiles_to_the_bundled_writing_flow() -> None:
    from workflows import writing_flow

    section = GUIDE.read_text().split("\n## Flows\n", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = dict(vars(writing_flow))
    exec(compile(example, str(GUIDE), "exec"), namespace)
    shown, bundled = namespace["FACTORY"], writing_flow.FACTORY
    assert (shown.id, shown.start) == (bundled.id, bundled.start)
    assert {k: type(v) for k, v in shown.states.items()} == {
        k: type(v) for k, v in bundled.states.items()
    }
    assert {k: getattr(v, "on", None) for k, v in shown.states.items()} == {
        k: getattr(v, "on", None) for k, v in bundled.states.items()
    }
