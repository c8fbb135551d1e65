"""Compile a flow (`factory.flow_steps`) into the state table the engine runs. Pure: no I/O.

Each step becomes states named after it, so the transition log, `nfactory
history` and `FactoryHarness(agents={...})` speak the flow's names:

    step(agent)        -> action `name`: done -> what follows, failed -> `failed`
    write(content)     -> action `name` putting the content on the page
    ask(prompt, parse) -> action `ask_<name>` (posts the question, reads the reply)
                          + feedback `<name>` (where the card waits), resuming the ask
    decide(select, {}) -> orchestrate `name`: each event (`select(inp)`, or `ctx[select]`)
                          to its branch; a branch that does not end carries on after it
    loop(*body, ...)   -> loop `name`: continue -> the body, whose end returns to it;
                          done -> what follows; exhausted -> `exhausted=` or what follows
    end(outcome)       -> the terminal state `done`, `failed` or `blocked`

A step's name is `name=`, else its agent's function name (an ask's, decide's,
loop's and write's: "reply", "decide", "loop", "write"); repeats of a default
name get _2, _3, ... Give names to steps of a factory with runs in flight:
a run resumes by state name, so renaming a step strands the runs standing in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from factory.flow_agents import ASKING, ask_agent, ctx_select, write_agent
from factory.flow_steps import Ask, Decide, End, Flow, FlowLoop, Step, Write, as_steps
from factory.states import Action, Feedback, Loop, Orchestrate, Retries, State, Terminal

OUTCOMES = ("done", "failed", "blocked")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
DEFAULT_NAMES = {Ask: "reply", Decide: "decide", FlowLoop: "loop", Write: "write"}


class FlowError(ValueError):
    """A flow cannot be compiled; `problems` each name the step and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Compiled:
    start: str
    states: dict[str, State]


def compile_flow(run: Flow) -> Compiled:
    """The flow's state table and start state, or FlowError listing every problem."""
    if not isinstance(run, Flow):
        got = type(run).__name__
        raise FlowError([f"run= must be flow(...), not a {got}"])
    if not run.steps:
        raise FlowError(["flow() has no steps"])
    problems = list(_shape_problems(run.steps, "flow"))
    if problems:
        raise FlowError(problems)
    steps = _fresh(run.steps)
    names = _Names()
    names.assign(steps)
    if names.problems:
        raise FlowError(names.problems)
    builder = _Builder(names.of)
    start = builder.sequence(steps, "done")
    builder.add_referenced_ends(start)
    order = [*names.order, *(o for o in OUTCOMES if o in builder.states)]
    states = {sid: builder.states[sid] for sid in _expand(order, builder.states)}
    return Compiled(start=start, states=states)


def _fresh(steps: Sequence[Any]) -> tuple[Any, ...]:
    """A copy of the tree in which every occurrence is its own object, so one step used
    twice (`check = step(test)`, then `check` in two places) becomes two states."""
    out = []
    for node in steps:
        match node:
            case Decide():
                branches = {e: _fresh(as_steps(b) or ()) for e, b in node.branches.items()}
                out.append(replace(node, branches=branches))
            case FlowLoop():
                cap = node.exhausted
                exhausted = None if cap is None else _fresh(as_steps(cap) or ())
                out.append(replace(node, body=_fresh(node.body), exhausted=exhausted))
            case _:
                out.append(replace(node))
    return tuple(out)


def _expand(order: list[str], states: dict[str, State]) -> Iterator[str]:
    """State ids in flow order, an ask's feedback state right after its action."""
    for sid in order:
        if f"ask_{sid}" in states and isinstance(states.get(sid), Feedback):
            yield f"ask_{sid}"
        yield sid


# -- shape: every item is a step of the right kind, with sane arguments ------------------


def _shape_problems(steps: Sequence[Any], where: str) -> Iterator[str]:
    for i, node in enumerate(steps, 1):
        at = f"{where} item {i}"
        if isinstance(node, End):
            if node.outcome not in OUTCOMES:
                yield f"{at}: end({node.outcome!r}) is not one of {', '.join(OUTCOMES)}"
            if i < len(steps):
                yield f"{at}: end({node.outcome!r}) is followed by steps that can never run"
            continue
        label = _label(node, at)
        if isinstance(node, Decide) and i < len(steps) and _always_ends(node):
            yield f"{label}: every branch ends, so the steps after it can never run"
        match node:
            case Step():
                if not callable(node.agent):
                    yield f"{label}: agent {node.agent!r} is not callable"
                if node.retries is not None and not isinstance(node.retries, Retries):
                    yield f"{label}: retries must be Retries(max=..., backoff=...)"
            case Ask():
                if not (isinstance(node.prompt, str) or callable(node.prompt)):
                    yield f"{label}: the prompt must be a str or a function of the input"
                elif isinstance(node.prompt, str) and not node.prompt.strip():
                    yield f"{label}: the prompt is empty; it is the question the card asks"
                if node.parse is not None and not callable(node.parse):
                    yield f"{label}: parse {node.parse!r} is not callable"
            case Write():
                if not (isinstance(node.content, str) or callable(node.content)):
                    yield f"{label}: content must be a str or a function of the input"
            case Decide():
                yield from _decide_problems(node, label)
            case FlowLoop():
                if not node.body:
                    yield f"{label}: loop() has no steps"
                yield from _shape_problems(node.body, label)
                if node.exhausted is not None:
                    branch = as_steps(node.exhausted)
                    if branch is None:
                        got = type(node.exhausted).__name__
                        yield f"{label}: exhausted= must be a step or a list of steps, not a {got}"
                    else:
                        yield from _shape_problems(branch, f"{label} exhausted=")
            case _:
                yield f"{at} is {_what(node)}, not a step (use step(fn), ask, decide, loop, ...)"


def _always_ends(node: Any) -> bool:
    """Whether a run that enters `node` never comes out of it (it ends the run)."""
    if isinstance(node, End):
        return True
    if isinstance(node, Decide) and hasattr(node.branches, "values") and node.branches:
        return all(
            any(_always_ends(n) for n in (as_steps(branch) or ()))
            for branch in node.branches.values()
        )
    return False  # a loop can always be left: its guard is checked before its body


def _decide_problems(node: Decide, label: str) -> Iterator[str]:
    if isinstance(node.select, str):
        if not node.select:
            yield f"{label}: select is an empty context key"
    elif not callable(node.select):
        yield f"{label}: select {node.select!r} is neither a context key nor callable"
    if not hasattr(node.branches, "items") or not node.branches:
        yield f"{label}: needs branches, a dict of event -> steps"
        return
    for event, branch in node.branches.items():
        if not isinstance(event, str) or not event:
            yield f"{label}: branch key {event!r} must be a non-empty event name"
            continue
        steps = as_steps(branch)
        if steps is None:
            got = _what(branch)
            yield f"{label}: branch {event!r} is {got}, not a step or a list of steps"
            continue
        yield from _shape_problems(steps, f"{label} branch {event!r}")


def _label(node: Any, at: str) -> str:
    """How a problem names a step: by its name when it has a usable one."""
    kind = type(node).__name__.lower().removeprefix("flow")
    name = getattr(node, "name", None) or (
        getattr(getattr(node, "agent", None), "__name__", None) if isinstance(node, Step) else None
    )
    return f"{kind} {name!r} ({at})" if isinstance(name, str) else f"{at} ({kind})"


def _what(value: Any) -> str:
    if callable(value) and hasattr(value, "__name__"):
        return f"the function {value.__name__!r} (wrap it: step({value.__name__}))"
    kind = type(value).__name__
    return f"{'an' if kind[0].lower() in 'aeiou' else 'a'} {kind}"


# -- names ------------------------------------------------------------------------------


@dataclass
class _Names:
    """Each step's state name, in flow order; explicit names must be unique."""

    of: dict[int, str] = field(default_factory=dict)  # id(node) -> name
    order: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _explicit: set[str] = field(default_factory=set)

    def assign(self, steps: Sequence[Any]) -> None:
        nodes = list(_walk(steps))
        for node in nodes:
            if node.name is not None:
                self._claim_explicit(node)
        taken = set(self._explicit)
        for node in nodes:
            if node.name is None:
                base = _default_name(node)
                name, n = base, 1
                while name in taken or _clashes(name, taken):
                    n += 1
                    name = f"{base}_{n}"
                taken.add(name)
                self.of[id(node)] = name
            self.order.append(self.of[id(node)])

    def _claim_explicit(self, node: Any) -> None:
        name = node.name
        kind = type(node).__name__.lower().removeprefix("flow")
        if not isinstance(name, str) or not NAME.match(name):
            self.problems.append(
                f"{kind} name {name!r} must be a word (letters, digits, _ . -; not first a digit)"
            )
        elif name in OUTCOMES:
            self.problems.append(f"{kind} name {name!r} is taken by the end state {name!r}")
        elif kind == "ask" and name in ENGINE_KEYS:
            # an ask keeps its answer in the run's context under its name
            self.problems.append(
                f"ask name {name!r} is a context key the engine keeps; choose another name"
            )
        elif name in self._explicit or _clashes(name, self._explicit):
            self.problems.append(f"{kind} name {name!r} is used twice; names must be unique")
        self._explicit.add(name)
        self.of[id(node)] = name


# Context keys the engine and the ask agents write: an ask's answer must not land on one.
ENGINE_KEYS = frozenset({ASKING, "last_error", "human_feedback", "human_feedback_meta"})


def _clashes(name: str, taken: set[str]) -> bool:
    """An ask also owns `ask_<name>`; any name equal to another's derived one clashes."""
    return f"ask_{name}" in taken or (name.startswith("ask_") and name[4:] in taken)


def _default_name(node: Any) -> str:
    if isinstance(node, Step):
        fn = getattr(node.agent, "__name__", "")
        return fn if NAME.match(fn) and fn not in OUTCOMES else "step"
    return DEFAULT_NAMES[type(node)]


def _walk(steps: Sequence[Any]) -> Iterator[Any]:
    """Every named step in flow order (ends have no name of their own)."""
    for node in steps:
        match node:
            case End():
                continue
            case Decide():
                yield node
                for branch in node.branches.values():
                    yield from _walk(as_steps(branch) or ())
            case FlowLoop():
                yield node
                yield from _walk(node.body)
                if node.exhausted is not None:
                    yield from _walk(as_steps(node.exhausted) or ())
            case _:
                yield node


# -- building the states ----------------------------------------------------------------


class _Builder:
    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.states: dict[str, State] = {}

    def sequence(self, steps: Sequence[Any], after: str) -> str:
        """Build `steps` so the last goes on to `after`; the state id the sequence starts at."""
        entry = after
        for node in reversed(steps):
            entry = self.node(node, entry)
        return entry

    def node(self, node: Any, after: str) -> str:
        if isinstance(node, End):
            return self._terminal(node.outcome)
        name = self.names[id(node)]
        match node:
            case Step():
                self.states[name] = Action(
                    agent=node.agent,
                    on={"done": after, "failed": self._terminal("failed")},
                    retries=node.retries or Retries(),
                    timeout=node.timeout,
                )
                return name
            case Write():
                self.states[name] = Action(
                    agent=write_agent(name, node.content),
                    on={"done": after, "failed": self._terminal("failed")},
                )
                return name
            case Ask():
                asker = f"ask_{name}"
                self.states[asker] = Action(
                    agent=ask_agent(name, node.prompt, node.parse),
                    on={"done": after, "feedback": name, "failed": self._terminal("failed")},
                )
                self.states[name] = Feedback(resume=asker)
                return asker
            case Decide():
                self.states[name] = Orchestrate(
                    select=(
                        ctx_select(node.select) if isinstance(node.select, str) else node.select
                    ),
                    on={
                        event: self.sequence(as_steps(branch) or (), after)
                        for event, branch in node.branches.items()
                    },
                )
                return name
            case FlowLoop():
                body = self.sequence(node.body, name)
                exhausted = (
                    after
                    if node.exhausted is None
                    else self.sequence(as_steps(node.exhausted) or (), after)
                )
                self.states[name] = Loop(
                    body=body,
                    on={"continue": body, "done": after, "exhausted": exhausted},
                    max_iterations=node.max_iterations,
                    until=node.until,
                )
                return name
        raise AssertionError(f"unchecked flow node {node!r}")  # _shape_problems saw it

    def add_referenced_ends(self, start: str) -> None:
        """The end states routes lead to without an end() step: falling off the flow is done."""
        targets = {start}
        for state in self.states.values():
            targets.update(getattr(state, "on", {}).values())
        for outcome in OUTCOMES:
            if outcome in targets:
                self._terminal(outcome)

    def _terminal(self, outcome: str) -> str:
        self.states.setdefault(outcome, Terminal(outcome))  # type: ignore[arg-type]
        return outcome
