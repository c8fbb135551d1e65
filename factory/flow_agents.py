"""The agents a flow's `ask` and `write` compile to, and `one_of`, a ready-made reply parser.

An `ask` is an action that returns `feedback` (the engine posts its message as
a question comment and parks the run in the ask's feedback state) and, once
resumed by the reply, returns `done` with the parsed value. Whether it is being
resumed is kept in the run's context (`ASKING`), not inferred from the reply
text, so two equal replies in two rounds are both read, each exactly once: the
engine consumes a reply when it resumes the run, and a rejected reply is
answered by a new question comment, never by reading the old reply again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from factory.results import AgentInput
from factory.user_code import runs_inline

Text = str | Callable[[AgentInput], str]
Parse = Callable[[str], Any]

# ctx key: the name of the ask whose question is out, "" once its reply was read
ASKING = "asking"


def text_of(content: Text, inp: AgentInput, what: str) -> str:
    text = content(inp) if callable(content) else content
    if not isinstance(text, str):
        raise TypeError(f"{what} must give a str, got {type(text).__name__}")
    return text


def ask_agent(name: str, prompt: Text, parse: Parse | None) -> Callable[[AgentInput], Any]:
    def ask(inp: AgentInput) -> dict[str, Any]:
        question = text_of(prompt, inp, f"ask {name!r}: the prompt")
        if inp.ctx.get(ASKING) != name:
            return {"status": "feedback", "message": question, "data": {ASKING: name}}
        reply = str(inp.ctx.get("human_feedback", "")).strip()
        try:
            value = parse(reply) if parse is not None else reply
        except ValueError as rejected:
            reason = str(rejected).strip() or f"I could not read that reply. {question}"
            return {"status": "feedback", "message": reason}
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"ask {name!r}: parse returned a {type(value).__name__}, which the run's "
                "context cannot keep (return a str, number, bool, None, list or dict)"
            ) from None
        return {
            "status": "done",
            "data": {name: value, ASKING: ""},
            "message": f"{name}: {_clip(value)}",
        }

    ask.__qualname__ = ask.__name__ = f"ask_{name}"
    return ask


def write_agent(name: str, content: Text) -> Callable[[AgentInput], Any]:
    def write(inp: AgentInput) -> dict[str, Any]:
        page = text_of(content, inp, f"write {name!r}")
        return {"status": "done", "page": page, "message": f"{name}: written to the page"}

    write.__qualname__ = write.__name__ = f"write_{name}"
    return write


def ctx_select(key: str) -> Callable[[AgentInput], str]:
    """`decide("verdict", ...)`: route on the run's `ctx["verdict"]`."""

    def select(inp: AgentInput) -> str:
        if key not in inp.ctx:
            raise KeyError(f"the run's context has no {key!r} to decide on")
        return str(inp.ctx[key])

    select.__qualname__ = select.__name__ = f"ctx_{key}"
    return runs_inline(select)


def one_of(*choices: str) -> Parse:
    """A parser that takes a reply's first word if it is one of `choices` (any case), so
    "Revise: shorter intro" reads as "revise"; else asks again naming the choices."""
    if not choices or not all(isinstance(c, str) and c.strip() for c in choices):
        raise ValueError("one_of() needs one or more non-empty strings")
    several = [c for c in choices if len(c.split()) > 1]
    if several:
        raise ValueError(
            f"one_of(): {several[0]!r} is more than one word; a reply's first word is matched"
        )
    words = {c.strip().lower(): c for c in choices}
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]

    def parse(reply: str) -> str:
        first = reply.strip().split(maxsplit=1)[0] if reply.strip() else ""
        word = first.strip(".,:;!?'\"*_`()[]").lower()
        if word not in words:
            raise ValueError(f"Please reply with {listed}.")
        return words[word]

    parse.__qualname__ = parse.__name__ = "one_of"
    return parse


def _clip(value: Any, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
