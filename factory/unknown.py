"""What to do with a card whose factory id is not loaded: block it, or hold it in Queue. Pure.

An id is unknown either because nobody defined it (a typo on the card: block it and
say which ids exist) or because the module defining it failed to load (a bug in the
workflow code: the card is fine, so it waits in Queue, its Error naming the import
error, and runs once the module loads).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Verdict:
    action: Literal["block", "hold"]
    reason: str


def unknown_factory(
    factory_id: str, known: Collection[str], unloaded: Mapping[str, str]
) -> Verdict:
    """`unloaded` maps each module that failed to load to its error."""
    names = ", ".join(sorted(known)) or "none loaded"
    if not factory_id:
        # no module fix can give the card a factory; the list of choices may be short, though
        also = f" ({failures(unloaded)})" if unloaded else ""
        return Verdict("block", f"the card names no Factory; choose one of: {names}{also}")
    if not unloaded:
        return Verdict("block", f"unknown factory {factory_id!r}; known factories: {names}")
    return Verdict(
        "hold",
        f"factory {factory_id!r} is not loaded: {failures(unloaded)}; the card waits in Queue "
        "until the module is fixed and the worker restarted",
    )


def failures(unloaded: Mapping[str, str]) -> str:
    """'2 workflow module(s) failed to load: a.py: error; b.py: error'."""
    listed = "; ".join(f"{path}: {error}" for path, error in sorted(unloaded.items()))
    return f"{len(unloaded)} workflow module(s) failed to load: {listed}"


def health(unloaded: Mapping[str, str]) -> str:
    """The /healthz `factories` field: a worker missing some factories still works the rest."""
    if not unloaded:
        return "ok"
    return f"degraded ({failures(unloaded)})"
