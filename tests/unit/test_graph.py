"""The factory as a Mermaid picture: shapes by kind, events on edges, names that stay inert."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory.dsl import action, define_factory, done, failed, feedback, loop, orchestrate
from factory.graph import (
    CARD_DIAGRAM_MAX,
    card_diagram,
    escape,
    mermaid,
    mermaid_fence,
    unescape,
)
from factory.states import Factory, Feedback, Orchestrate, State, Terminal

# -- a small grammar of every line `mermaid` may write --------------------------------

_SAFE_ASCII = re.compile(r"[A-Za-z0-9 _\-.,:!?'/+*=@~$^()]")
_LABEL = r'"((?:[^"#\x00-\x7f]|[A-Za-z0-9 _\-.,:!?\'/+*=@~$^()]|#\d+;)*)"'
_SHAPES = {"[": "]", "{": "}", "{{": "}}", "[/": "/]", "([": "])"}
_OPEN = "|".join(re.escape(o) for o in sorted(_SHAPES, key=len, reverse=True))
_CLOSE = "|".join(re.escape(c) for c in sorted(set(_SHAPES.values()), key=len, reverse=True))
NODE = re.compile(rf"^    (n\d+)({_OPEN}){_LABEL}({_CLOSE})$")
START = re.compile(r'^    start\(\("start"\)\)$')
ENTRY = re.compile(r"^    start --> (n\d+)$")
EDGE = re.compile(rf"^    (n\d+) -->\|{_LABEL}\| (n\d+)$")
CLASSDEF = re.compile(r"^    classDef [a-z]+ [a-z0-9:#,\-]+$")
CLASS = re.compile(r"^    class ((?:n\d+|start)(?:,n\d+)*) [a-z]+$")


def parse(diagram: str) -> dict[str, Any]:
    """Node labels and edges of a diagram; fails on any line outside the grammar."""
    lines = diagram.split("\n")
    assert lines[0] == "flowchart TD"
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str]] = []
    entry = None
    for line in lines[1:]:
        if m := NODE.match(line):
            node_id, opener, label, closer = m.groups()
            assert _SHAPES[opener] == closer, line
            assert node_id not in nodes, f"node {node_id} declared twice"
            nodes[node_id] = (opener, label)
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(3), m.group(2)))
        elif m := ENTRY.match(line):
            entry = m.group(1)
        else:
            assert START.match(line) or CLASSDEF.match(line) or CLASS.match(line), line
    for label in [lab for _o, lab in nodes.values()] + [lab for _s, _t, lab in edges]:
        # no raw separator or control character survives; every `#` starts an entity
        assert all(
            _SAFE_ASCII.match(ch) or (ch >= "\x80" and unicodedata.category(ch)[0] not in "CZ")
            for ch in re.sub(r"#\d+;", "", label)
        ), label
    for source, target, _label in edges:
        assert source in nodes and target in nodes
    return {"nodes": nodes, "edges": edges, "entry": entry}


# -- arbitrary factories ---------------------------------------------------------------

names = st.text(max_size=12)


@st.composite
def factories(draw: st.DrawFn) -> tuple[Factory, str | None]:
    ids = draw(st.lists(names, min_size=3, max_size=7, unique=True))
    *routers, wait, end = ids
    states: dict[str, State] = {}
    for state_id in routers:
        events = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        states[state_id] = Orchestrate(
            on={e: draw(st.sampled_from(ids)) for e in events}, select=lambda _: None
        )
    states[wait] = Feedback()
    states[end] = Terminal(draw(st.sampled_from(["done", "failed", "blocked"])))
    current = draw(st.none() | st.sampled_from(ids))
    return Factory(id=draw(names), start=routers[0], states=states), current


@given(factories())
def test_any_names_give_a_diagram_every_line_of_which_parses(made: tuple[Factory, str | None]):
    factory, current = made
    diagram = mermaid(factory, current)
    seen = parse(diagram)
    labels = {unescape(label): node for node, (_shape, label) in seen["nodes"].items()}
    assert len(seen["nodes"]) == len(factory.states)
    by_name = {}
    for state_id, state in factory.states.items():
        mark = "▶ " if state_id == current else ""
        node = next(n for text, n in labels.items() if text.startswith(f"{mark}{state_id} ("))
        by_name[state_id] = node
        assert seen["nodes"][node][0] == {"orchestrate": "{", "feedback": "[/"}.get(
            state.kind, "(["
        )
    assert seen["entry"] == by_name[factory.start]
    drawn = {(s, t): unescape(label) for s, t, label in seen["edges"]}
    for state_id, state in factory.states.items():
        for event, target in getattr(state, "on", {}).items():
            shown = event or '""'  # Mermaid takes no empty label
            assert shown in drawn[(by_name[state_id], by_name[target])].split(", ")
    assert "`" not in diagram and "%%" not in diagram  # cannot close the fence or comment
    if current is not None:
        assert f"class {by_name[current]} current" in diagram.split("\n    ")


@given(st.text())
def test_escape_round_trips_and_leaves_nothing_mermaid_reads(text: str) -> None:
    escaped = escape(text)
    assert unescape(escaped) == text
    bare = re.sub(r"#\d+;", "", escaped)  # what is left besides the entities
    assert not set(bare) & set('"#`|[]{}<>%;&\\\n\r\t\u2028')


# -- the bundled shapes ----------------------------------------------------------------


def review_factory() -> Factory:
    def work(inp: Any) -> dict[str, str]:
        return {"status": "done"}

    return define_factory(
        id="review",
        start="draft",
        states={
            "draft": action(work, on={"done": "polish", "failed": "broken"}),
            "polish": loop("edit", on={"continue": "edit", "done": "route", "exhausted": "route"}),
            "edit": action(work, on={"done": "polish", "failed": "broken"}),
            "route": orchestrate(
                on={"ship": "end", "ask": "wait", "again": "draft"}, select=lambda _: "ship"
            ),
            "wait": feedback(),
            "end": done(),
            "broken": failed(),
        },
    )


def test_states_are_shaped_and_coloured_by_kind_with_events_on_the_edges() -> None:
    diagram = mermaid(review_factory())
    assert diagram == "\n".join(
        [
            "flowchart TD",
            '    start(("start"))',
            '    n0["draft (action)"]',
            '    n1{{"polish (loop, at most 5)"}}',
            '    n2["edit (action)"]',
            '    n3{"route (orchestrate)"}',
            '    n4[/"wait (feedback: waits for a reply)"/]',
            '    n5(["end (done)"])',
            '    n6(["broken (failed)"])',
            "    start --> n0",
            '    n0 -->|"done"| n1',
            '    n0 -->|"failed"| n6',
            '    n1 -->|"continue"| n2',
            '    n1 -->|"done, exhausted"| n3',
            '    n2 -->|"done"| n1',
            '    n2 -->|"failed"| n6',
            '    n3 -->|"ship"| n5',
            '    n3 -->|"ask"| n4',
            '    n3 -->|"again"| n0',
            '    n4 -->|"reply"| n3',
            "    classDef action fill:#e8f0fe,stroke:#3b6ab5,color:#102040",
            "    classDef loop fill:#efe6fb,stroke:#7442b8,color:#2a1045",
            "    classDef orchestrate fill:#fff4d6,stroke:#b58a1b,color:#3a2a00",
            "    classDef feedback fill:#fde7ef,stroke:#b8336a,color:#45102a",
            "    classDef done fill:#e3f6e5,stroke:#2e8540,color:#0d3014",
            "    classDef failed fill:#fde2e1,stroke:#c0392b,color:#4a0f0a",
            "    classDef current stroke-width:4px,stroke:#e67e22",
            "    classDef entry fill:#333333,stroke:#333333,color:#ffffff",
            "    class start entry",
            "    class n0,n2 action",
            "    class n1 loop",
            "    class n3 orchestrate",
            "    class n4 feedback",
            "    class n5 done",
            "    class n6 failed",
        ]
    )


def test_the_current_state_is_marked_and_an_unknown_one_is_refused() -> None:
    diagram = mermaid(review_factory(), current="edit")
    assert '    n2["▶ edit (action)"]' in diagram.split("\n")
    assert diagram.endswith("    class n2 current")
    with pytest.raises(ValueError, match=r"current state 'nope' is not in factory 'review'"):
        mermaid(review_factory(), current="nope")


def test_a_feedback_state_that_resumes_a_named_state_points_there() -> None:
    def work(inp: Any) -> dict[str, str]:
        return {"status": "done"}

    factory = define_factory(
        id="f",
        start="a",
        states={
            "a": action(work, on={"done": "end", "failed": "end", "feedback": "ask"}),
            "ask": feedback(resume="b"),
            "b": action(work, on={"done": "end", "failed": "end"}),
            "end": done(),
        },
    )
    assert '    n1 -->|"reply"| n2' in mermaid(factory).split("\n")


def test_hostile_names_stay_inside_their_labels() -> None:
    factory = Factory(
        id="x",
        start='a"]-->b',
        states={
            'a"]-->b': Orchestrate(on={"%% x |y|\n```": "end"}, select=lambda _: None),
            "end": Terminal("done"),
        },
    )
    diagram = mermaid(factory)
    assert '    n0{"a#34;#93;--#62;b (orchestrate)"}' in diagram.split("\n")
    assert '    n0 -->|"#37;#37; x #124;y#124;#10;#96;#96;#96;"| n1' in diagram.split("\n")
    parse(diagram)


# -- on the card -----------------------------------------------------------------------


def test_the_card_gets_a_fenced_diagram_with_the_start_marked() -> None:
    shown = card_diagram(review_factory(), "draft")
    assert shown == mermaid_fence(review_factory(), "draft")
    assert shown.startswith("```mermaid\nflowchart TD\n") and shown.endswith("\n```")
    assert '["▶ draft (action)"]' in shown


def test_a_factory_too_large_for_the_card_says_where_its_diagram_is() -> None:
    states: dict[str, State] = {
        f"state_with_a_long_name_{i}": Orchestrate(
            on={f"event_{j}": f"state_with_a_long_name_{(i + j) % 400}" for j in range(3)},
            select=lambda _: None,
        )
        for i in range(400)
    }
    factory = Factory(id="huge", start="state_with_a_long_name_0", states=states)
    assert len(mermaid_fence(factory)) > CARD_DIAGRAM_MAX
    shown = card_diagram(factory, "state_with_a_long_name_0")
    assert "```" not in shown
    assert "400 states" in shown and "nfactory factories --graph" in shown


def test_the_authoring_guide_shows_the_writing_workflow_as_it_is_drawn() -> None:
    from pathlib import Path

    from workflows import writing

    guide = (Path(__file__).resolve().parents[2] / "docs" / "authoring.md").read_text()
    assert mermaid_fence(writing.FACTORY) in guide


def test_the_card_limit_counts_characters_as_notion_does() -> None:
    # states named by forty emoji each: fewer code points than the limit, more UTF-16 units
    states: dict[str, State] = {"\U0001f680" * 40 + str(i): Terminal("done") for i in range(400)}
    start = next(iter(states))
    fence = mermaid_fence(Factory(id="rockets", start=start, states=states))
    assert len(fence) <= CARD_DIAGRAM_MAX < len(fence.encode("utf-16-le")) // 2
    assert "```" not in card_diagram(Factory(id="rockets", start=start, states=states), start)


def test_a_state_type_the_picture_does_not_know_still_draws() -> None:
    @dataclass(frozen=True)
    class Wait:
        on: dict[str, str]
        kind: str = "wait [x]"

    factory = Factory(
        id="w",
        start="a",
        states={"a": Wait(on={"go": "b"}), "b": Terminal("done")},  # type: ignore[dict-item]
    )
    diagram = mermaid(factory, current="a")
    assert '    n0["▶ a (wait #91;x#93;)"]' in diagram.split("\n")
    assert "    class n0 other" in diagram.split("\n")
    parse(diagram)
