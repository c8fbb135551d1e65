"""Factory modules as source text, for tests that write a workflows folder."""

from __future__ import annotations

BETA = """
from factory import action, define_factory, done, failed


def work(inp):
    return {"status": "done"}


FACTORY = define_factory(
    id="beta",
    start="work",
    states={
        "work": action(work, on={"done": "done", "failed": "failed"}),
        "done": done(),
        "failed": failed(),
    },
)
"""
