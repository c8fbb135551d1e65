"""Calling user code (agents, selectors, guards) for a tick.

A sync function runs on an agent thread (factory/threads.py), a coroutine function on the
event loop; either under its time limit, and raced against the tick's cancel watcher: a
cancel request seen meanwhile stops it (async code is cancelled, a sync call's thread
abandoned) and raises CancelRequested with whatever partial output it handed over.

A sync call is one future raced once against the watcher and the time limit: no task
and no second wait around it, since a transition of a quick selector is mostly this.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any

from factory.interrupt import Partial, use_partial
from factory.threads import AgentCall, AgentThreads, TimeLimitExceeded, within

log = logging.getLogger("nfactory.engine")


class UserCodeFailed(Exception):
    """User code raised or timed out; the message names the state."""


class CancelRequested(Exception):
    """The task's cancel request was seen while user code ran; the code was stopped."""

    def __init__(self, by: str, partial: str) -> None:
        super().__init__(f"cancelled by {by}")
        self.by = by
        self.partial = partial


# the framework's own functions that run on the loop; a registry, not an attribute, so
# that no wrapper (functools.wraps copies attributes) or proxy of a user's can claim it
_inline: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def runs_inline(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark the framework's own quick, pure code (routing on a context key) to run on the
    event loop, without the hand-off to an agent thread. Never for user code: a user's
    function may block, and on the loop that would stall every card's heartbeat."""
    _inline.add(fn)
    return fn


def _is_inline(fn: Callable[..., Any]) -> bool:
    try:
        return fn in _inline
    except TypeError:  # unhashable, or no weak reference to it: not ours
        return False


@functools.lru_cache(maxsize=1024)
def is_async(fn: Callable[..., Any]) -> bool:
    """A coroutine function, or a callable object whose `__call__` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def call(
    agents: AgentThreads,
    fn: Callable[..., Any],
    arg: Any,
    *,
    time_limit: float | None,
    state_id: str,
    what: str,
    label: str,
    cancelled: asyncio.Future[str],
) -> Any:
    """`fn(arg)`'s result; UserCodeFailed when it raises or overruns `time_limit`,
    CancelRequested when `cancelled` completes first (with who asked)."""
    if cancelled.done():  # seen already (during a commit, a workspace): do not start it
        raise CancelRequested(cancelled.result(), "")
    partial = Partial()
    try:
        if _is_inline(fn):
            return fn(arg)
        try:
            async_fn = is_async(fn)
        except TypeError:  # unhashable callable: asked directly, every time
            async_fn = is_async.__wrapped__(fn)
        if async_fn:
            work: asyncio.Future[Any] = asyncio.ensure_future(
                _in_context(partial, fn, arg, time_limit)
            )
            result = await _race(work, cancelled, None, partial, None, agents, what)
        else:
            context = contextvars.copy_context()
            context.run(use_partial, partial)  # the agent hands its partial output here
            slot = AgentCall(label)
            if not agents.try_take_slot(slot):
                await _slot_unless_cancelled(agents, slot, cancelled)
            work = agents.launch(slot, fn, arg, context)
            result = await _race(work, cancelled, time_limit, partial, slot, agents, what)
            if inspect.isawaitable(result):  # a sync function that returned a coroutine
                work = asyncio.ensure_future(within(result, time_limit))
                result = await _race(work, cancelled, None, partial, None, agents, what)
        return result
    except TimeLimitExceeded as exc:
        raise UserCodeFailed(
            f"state {state_id!r}: {what} timed out after {exc.seconds:g} s"
        ) from None
    except CancelRequested as stop:
        log.info("%s: cancel requested by %s; stopped", label, stop.by)
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.debug("user code raised in %s", state_id, exc_info=True)
        raise UserCodeFailed(
            f"state {state_id!r}: {what} raised {type(exc).__name__}: {exc}"
        ) from exc


async def _slot_unless_cancelled(
    agents: AgentThreads, slot: AgentCall, cancelled: asyncio.Future[str]
) -> None:
    """Wait for an agent thread's slot; a cancel seen meanwhile means the call never
    starts (CancelRequested). However the wait ends without the call, a slot taken for
    it is given back."""
    waiting = asyncio.ensure_future(agents.take_slot(slot))
    try:
        await asyncio.wait({waiting, cancelled}, return_when="FIRST_COMPLETED")
    except BaseException:  # the tick itself cancelled
        _give_back(agents, slot, waiting)
        raise
    if not cancelled.done():
        return
    _give_back(agents, slot, waiting)
    raise CancelRequested(cancelled.result(), "")


def _give_back(agents: AgentThreads, slot: AgentCall, waiting: asyncio.Future[None]) -> None:
    """Stop waiting for the slot, and free it if it was taken (now or as the wait ends):
    a callback, not an await, so no further cancel can skip it."""
    waiting.cancel()

    def release(done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is None:
            agents.release_unused(slot)

    waiting.add_done_callback(release)


async def _in_context(
    partial: Partial, fn: Callable[..., Any], arg: Any, time_limit: float | None
) -> Any:
    use_partial(partial)  # this task's own context: nothing else shares it
    return await within(fn(arg), time_limit)


async def _race(
    work: asyncio.Future[Any],
    cancelled: asyncio.Future[str],
    time_limit: float | None,
    partial: Partial,
    slot: AgentCall | None,
    agents: AgentThreads,
    what: str,
) -> Any:
    """`work`'s result, unless the cancel watcher or the time limit comes first. `slot` is
    the agent thread's call when `work` is one (its thread is abandoned, not cancelled)."""
    try:
        await asyncio.wait({work, cancelled}, timeout=time_limit, return_when="FIRST_COMPLETED")
    except asyncio.CancelledError:  # the tick itself (a stop whose grace ran out)
        await _stop(work, slot, agents, partial, what)
        raise
    if cancelled.done():
        # even a call that returned just now: the person asked to stop, its result is
        # not acted on
        await _stop(work, slot, agents, partial, what)
        raise CancelRequested(cancelled.result(), partial.markdown)
    if not work.done():  # only a thread's call is timed here; a task times itself
        assert time_limit is not None
        await _stop(work, slot, agents, partial, what)
        raise TimeLimitExceeded(time_limit)
    return work.result()


async def _stop(
    work: asyncio.Future[Any],
    slot: AgentCall | None,
    agents: AgentThreads,
    partial: Partial,
    what: str,
) -> None:
    if slot is not None:
        if not work.done():
            partial.parts.append(
                f"The {what} (a plain function) could not be stopped: its thread "
                "runs on until it returns, and whatever it returns is ignored."
            )
            agents.give_up(slot)
        work.cancel()  # its outcome, when the thread returns, goes nowhere
        return
    work.cancel()
    await asyncio.wait({work})  # its own cleanup first: a command's process group
    if not work.cancelled() and work.exception() is not None:
        log.debug("user code ended with an error as it was stopped")
