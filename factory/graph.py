"""A factory as a picture: Mermaid flowchart text. Pure, no I/O.

Each state is a node whose shape says its kind (an action is a box, an
orchestrate a diamond, a loop a hexagon, a feedback state a parallelogram, a
terminal state a stadium) and whose colour says it again (`classDef`), so the
picture reads in a renderer without colours too. Events label the edges; a
feedback state's "reply" edges go back to the states that ask it. The
optional current state gets a thick border and a "▶".

Names never reach Mermaid raw: node ids are generated (`n0`, `n1`, ...) and
every label is quoted, with each ASCII character outside a small safe set
(and every separator or control character) written as a decimal entity
(`#35;`), so a quote, bracket, pipe, `%%`, backtick or newline in a state or
event name cannot end a label, start a comment or close the Markdown fence
the diagram travels in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from factory.states import Action, Factory, Feedback, Loop, Orchestrate, State, Terminal

__all__ = [
    "CARD_DIAGRAM_MAX",
    "KIND_STYLES",
    "card_diagram",
    "escape",
    "mermaid",
    "mermaid_fence",
    "unescape",
]

# characters a quoted Mermaid label may hold as they are; everything else is an entity
_SAFE_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.,:!?'/+*=@~$^()"
)
_ENTITY = re.compile(r"#(\d+);")

# (class name, node shape open, close, Mermaid style)
KIND_STYLES: dict[str, tuple[str, str, str]] = {
    "action": ("[", "]", "fill:#e8f0fe,stroke:#3b6ab5,color:#102040"),
    "orchestrate": ("{", "}", "fill:#fff4d6,stroke:#b58a1b,color:#3a2a00"),
    "loop": ("{{", "}}", "fill:#efe6fb,stroke:#7442b8,color:#2a1045"),
    "feedback": ("[/", "/]", "fill:#fde7ef,stroke:#b8336a,color:#45102a"),
    "done": ("([", "])", "fill:#e3f6e5,stroke:#2e8540,color:#0d3014"),
    "failed": ("([", "])", "fill:#fde2e1,stroke:#c0392b,color:#4a0f0a"),
    "blocked": ("([", "])", "fill:#eeeeee,stroke:#666666,color:#222222"),
    "other": ("[", "]", "fill:#ffffff,stroke:#999999,color:#222222"),
}
_CURRENT_STYLE = "stroke-width:4px,stroke:#e67e22"
_START_ID = "start"
_INDENT = "    "


def escape(text: str) -> str:
    """`text` for a quoted Mermaid label: letters, digits and a few punctuation marks
    as they are, every other character (quotes, brackets, `#`, `%`, `|`, `<`,
    backticks, newlines...) as a decimal entity Mermaid renders back."""
    return "".join(ch if _safe(ch) else f"#{ord(ch)};" for ch in text)


def _safe(ch: str) -> bool:
    if ch < "\x80":
        return ch in _SAFE_ASCII
    # letters, marks, symbols and punctuation of other scripts carry no Mermaid meaning;
    # separators (U+2028...) and control or format characters do or may
    return unicodedata.category(ch)[0] not in "CZ"


def unescape(label: str) -> str:
    """The text `escape` was given (what a renderer shows)."""
    return _ENTITY.sub(lambda m: chr(int(m.group(1))), label)


def _kind(state: State) -> str:
    """The key of the state's shape and colour: a state type added later draws as `other`
    (a run start must never fail over its picture)."""
    kind = state.outcome if isinstance(state, Terminal) else getattr(state, "kind", "")
    return kind if kind in KIND_STYLES else "other"


def _label(state_id: str, state: State, current: bool) -> str:
    match state:
        case Action():
            note = "action"
        case Orchestrate():
            note = "orchestrate"
        case Loop(max_iterations=cap, until=until):
            note = f"loop, at most {cap}" + (f", until {until}" if isinstance(until, str) else "")
        case Feedback():
            note = "feedback: waits for a reply"
        case Terminal(outcome=outcome):
            note = outcome
        case _:
            note = str(getattr(state, "kind", type(state).__name__))
    text = f"{state_id} ({note})"
    return escape(("▶ " if current else "") + text)


def _edges(factory: Factory) -> Iterator[tuple[str, str, list[str]]]:
    """(from, to, events) in state order; events between the same two states merged."""
    merged: dict[tuple[str, str], list[str]] = {}
    for state_id, state in factory.states.items():
        for event, target in getattr(state, "on", {}).items():
            merged.setdefault((state_id, target), []).append(event)
    for state_id, state in factory.states.items():
        if not isinstance(state, Feedback):
            continue
        if state.resume != "previous":
            back = [state.resume]
        else:  # resumes the state that asked: every state routing here
            back = [s for (s, t) in merged if t == state_id and s != state_id]
        for target in dict.fromkeys(back):
            merged.setdefault((state_id, target), []).append("reply")
    for (source, target), events in merged.items():
        yield source, target, events


def mermaid(factory: Factory, current: str | None = None) -> str:
    """The factory as a Mermaid flowchart (no trailing newline); `current` is marked."""
    if current is not None and current not in factory.states:
        known = ", ".join(factory.states) or "none"
        raise ValueError(f"current state {current!r} is not in factory {factory.id!r} ({known})")
    ids = {state_id: f"n{i}" for i, state_id in enumerate(factory.states)}
    lines = ["flowchart TD", f'{_INDENT}{_START_ID}(("start"))']
    for state_id, state in factory.states.items():
        opener, closer, _style = KIND_STYLES[_kind(state)]
        label = _label(state_id, state, state_id == current)
        lines.append(f'{_INDENT}{ids[state_id]}{opener}"{label}"{closer}')
    if factory.start in ids:
        lines.append(f"{_INDENT}{_START_ID} --> {ids[factory.start]}")
    for source, target, events in _edges(factory):
        if source not in ids or target not in ids:
            continue  # an invalid route: validation reports it, the picture leaves it out
        # an empty event name shows as "" (Mermaid takes no empty edge label)
        label = escape(", ".join(e or '""' for e in events))
        lines.append(f'{_INDENT}{ids[source]} -->|"{label}"| {ids[target]}')
    used = dict.fromkeys(_kind(s) for s in factory.states.values())
    for kind in used:
        lines.append(f"{_INDENT}classDef {kind} {KIND_STYLES[kind][2]}")
    lines.append(f"{_INDENT}classDef current {_CURRENT_STYLE}")
    lines.append(f"{_INDENT}classDef entry fill:#333333,stroke:#333333,color:#ffffff")
    lines.append(f"{_INDENT}class {_START_ID} entry")
    for kind in used:
        members = [ids[s] for s, state in factory.states.items() if _kind(state) == kind]
        lines.append(f"{_INDENT}class {','.join(members)} {kind}")
    if current is not None:
        lines.append(f"{_INDENT}class {ids[current]} current")
    return "\n".join(lines)


def mermaid_fence(factory: Factory, current: str | None = None) -> str:
    """The diagram as a fenced Markdown code block with language mermaid (Notion and
    GitHub draw it). The diagram holds no backtick, so the fence cannot close early."""
    return f"```mermaid\n{mermaid(factory, current)}\n```"


# A card's diagram travels in the run's first markdown append, which the Notion board
# sends in pieces of at most 50,000 characters; a fence cut across two pieces would
# draw nothing, so a diagram stays well under one piece with room for the log lines.
CARD_DIAGRAM_MAX = 30_000


def card_diagram(factory: Factory, current: str) -> str:
    """What a card's page shows of its factory when a run starts: the fenced diagram
    with `current` marked, or, for a factory too large to draw there, where to get it."""
    fence = mermaid_fence(factory, current)
    size = len(fence.encode("utf-16-le")) // 2  # as Notion counts: an emoji is two
    if size <= CARD_DIAGRAM_MAX:
        return fence
    return (
        f"_This factory's diagram ({len(factory.states)} states, {size:,} characters) "
        "is too large for the card; `nfactory factories --graph` with the factory's id "
        "prints it._"
    )
