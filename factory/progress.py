"""Live progress of running agents: the latest line per card, kept in memory.

Agents report often (a coding agent prints hundreds of lines a minute), and a
card shows only the latest line, so nothing here is written per line: each
report replaces the card's line under a lock (agents report from their own
threads), and the worker's progress job publishes what changed, at most once
per card per interval (`due`, pure), to the board.

An entry lives while its agent runs. `finish` ends it before the engine commits
the agent's step, and first waits for a publish of that card still in flight:
whatever the board does with progress then happens before the step's own
effects exist, so a progress line never lands after the step's log.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from factory.terminal import control_chars

# A line on a card, not a log: long output keeps its start (what the line is about).
MAX_LINE_CHARS = 300
_CONTROL = control_chars(keep="\t\n")  # those two are whitespace: collapsed, not dropped
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_SPACE = re.compile(r"\s+")


def progress_line(text: object) -> str:
    """What an agent reported, as one short line: colours and control characters gone,
    whitespace (newlines too) collapsed, clipped to MAX_LINE_CHARS."""
    line = _ANSI.sub("", str(text))
    line = _SPACE.sub(" ", _CONTROL.sub("", line)).strip()
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - 1].rstrip() + "…"
    return line


@dataclass(frozen=True)
class ProgressUpdate:
    """One card's latest progress, as the board is asked to show it."""

    task_id: str
    run_id: str
    state_id: str
    title: str
    line: str
    version: int  # how many lines the agent has reported so far in this state
    started: float  # monotonic time the agent started


@dataclass
class _Entry:
    task_id: str
    run_id: str
    state_id: str
    title: str
    started: float
    line: str = ""
    version: int = 0
    published_version: int = 0
    published_at: float | None = None
    active: bool = True
    shown: bool = False  # a publish of it began: the card's row may hold its line
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)

    def update(self) -> ProgressUpdate:
        return ProgressUpdate(
            self.task_id,
            self.run_id,
            self.state_id,
            self.title,
            self.line,
            self.version,
            self.started,
        )


def is_due(
    version: int,
    published_version: int,
    published_at: float | None,
    now: float,
    interval: float,
) -> bool:
    """A card's line goes to the board when it changed since the last publish and the
    last publish is at least `interval` seconds old (the first one goes at once)."""
    if version == published_version:
        return False
    return published_at is None or now - published_at >= interval


class Progress:
    """The latest progress line of every card whose agent runs in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def start(self, task_id: str, run_id: str, state_id: str, title: str) -> Callable[[str], None]:
        """A new agent call of `task_id` begins: its sink (`inp.progress`)."""
        with self._lock:
            entry = _Entry(task_id, run_id, state_id, title, self.clock())
            self._entries[task_id] = entry

        def report(text: str) -> None:
            line = progress_line(text)
            if not line:
                return
            with self._lock:
                # a sink kept past its call (a thread still running) reports to nothing
                if not entry.active or line == entry.line:
                    return
                entry.line = line
                entry.version += 1

        return report

    async def finish(self, task_id: str) -> bool:
        """The agent call returned (or failed, or was abandoned): no more progress for it,
        and none in flight, before its step is committed. True when a line of it was
        published (the step's commit then clears it)."""
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is None:
                return False
            entry.active = False
        async with entry.busy:  # a publish of this card under way ends first
            pass
        with self._lock:
            if self._entries.get(task_id) is entry:
                del self._entries[task_id]
            return entry.shown

    def latest(self) -> dict[str, ProgressUpdate]:
        """Every running agent's latest progress (the live view)."""
        with self._lock:
            return {e.task_id: e.update() for e in self._entries.values() if e.active}

    def due(self, interval: float) -> list[ProgressUpdate]:
        """Lines to publish now: changed, and not published in the last `interval` seconds."""
        now = self.clock()
        with self._lock:
            return [
                e.update()
                for e in self._entries.values()
                if e.active
                and is_due(e.version, e.published_version, e.published_at, now, interval)
            ]

    @asynccontextmanager
    async def publishing(self, update: ProgressUpdate) -> AsyncIterator[Callable[[], None]]:
        """Hold the card while its line is published; `finish` waits for it.

        Yields `sent`, to call once the board spent a request on it (the interval is
        counted from there). Raises LookupError when the agent ended meanwhile.
        """
        with self._lock:
            entry = self._entries.get(update.task_id)
        if entry is None or entry.run_id != update.run_id:
            raise LookupError(update.task_id)
        async with entry.busy:
            with self._lock:
                if not entry.active:
                    raise LookupError(update.task_id)
                entry.shown = True

            def sent() -> None:
                with self._lock:
                    entry.published_version = update.version
                    entry.published_at = self.clock()

            yield sent
