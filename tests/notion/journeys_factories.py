"""Factories the board journeys drive."""

from __future__ import annotations

import asyncio
from typing import Any

from factory import (
    AgentInput,
    Backoff,
    Retries,
    action,
    define_factory,
    done,
    failed,
    feedback,
)


def step(name: str) -> Any:
    def agent(inp: AgentInput) -> dict[str, Any]:
        return {"status": "done", "message": f"{name} finished"}

    return agent


FIVE = define_factory(
    id="five",
    start="s1",
    states={
        **{
            f"s{i}": action(
                step(f"s{i}"), on={"done": f"s{i + 1}" if i < 5 else "end", "failed": "bad"}
            )
            for i in range(1, 6)
        },
        "end": done(),
        "bad": failed(),
    },
)


def ask(inp: AgentInput) -> dict[str, Any]:
    if "human_feedback" in inp.ctx:
        return {
            "status": "done",
            "data": {"answer": inp.ctx["human_feedback"]},
            "message": "thanks",
        }
    return {"status": "feedback", "message": f"Which colour for {inp.title!r}?"}


ASK = define_factory(
    id="ask",
    start="ask",
    states={
        "ask": action(ask, on={"done": "end", "feedback": "wait", "failed": "bad"}),
        "wait": feedback(),
        "end": done(),
        "bad": failed(),
    },
)


def broken(inp: AgentInput) -> dict[str, Any]:
    raise RuntimeError(f"the service is down (attempt {inp.attempt})")


FLAKY = define_factory(
    id="flaky",
    start="call",
    states={
        "call": action(
            broken,
            on={"done": "end", "failed": "bad"},
            retries=Retries(max=2, backoff=Backoff("fixed", ms=10, max_ms=10)),
        ),
        "end": done(),
        "bad": failed(),
    },
)

LONG_LINES = [f"line {i:03d}: " + "x" * 30 for i in range(250)]


def long_output(inp: AgentInput) -> dict[str, Any]:
    page = "\n\n".join(LONG_LINES) + "\n\n" + "y" * 10_000
    return {"status": "done", "page": page}


LONG = define_factory(
    id="long",
    start="write",
    states={
        "write": action(long_output, on={"done": "end", "failed": "bad"}),
        "end": done(),
        "bad": failed(),
    },
)


async def slow(inp: AgentInput) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {"status": "done"}


SLOW = define_factory(
    id="slow",
    start="a",
    states={
        "a": action(slow, on={"done": "b", "failed": "bad"}),
        "b": action(slow, on={"done": "c", "failed": "bad"}),
        "c": action(slow, on={"done": "end", "failed": "bad"}),
        "end": done(),
        "bad": failed(),
    },
)

ALL = {f.id: f for f in (FIVE, ASK, FLAKY, LONG, SLOW)}
