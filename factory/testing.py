"""Testing a factory in a few lines: run cards through it, reply, check what the card shows.

The real engine drives the card (the tick loop, one committed transaction per
transition, retries, loop caps, feedback, the transition log) on a SQLite
database of its own in a temporary folder, through the local board, so a test
sees what production would. Time is a manual clock: retry backoffs are skipped,
not slept, and recorded in `card.backoffs`. Nothing here touches Notion. The
guide, with an example: "Testing your factory" in docs/authoring.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.board_protocol import Delivery, PendingEffect, Sending
from factory.clock import FakeClock
from factory.cycle import run_task
from factory.dsl import Action, Factory, Orchestrate
from factory.effects import CommentEffect, Effect, GraphEffect, LogEffect, PageEffect
from factory.engine import Engine, EngineConfig
from factory.local_board import LocalBoard
from factory.statuses import TERMINAL, TaskStatus
from factory.store import repo
from factory.store.db import Database, open_database
from factory.store.local_comments import add_reply
from factory.transitions import TRANSITION_CAP
from factory.validate import check_factory


class CardError(RuntimeError):
    """The test asked a card for something its state does not allow; says which card."""


@dataclass(frozen=True)
class Transition:
    """One row of the card's transition log (`nfactory history`)."""

    from_state: str
    to_state: str
    event: str  # what the state reported: "done", "failed", a select's event, "reply"...
    reason: str  # how it was routed: "action.done", "action.failed.retry", "loop.exhausted"...
    attempt: int
    message: str
    error: str | None


class _ShowingBoard(LocalBoard):
    """The local board, also keeping what each card shows (log, page, comments) in order."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.shown: dict[str, list[tuple[str, str]]] = {}

    async def deliver(
        self, effects: Sequence[PendingEffect], sending: Sending | None = None
    ) -> list[Delivery]:
        results = await super().deliver(effects, sending)
        ok = {r.effect_id for r in results if r.ok}
        for pending in effects:
            text = _shown_text(pending.effect)
            if pending.id in ok and text is not None:
                self.shown.setdefault(pending.task_id, []).append((pending.kind, text))
        return results


def _shown_text(effect: Effect) -> str | None:
    """What an effect adds to the card; None for a state effect (the card's column)."""
    match effect:
        case LogEffect(line=text) | PageEffect(markdown=text) | CommentEffect(text=text):
            return text
        case GraphEffect(markdown=text):
            return text
    return None


class FactoryHarness:
    """One factory on a private database and a manual clock; `card()` makes cards to test.

    `agents` replaces, by state id, the function a state runs: an action's agent, an
    orchestrate's agent or its select. Limits default to production's. `db` runs the
    cards on that database instead (PostgreSQL, say); the harness leaves it open.
    """

    def __init__(
        self,
        factory: Factory,
        *,
        agents: Mapping[str, Callable[..., Any]] | None = None,
        max_transitions_per_tick: int = 25,
        max_inline_backoff_seconds: float = 10.0,
        transition_cap: int = TRANSITION_CAP,
        db: Database | None = None,
    ) -> None:
        self.factory = _with_agents(factory, agents or {})
        self.clock = FakeClock()
        self._folder = tempfile.TemporaryDirectory(prefix="nfactory-test-")
        own = db is None
        self.db = db or open_database(f"sqlite:///{Path(self._folder.name) / 'nfactory.db'}")
        config = EngineConfig(
            worker_id="factory-testing",
            max_transitions_per_tick=max_transitions_per_tick,
            max_inline_backoff_seconds=max_inline_backoff_seconds,
            transition_cap=transition_cap,
        )
        self.engine = Engine(self.db, {self.factory.id: self.factory}, config, self.clock)
        self.board = _ShowingBoard(self.db, self.clock)
        self._close = weakref.finalize(self, _cleanup, self.db if own else None, self._folder)

    def card(self, title: str, *, context: str = "", prompt: str | None = None) -> Card:
        """A new card in Queue; `prompt` defaults to the description's first line, as on a board."""
        if not title.strip():
            raise ValueError("a card needs a title")
        if prompt is None:
            prompt = next((line.strip() for line in context.splitlines() if line.strip()), "")
        with self.db.begin() as conn:
            task_id = repo.create_task(
                conn,
                factory_id=self.factory.id,
                title=title,
                prompt=prompt,
                context=context,
                now=self.clock.now(),
            )
        return Card(self, task_id, title)

    def close(self) -> None:
        """Drop the database and its folder (also done when the harness is collected)."""
        self._close()

    def __enter__(self) -> FactoryHarness:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _cleanup(db: Any, folder: tempfile.TemporaryDirectory[str]) -> None:
    if db is not None:
        db.dispose()
    folder.cleanup()


def _with_agents(factory: Factory, agents: Mapping[str, Callable[..., Any]]) -> Factory:
    if not agents:
        return factory
    states = dict(factory.states)
    for state_id, fn in agents.items():
        state = states.get(state_id)
        if state is None:
            known = ", ".join(sorted(states))
            raise ValueError(
                f"agents: factory {factory.id!r} has no state {state_id!r} (its states: {known})"
            )
        if not callable(fn):
            raise TypeError(f"agents[{state_id!r}] must be a function, not {type(fn).__name__}")
        if isinstance(state, Action) or (isinstance(state, Orchestrate) and state.agent):
            states[state_id] = dataclasses.replace(state, agent=fn)
        elif isinstance(state, Orchestrate):
            states[state_id] = dataclasses.replace(state, select=fn)
        else:
            raise ValueError(
                f"agents: state {state_id!r} of factory {factory.id!r} is a {state.kind} state "
                "and runs no agent; only action and orchestrate states can be replaced"
            )
    replaced = dataclasses.replace(factory, states=states)
    check_factory(replaced)
    return replaced


class Card:
    """A card on the harness's board: run it, reply to it, and read what it shows."""

    def __init__(self, harness: FactoryHarness, task_id: str, title: str) -> None:
        self.harness = harness
        self.id = task_id
        self.title = title
        self.backoffs: list[float] = []  # retry delays (seconds) the clock skipped for it

    def __repr__(self) -> str:
        return f"<Card {self.title!r} {self.status} at {self.state!r}>"

    def run(self) -> Card:
        """Drive the card until it waits for a person or finishes (as `nfactory run`)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # none: run one (outside this handler, so errors do not chain to it)
        else:
            raise CardError(
                f"card {self.title!r}: run() was called inside a running event loop; "
                "use `await card.run_async()` there"
            )
        return asyncio.run(self.run_async())

    async def run_async(self) -> Card:
        h = self.harness
        status = self.status
        if status in TERMINAL:
            raise CardError(
                f"card {self.title!r} has finished ({self._where()}); "
                "a finished card does not run again: make a new card"
            )
        asked_to_stop = self._task().cancel_requested
        if (
            status == TaskStatus.feedback
            and not asked_to_stop
            and not await h.board.replies(self.id)
        ):
            raise CardError(
                f"card {self.title!r} is waiting for a reply in state {self.state!r} "
                f"(asked: {self.question!r}); call card.reply(...) before running it again"
            )
        slept = len(h.clock.sleeps)
        try:
            await run_task(h.engine, h.board, self.id)
        finally:
            self.backoffs += h.clock.sleeps[slept:]
        return self

    def reply(self, text: str, *, author: str = "a person") -> Card:
        """A person's comment on the card; the next `run()` resumes it with `text`."""
        if not self.waiting_for_reply:
            raise CardError(
                f"card {self.title!r} is {self._where()}, not waiting for a reply: "
                "there is no question to answer"
            )
        add_reply(self.harness.db, self.id, text, author, self.harness.clock.now())
        return self

    def cancel(self, by: str = "a person") -> Card:
        """Ask the card to stop, as moving it to Cancelled does; the next `run()` ends it."""
        with self.harness.db.begin() as conn:
            repo.request_cancel(conn, self.id, self.harness.clock.now(), by)
        return self

    @property
    def status(self) -> TaskStatus:
        """queued, running, feedback, done, failed, blocked or cancelled (equal to those
        strings)."""
        return self._task().status

    @property
    def state(self) -> str | None:
        """The state the run is in (None before its first run)."""
        run = self._run()
        return None if run is None else run.state_id

    @property
    def waiting_for_reply(self) -> bool:
        return self.status == TaskStatus.feedback

    @property
    def question(self) -> str | None:
        """The comment asking for a reply, while the card waits for one."""
        asked = self.comments
        return asked[-1] if self.waiting_for_reply and asked else None

    @property
    def error(self) -> str | None:
        """The card's Error: why it failed or was blocked (or its latest failed attempt)."""
        return self._task().last_error

    @property
    def ctx(self) -> dict[str, Any]:
        """The run's context: the factory's `context`, agents' `data`, replies."""
        run = self._run()
        return {} if run is None else dict(run.ctx)

    @property
    def transitions(self) -> list[Transition]:
        with self.harness.db.connect() as conn:
            rows = repo.history(conn, self.id)
        names = [f.name for f in dataclasses.fields(Transition)]
        return [Transition(**{name: r[name] for name in names}) for r in rows]

    @property
    def path(self) -> list[str]:
        """Every state the run entered, in order, from the transition log: a retried state
        appears once per attempt, a feedback state once per question."""
        steps = self.transitions
        return [steps[0].from_state, *(t.to_state for t in steps)] if steps else []

    @property
    def comments(self) -> list[str]:
        """The comments the bot posted on the card, in order: its questions, its summary."""
        return self._shown("comment")

    @property
    def log(self) -> list[str]:
        """The log lines written under the card's log heading."""
        return self._shown("log")

    @property
    def page(self) -> str:
        """The markdown agents wrote to the card's page (`page` results), in order."""
        return "\n\n".join(self._shown("page"))

    @property
    def graphs(self) -> list[str]:
        """The factory's diagrams shown on the card (a fenced Mermaid block per run)."""
        return self._shown("graph")

    def _where(self) -> str:
        state = self.state
        return f"{self.status}, not started" if state is None else f"{self.status} in {state!r}"

    def _shown(self, kind: str) -> list[str]:
        return [text for k, text in self.harness.board.shown.get(self.id, []) if k == kind]

    def _task(self) -> repo.TaskRow:
        with self.harness.db.connect() as conn:
            return repo.get_task(conn, self.id)

    def _run(self) -> repo.RunRow | None:
        with self.harness.db.connect() as conn:
            return repo.latest_run(conn, self.id)
