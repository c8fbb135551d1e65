"""Threads for blocking work, in two rooms: the worker's own, and agents'.

Both used to share asyncio's default pool (CPU count + 4 threads, 6 on two cores):
sync agents sleeping in it made the heartbeats that keep their leases wait, so the
leases expired and other workers ran the same agents again; and an agent that
overran its timeout kept its thread after its tick had moved on, so other cards'
database reads queued behind it. Now:

- `run_io` runs the worker's own blocking work (SQL, lease claims and renewals,
  the outbox) on a pool no agent code runs on;
- `AgentThreads` runs each sync agent call on a thread of its own, at most `limit`
  at once. A call its caller gave up on (a timeout, a stop) still holds its slot
  until the thread really returns, and is counted as overrunning, so the
  dispatcher starts no card on top of it. The threads are daemons: one still
  running never holds up the process exit. A thread whose call returned waits a
  while (IDLE_SECONDS) for the next call rather than ending: starting a thread
  costs more than a quick selector's whole call. One call at a time per thread,
  never one given up on: a waiting thread is only ever one whose call returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger("nfactory.threads")

P = ParamSpec("P")
T = TypeVar("T")

# `nfactory start` sizes it to its concurrency; foreground commands need few.
DEFAULT_IO_THREADS = 8

# a job: run fn(*args, **kwargs) in ctx, then settle `done` on `loop`
_IoJob = tuple[
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
    dict[str, Any],
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
]


class _IoPool:
    """Daemon threads taking jobs from one queue. Not ThreadPoolExecutor: every
    transition hands its write to a thread, and the executor's future, its condition
    variable and asyncio's wrapping of it cost more than the write's own Python."""

    def __init__(self, threads: int) -> None:
        self.jobs: queue.SimpleQueue[_IoJob | None] = queue.SimpleQueue()
        self.threads = threads
        for i in range(threads):
            threading.Thread(target=self._serve, name=f"nfactory-io_{i}", daemon=True).start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            context, fn, args, kwargs, loop, done = job
            try:
                outcome: tuple[bool, Any] = (True, context.run(fn, *args, **kwargs))
            except BaseException as exc:  # handed to the caller, like to_thread does
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, done, outcome)
            del job, outcome, done  # no reference to a result outlives its call

    def close(self) -> None:
        """Each thread ends after the jobs queued before this."""
        for _ in range(self.threads):
            self.jobs.put(None)


_io_pool: _IoPool | None = None


def io_threads_for(concurrency: int) -> int:
    """Enough that nothing the worker does waits for a thread: a tick has at most one
    call in flight (a read, a write or a lease renewal), and besides the ticks there are
    intake, dispatch, delivery, feedback (with its own tick) and webhook requests."""
    return concurrency + 8


def agent_threads_for(concurrency: int) -> int:
    """One per card the dispatcher may run, and one for the card a reply resumes (the
    feedback job ticks it outside the dispatcher's count)."""
    return concurrency + 1


def configure_io(threads: int) -> None:
    """Size the worker's own pool; call before any work (a running pool is replaced)."""
    global _io_pool
    old, _io_pool = _io_pool, _IoPool(threads)
    if old is not None:
        old.close()


def _pool() -> _IoPool:
    if _io_pool is None:
        configure_io(DEFAULT_IO_THREADS)
    assert _io_pool is not None
    return _io_pool


async def run_io(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """asyncio.to_thread on the worker's own pool: never queued behind agent code. A
    caller cancelled meanwhile stops waiting; the call itself runs to its end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    _pool().jobs.put((contextvars.copy_context(), fn, args, kwargs, loop, done))
    return await done


class TimeLimitExceeded(Exception):
    """An agent's time limit ran out. Not a TimeoutError: an agent may raise one of its
    own (a socket timeout), which is its failure, not the limit's."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"time limit of {seconds:g} s exceeded")
        self.seconds = seconds


async def within(work: Awaitable[T], time_limit: float | None) -> T:
    """`await work`, cancelled (and awaited to its end) after `time_limit` seconds, then
    TimeLimitExceeded; whatever `work` raises itself, TimeoutError included, passes through."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=time_limit)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})  # its own cleanup first (a command's process group)
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        assert time_limit is not None
        raise TimeLimitExceeded(time_limit)
    return task.result()


# how long a thread whose agent call returned waits for another before it ends
IDLE_SECONDS = 30.0
IDLE_NAME = "nfactory-idle-thread"  # a waiting thread's name; a running one names its call


@dataclass(eq=False)  # identity: two calls are never the same slot
class AgentCall:
    label: str
    given_up: float | None = None  # when its caller stopped waiting; the thread runs on


_Job = tuple[AgentCall, Callable[[], None]]


class AgentThreads:
    """Sync agent calls, each on a daemon thread, at most `limit` at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"agent threads: limit must be at least 1, got {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._live: set[AgentCall] = set()  # slots taken: threads running (or about to)
        self._waiters: list[asyncio.Future[None]] = []
        self._idle: list[queue.SimpleQueue[_Job]] = []  # threads waiting for a call

    @property
    def running(self) -> int:
        """Agent calls whose threads have not returned, given up on or not."""
        with self._lock:
            return len(self._live)

    @property
    def overrunning(self) -> int:
        """Calls given up on (timed out, or abandoned at stop) whose threads still run."""
        with self._lock:
            return sum(1 for c in self._live if c.given_up is not None)

    def try_take_slot(self, call: AgentCall) -> bool:
        """Take a slot for `call` if one is free now."""
        with self._lock:
            return self._take_if_free(call)

    def _take_if_free(self, call: AgentCall) -> bool:
        # under self._lock
        if len(self._live) < self.limit:
            self._live.add(call)
            return True
        return False

    def release_unused(self, call: AgentCall) -> None:
        """Give back a slot taken for a call that will not be launched (its card was
        cancelled while it waited for the slot)."""
        self._release(call)

    def launch(
        self, call: AgentCall, fn: Callable[[Any], T], arg: Any, context: contextvars.Context
    ) -> asyncio.Future[T]:
        """Run `fn(arg)` in `context` on a thread, in the slot `call` has taken; the future
        of what it returns or raises."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def target() -> None:
            try:
                outcome: tuple[bool, Any] = (True, context.run(fn, arg))
            except BaseException as exc:  # handed to the caller, like to_thread does
                outcome = (False, exc)
            self._release(call)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, done, outcome)

        with self._lock:
            waiting = self._idle.pop() if self._idle else None
        if waiting is not None:
            waiting.put((call, target))
        else:
            try:
                threading.Thread(
                    target=self._serve, args=((call, target),), name=_name(call.label), daemon=True
                ).start()
            except BaseException:
                self._release(call)
                raise
        return done

    def _serve(self, job: _Job) -> None:
        """An agent thread: run its call, then wait up to IDLE_SECONDS for another."""
        me = threading.current_thread()
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        while True:
            call, target = job
            me.name = _name(call.label)
            target()
            me.name = IDLE_NAME
            with self._lock:
                if len(self._idle) >= self.limit:
                    return  # enough threads wait already
                self._idle.append(inbox)
            try:
                job = inbox.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                job = inbox.get()  # a call was handed over just as the wait ran out

    async def take_slot(self, call: AgentCall) -> None:
        """Wait for a free slot and take it for `call`."""
        loop = asyncio.get_running_loop()
        told = False
        while True:
            with self._lock:
                if self._take_if_free(call):
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                over = sum(1 for c in self._live if c.given_up is not None)
            if not told:
                told = True
                log.info(
                    "all %d agent threads are busy (%d overrunning): %s waits for one",
                    self.limit,
                    over,
                    call.label,
                )
            try:
                await waiter
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _release(self, call: AgentCall) -> None:
        """In the agent's thread, as it ends: free the slot and wake whoever waits for one."""
        with self._lock:
            self._live.discard(call)
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # each checks again; there are at most a few
            with contextlib.suppress(RuntimeError):
                waiter.get_loop().call_soon_threadsafe(_wake, waiter)
        if call.given_up is not None:
            log.info(
                "%s returned %.1fs after it was given up; its agent thread is free again",
                call.label,
                time.monotonic() - call.given_up,
            )

    def give_up(self, call: AgentCall) -> None:
        """Its caller stopped waiting (a timeout, a stop, a cancel): the thread runs on in
        its slot, counted as overrunning, until it returns; Python cannot stop a thread."""
        with self._lock:
            if call not in self._live:
                return  # it returned just as its caller gave up
            call.given_up = time.monotonic()
            over = sum(1 for c in self._live if c.given_up is not None)
        log.warning(
            "%s is still running after its caller gave up on it (timeout, stop or cancel); "
            "its thread keeps one of the %d agent slots until it returns "
            "(%d agent call(s) overrunning)",
            call.label,
            self.limit,
            over,
        )


def _name(label: str) -> str:
    return f"nfactory-agent {label}"


def _settle(done: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if done.done():  # cancelled: nobody waits for it
        return
    ok, value = outcome
    if ok:
        done.set_result(value)
    elif isinstance(value, StopIteration):
        # a future refuses StopIteration (it would end the generator awaiting it), and
        # the caller would wait forever: raised as asyncio raises it from a coroutine
        error = RuntimeError(f"StopIteration raised: {value}")
        error.__cause__ = value
        done.set_exception(error)
    else:
        done.set_exception(value)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
