"""A tick's lease heartbeat and cancel watcher, started once when user code first runs.

The heartbeat renews the lease every third of its time, however long the agents run;
the watcher reads the task's cancel request every `cancel_check_seconds` (and at once
when told to: intake saw the board change). Both live until the tick ends, not per
agent call: a tick of many quick transitions starts them once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from factory.clock import Clock
from factory.store import repo
from factory.store.db import Database
from factory.store.leases import Lease, LeaseLost, renew
from factory.threads import run_io

log = logging.getLogger("nfactory.engine")


class Watchers:
    """The cancel watchers of one engine's running ticks, waiting for their next check."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Future[None]] = set()

    def check_now(self) -> None:
        """Have every watcher read its task's cancel request now."""
        for waiter in list(self._waiting):
            if not waiter.done():
                waiter.set_result(None)


class KeepAlive:
    def __init__(
        self,
        db: Database,
        lease: Lease,
        clock: Clock,
        *,
        lease_seconds: float,
        cancel_check_seconds: float,
        watchers: Watchers,
    ) -> None:
        self.db = db
        self.lease = lease  # renewed by the heartbeat
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.cancel_check_seconds = cancel_check_seconds
        self.watchers = watchers
        self._beater: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[str] | None = None
        self._lost: LeaseLost | None = None  # what the heartbeat found

    def start(self) -> asyncio.Task[str]:
        """Start both (once); the watcher: a task that ends, with who asked, once a cancel
        request is seen. A lease the heartbeat finds lost surfaces at `check_lease`."""
        if self._watcher is None:
            self._beater = asyncio.create_task(self._beat())
            self._watcher = asyncio.create_task(self._watch())
        return self._watcher

    def check_lease(self) -> None:
        if self._lost is not None:
            raise self._lost

    async def stop(self) -> None:
        for helper in (self._beater, self._watcher):
            if helper is not None:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
        self._beater = self._watcher = None

    async def _beat(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                self.lease = await run_io(
                    renew, self.db, self.lease, self.clock.now(), self.lease_seconds
                )
            except LeaseLost as exc:
                self._lost = exc
                return
            except Exception:  # a database hiccup: keep beating, the next one may pass
                log.warning("lease heartbeat failed for %s", self.lease.task_id, exc_info=True)

    async def _watch(self) -> str:
        # never less often than the lease is renewed
        every = min(self.cancel_check_seconds, self.lease_seconds / 3)
        loop = asyncio.get_running_loop()
        waiting = self.watchers._waiting
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            waiting.add(waiter)
            try:
                # asyncio.wait, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # lands as the waiter completes, and the heartbeat then waits on this forever
                await asyncio.wait({waiter}, timeout=every)
            finally:
                waiting.discard(waiter)
                waiter.cancel()
            try:
                by = await run_io(_cancel_request, self.db, self.lease.task_id)
            except Exception:  # a database hiccup: the next check may pass
                log.warning("cancel check failed for %s", self.lease.task_id, exc_info=True)
                continue
            if by is not None:
                return str(by)


def _cancel_request(db: Database, task_id: str) -> str | None:
    with db.connect() as conn:
        return repo.cancel_request(conn, task_id)
