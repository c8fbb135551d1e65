"""What an agent interrupted by a cancel request leaves on the card.

The engine stops a running agent by cancelling it (asyncio) when the task's
cancel request is seen; the agent's own cleanup (command_agent: the process
group's SIGTERM, grace, SIGKILL) runs inside that cancellation. An agent with
output worth keeping (the command's stdout so far) hands it over here before
it re-raises, and the engine puts it on the page with the reason:

    try:
        ...
    except asyncio.CancelledError:
        partial_output("what I had so far")
        raise

Outside an engine call (a test calling the agent directly) it is a no-op.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Partial:
    """The markdown an interrupted call handed over, in order."""

    parts: list[str] = field(default_factory=list)

    @property
    def markdown(self) -> str:
        return "\n\n".join(p for p in self.parts if p.strip())


_current: ContextVar[Partial | None] = ContextVar("nfactory_partial_output", default=None)


def partial_output(markdown: str) -> None:
    """Leave `markdown` on the card if this agent call ends cancelled (else it is dropped)."""
    sink = _current.get()
    if sink is not None:
        sink.parts.append(markdown)


def use_partial(sink: Partial) -> None:
    """The engine's side: collect into `sink` for the agent call about to run in this
    context (set inside the call's own task, so nothing else shares it)."""
    _current.set(sink)
