"""One integration's rate budget, shared by every worker through the database.

Notion limits the integration (about 3 requests/s), not a process. Workers that
share a database keep one token bucket per integration there (a `rate_budget`
row), take tokens from it in small grants (as many as callers are queued here,
at most `MAX_GRANT`), spend them locally, and give back what is still unspent
after `HOLD` seconds, so an idle worker holds nothing and a busy one can use the
whole rate. A 429 seen by one worker pauses the row, so every worker waits.

The row is keyed by the integration's bot user id: it names the integration
without being derived from its token (which never reaches the database). A
process learns it from its first requests (`GET /v1/users/me`); until then it
takes from the database-wide `UNBOUND` row, shared by every worker still
starting, and charges those tokens to its integration's row once bound (`bind`).

The database is never waited on holding a thread lock or on the event loop; if
it fails or stalls, the worker falls back to a bucket of its own at a quarter of
the rate (logged once) and retries the database after `RETRY_DATABASE` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable

from factory.store.budget import BudgetRow, change_budget
from factory.store.db import Database
from factory.threads import run_io
from integrations.notion.budget_rows import (
    UNBOUND,
    budget_key,
    give_back_change,
    grant_change,
    pause_change,
)
from integrations.notion.ratelimit import (
    BucketState,
    RateBudget,
    TokenBucket,
    refill,
    token_key,
    wait_needed,
)

log = logging.getLogger("nfactory.notion")

MAX_GRANT = 3
HOLD = 1.5  # seconds a granted token may wait here before it goes back to the row
DATABASE_TIMEOUT = 5.0
RETRY_DATABASE = 30.0
FALLBACK_SHARE = 0.25  # of the rate, for a worker cut off from the shared row
MAX_NAP = 1.0  # never sleep longer on one answer: another worker may give tokens back
RECHECK = 0.05  # try_take's wait when only the database can tell


# -- the shell ---------------------------------------------------------------------------


class SharedBudget:
    """TokenBucket's interface over the database row every worker of the integration shares."""

    def __init__(
        self,
        db: Database,
        rate: float,
        burst: int,
        *,
        key: str = UNBOUND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate budget needs rate > 0 and burst >= 1")
        self.db = db
        self.rate = float(rate)
        self.burst = float(burst)
        self.key = key
        self.clock = clock
        self.sleep = sleep
        # Local state, changed under a thread lock that is never held across I/O.
        self._state_lock = threading.Lock()
        self._held = 0  # granted here, not yet spent
        self._held_until = -math.inf  # local clock: when the held tokens go back
        self._paused_until = -math.inf  # local clock
        self._row: BucketState | None = None  # the row as last seen, on the local clock
        self._debt = 0  # tokens taken from UNBOUND that the bound row must pay for
        self._taken_unbound = 0
        self._queued = 0  # callers inside acquire()
        self._fallback: TokenBucket | None = None
        self._fallback_until = -math.inf
        self._background: set[asyncio.Task[None]] = set()
        self._prefetching = False
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"SharedBudget(key={self.key!r}, rate={self.rate:g}, burst={self.burst:g})"

    @property
    def paused_until(self) -> float:
        fallback = self._fallback.paused_until if self._fallback is not None else -math.inf
        return max(self._paused_until, fallback)

    def bind(self, key: str) -> None:
        """From now on take from `key`'s row, which also pays for what UNBOUND gave us."""
        with self._state_lock:
            if self.key == key:
                return
            if self.key == UNBOUND:
                self._debt += self._taken_unbound
            self.key = key
            self._row = None

    # -- spending -------------------------------------------------------------------------

    def _take_held(self, now: float) -> float | None:
        """0.0 after spending a held token, the pause left, or None: ask the row."""
        with self._state_lock:
            if now < self._paused_until:
                return self._paused_until - now
            if self._held >= 1 and now < self._held_until:
                self._held -= 1
                return 0.0
        return None

    def try_take(self) -> float:
        """Spend a held token now: 0.0, else the seconds to wait (a grant is asked for)."""
        fallback = self._active_fallback()
        if fallback is not None:
            return fallback.try_take()
        now = self.clock()
        wait = self._take_held(now)
        if wait is not None:
            return wait
        self._prefetch(0.0)
        with self._state_lock:
            row = self._row
        if row is None:
            return RECHECK
        return max(RECHECK, wait_needed(refill(row, now, self.rate, self.burst), self.rate))

    def try_spare(self, reserve: float = 1.0) -> bool:
        """Spend a held token only if `reserve` more remain (here and in the row, as last
        seen) and nobody here is waiting for one; else ask the row for a spare one."""
        lock = self._locks.get(asyncio.get_running_loop())
        if lock is not None and lock.locked():
            return False  # a caller is queued for a token: it goes first
        fallback = self._active_fallback()
        if fallback is not None:
            return fallback.try_spare(reserve)
        now = self.clock()
        with self._state_lock:
            if now < self._paused_until:
                return False
            level = (
                0.0 if self._row is None else refill(self._row, now, self.rate, self.burst).tokens
            )
            if self._held >= 1 and now < self._held_until and self._held - 1 + level >= reserve:
                self._held -= 1
                return True
        self._prefetch(reserve)
        return False

    async def acquire(self) -> None:
        """Wait for and spend one token."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        with self._state_lock:
            self._queued += 1
        try:
            async with lock:
                while True:
                    fallback = self._active_fallback()
                    if fallback is not None:
                        await fallback.acquire()
                        return
                    wait = self._take_held(self.clock())
                    if wait == 0:
                        return
                    if wait is None:
                        wait = await self._ask(min(MAX_GRANT, max(1, self._queued)), 0.0)
                        if wait <= 0:
                            continue  # granted (or fallen back): spend it on the next turn
                    await self.sleep(min(wait, MAX_NAP))
        finally:
            with self._state_lock:
                self._queued -= 1

    # -- pausing --------------------------------------------------------------------------

    def pause_until(self, t: float) -> None:
        """Notion said slow down: no worker of this integration sends before clock time `t`."""
        now = self.clock()
        with self._state_lock:
            self._paused_until = max(self._paused_until, t)
            self._held = 0  # too fast already: what is held here is not spent
        if self._fallback is not None:
            self._fallback.pause_until(t)
        if t > now:
            self._in_background(self._write, pause_change(t - now, self.rate, self.burst))

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self.clock() + max(0.0, seconds))

    # -- the database ---------------------------------------------------------------------

    async def _ask(self, want: int, reserve: float) -> float:
        """Ask the row for up to `want` tokens: 0.0 if granted (or fallen back), else the wait."""
        with self._state_lock:
            key, charge, self._debt = self.key, self._debt, 0
        change = grant_change(want, reserve, charge, self.rate, self.burst)
        try:
            answer = await asyncio.wait_for(
                run_io(change_budget, self.db, key, self.burst, change), DATABASE_TIMEOUT
            )
        except Exception as exc:  # the database is the shared budget's only dependency
            with self._state_lock:
                self._debt += charge
            self._fall_back(exc)
            return 0.0
        now = self.clock()
        with self._state_lock:
            if self._fallback is not None:
                log.info("the shared Notion rate budget is reachable again")
                self._fallback, self._fallback_until = None, -math.inf
            self._row = BucketState(answer.tokens, now + answer.paused_for)
            if answer.paused_for > 0:
                self._paused_until = max(self._paused_until, now + answer.paused_for)
            if answer.granted:
                self._held += answer.granted
                self._held_until = now + HOLD
                if key == UNBOUND:
                    self._taken_unbound += answer.granted
        if answer.granted:
            self._in_background(self._return_unspent, None)
            return 0.0
        return answer.wait

    async def _return_unspent(self, _: None) -> None:
        """After HOLD, give back what this grant left unspent (so an idle worker holds nothing)."""
        await self.sleep(HOLD)
        with self._state_lock:
            if self._held == 0 or self.clock() < self._held_until:
                return  # spent, or a later grant renewed the hold and will return it
            unused, self._held, key = self._held, 0, self.key
            if key == UNBOUND:
                self._taken_unbound -= unused  # back where they came from: not owed
        await self._write_to(key, give_back_change(unused, self.rate, self.burst))

    async def _write(self, change: Callable[[BudgetRow, float], tuple[BudgetRow, None]]) -> None:
        await self._write_to(self.key, change)

    async def _write_to(
        self, key: str, change: Callable[[BudgetRow, float], tuple[BudgetRow, None]]
    ) -> None:
        # Off the request path: a failure only loses a give-back or a pause's broadcast
        # (this worker keeps its own pause), and sends this worker to its fallback.
        try:
            await asyncio.wait_for(
                run_io(change_budget, self.db, key, self.burst, change), DATABASE_TIMEOUT
            )
        except Exception as exc:
            self._fall_back(exc)

    def _prefetch(self, reserve: float) -> None:
        """Ask for one token in the background, so the next try_take or try_spare finds it."""
        with self._state_lock:
            if self._prefetching:
                return
            self._prefetching = True

        async def fetch(_: None) -> None:
            try:
                await self._ask(1, reserve)
            finally:
                self._prefetching = False

        self._in_background(fetch, None)

    def _in_background(self, job: Callable[[object], Awaitable[None]], arg: object) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside any loop (a script, a test): do it now
            asyncio.run(job(arg))
            return
        task = loop.create_task(job(arg))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the fallback ---------------------------------------------------------------------

    def _active_fallback(self) -> TokenBucket | None:
        with self._state_lock:
            if self._fallback is not None and self.clock() >= self._fallback_until:
                return None  # time to try the database again
            return self._fallback

    def _fall_back(self, exc: BaseException) -> None:
        with self._state_lock:
            first = self._fallback is None
            if first:
                self._fallback = TokenBucket(self.rate * FALLBACK_SHARE, 1, self.clock, self.sleep)
                if self._paused_until > self.clock():
                    self._fallback.pause_until(self._paused_until)
            self._fallback_until = self.clock() + RETRY_DATABASE
        if first:
            # The class only: a driver's message may quote the connection's parameters.
            log.warning(
                "the shared Notion rate budget in the database failed (%s): this worker "
                "sends at most %g requests/s on its own until it is back",
                type(exc).__name__,
                self.rate * FALLBACK_SHARE,
            )


def bind_to_bot(budget: RateBudget, bot_id: str) -> None:
    """Tell a shared budget which integration it spends for (a process bucket needs not)."""
    if isinstance(budget, SharedBudget):
        budget.bind(budget_key(bot_id))


_BUDGETS: dict[tuple[str, str], SharedBudget] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_budget(token: str, db: Database, rate: float, burst: int) -> SharedBudget:
    """The one shared budget for `token` on this database in this process."""
    key = (token_key(token), db.url.render_as_string(hide_password=True))
    with _REGISTRY_LOCK:
        budget = _BUDGETS.get(key)
        if budget is None:
            budget = _BUDGETS[key] = SharedBudget(db, rate, burst)
        return budget


def clear_shared_budgets() -> None:
    with _REGISTRY_LOCK:
        _BUDGETS.clear()
