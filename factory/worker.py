"""The long-lived worker behind `nfactory start`: APScheduler jobs over one board.

Jobs (each max_instances=1 and coalesced, so a slow run never stacks up):
- intake: poll the board for new and changed cards;
- dispatch: start ticks for due cards, at most `concurrency` at once, oldest
  first, so a card that yields goes to the back of the line;
- feedback: look for human replies on cards waiting in feedback, following the
  reply schedule when one is configured (factory/reply_schedule.py);
- deliver: drain the outbox to the board;
- progress: show running agents' latest progress lines on their cards, at most
  one write per card per `progress_seconds`, and only on spare rate budget.

Ticks run as their own asyncio tasks, not inside the dispatch job, so a long
agent never delays polling, delivery or other cards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from factory.board_protocol import Board, ShowsProgress
from factory.cycle import resume_answered
from factory.engine import Engine, TickReport
from factory.outbox import DrainReport, drain
from factory.reply_schedule import ReplySchedule, budget_for
from factory.store import repo
from factory.threads import run_io

log = logging.getLogger("nfactory.worker")


@dataclass(frozen=True)
class WorkerConfig:
    poll_seconds: float = 10.0
    concurrency: int = 4
    deliver_seconds: float = 1.0
    dispatch_seconds: float = 1.0
    shutdown_grace_seconds: float = 30.0
    progress_seconds: float = 15.0  # per card, at most one progress write this often
    progress_check_seconds: float = 1.0  # how often the progress job looks for due lines
    # which waiting cards to look at for replies, and how many per pass; None: all, every
    # poll (the local board, where a look costs nothing)
    replies: ReplySchedule | None = None


@dataclass
class WorkerStats:
    """What the live view and /metrics show."""

    started_at: float = field(default_factory=time.monotonic)
    ticks: int = 0
    transitions: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    delivery_failures: int = 0
    lease_takeovers: int = 0
    leases_lost: int = 0
    polls: int = 0
    last_errors: list[str] = field(default_factory=list)
    running: dict[str, float] = field(default_factory=dict)  # task -> monotonic start of its tick

    def error(self, message: str) -> None:
        self.last_errors = [*self.last_errors[-9:], f"{datetime.now(UTC):%H:%M:%S} {message}"]


# Jobs that read their hints: feedback looks at the named cards first. Intake takes
# in every edit since its watermark, so a page id noted for it would be noted for nothing.
HINTED_JOBS = frozenset({"feedback"})
MAX_HINTS = 10_000  # one webhook burst's worth: a set this large is a flood, not news


class Worker:
    def __init__(
        self,
        engine: Engine,
        board: Board,
        config: WorkerConfig,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.board = board
        self.config = config
        self.stats = WorkerStats()
        self.on_change = on_change or (lambda: None)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.hints: dict[str, set[str]] = {}
        self.inflight: dict[str, asyncio.Task[TickReport]] = {}
        self.jobs: set[asyncio.Task[object]] = set()
        self.running_jobs: set[str] = set()
        self.woken: set[str] = set()  # woken while running: run again once it ends
        self._feedback_started: float | None = None  # monotonic start of the last reply pass
        self.accepting = True
        self.abandoned = 0  # ticks cancelled at stop because the grace ran out
        self.stopped = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        now = datetime.now(UTC)
        jobs: list[tuple[str, Callable[[], object], float]] = [
            ("intake", self.intake, self.config.poll_seconds),
            ("feedback", self.feedback, self._feedback_seconds()),
            ("dispatch", self.dispatch, self.config.dispatch_seconds),
            ("deliver", self.deliver, self.config.deliver_seconds),
        ]
        if isinstance(self.board, ShowsProgress):
            # looked at often: a line is due once its card's interval has passed
            every = min(self.config.progress_check_seconds, self.config.progress_seconds)
            jobs.append(("progress", self.publish_progress, every))
        for job_id, fn, seconds in jobs:
            self.scheduler.add_job(
                self._tracked(job_id, fn),
                "interval",
                seconds=seconds,
                id=job_id,
                max_instances=1,
                coalesce=True,
                next_run_time=now,
                misfire_grace_time=None,
            )
        self.scheduler.start()

    def _feedback_seconds(self) -> float:
        replies = self.config.replies
        return self.config.poll_seconds if replies is None else replies.every

    def _tracked(
        self, job_id: str, fn: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[None]]:
        """Remember running job coroutines, so stop() can let them end instead of killing them."""

        async def job() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.jobs.add(task)
            self.running_jobs.add(job_id)
            try:
                await fn()
                while job_id in self.woken and self.accepting:  # woken meanwhile: again
                    self.woken.discard(job_id)
                    await fn()
            finally:
                self.running_jobs.discard(job_id)
                self.woken.discard(job_id)
                if task is not None:
                    self.jobs.discard(task)

        job.__name__ = getattr(fn, "__name__", "job")
        return job

    def hint(self, job_id: str, object_id: str) -> None:
        """Note which card an event was about, so the woken job looks there first.

        Kept only for a job that takes its hints out (see HINTED_JOBS): any other key
        would only ever grow. Past MAX_HINTS a hint is dropped: it only orders a look
        the reply schedule makes anyway.
        """
        if job_id not in HINTED_JOBS:
            return
        hinted = self.hints.setdefault(job_id, set())
        if len(hinted) < MAX_HINTS:
            hinted.add(object_id.replace("-", ""))

    def wake(self, job_id: str) -> None:
        """Run a job now (a webhook said something changed); polling still reconciles.

        A job woken while it runs makes another pass as soon as this one ends: the
        running pass may be past the card that changed, and max_instances=1 would
        drop the wake until the next interval.
        """
        if job_id in self.running_jobs:
            self.woken.add(job_id)
            return
        job = self.scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    async def stop(self, grace: float | None = None) -> None:
        """No new claims; running ticks get `grace` seconds; then flush the outbox."""
        grace = self.config.shutdown_grace_seconds if grace is None else grace
        self.accepting = False
        # pause, not shutdown, first: the asyncio executor's shutdown cancels running jobs,
        # and a delivery cancelled mid-card leaves its effects in doubt, unflushed
        self.scheduler.pause()
        if self.jobs:  # a poll or delivery in flight: let it finish (it may wait on the limit)
            _done, stuck = await asyncio.wait(set(self.jobs), timeout=max(grace, 5))
            for task in stuck:
                task.cancel()
        self.scheduler.shutdown(wait=False)
        pending = list(self.inflight.values())
        if pending:
            log.info("waiting up to %.0fs for %d running card(s)", grace, len(pending))
            _done, late = await asyncio.wait(pending, timeout=grace)
            self.abandoned = len(late)  # their agent calls may still run in threads
            for task in late:
                task.cancel()  # the tick's finally releases its lease; nothing half-written
            if late:
                await asyncio.wait(late, timeout=5)
        await self.deliver()
        self.stopped.set()

    # -- jobs ------------------------------------------------------------------------

    async def intake(self) -> None:
        if not self.accepting:
            return
        try:
            report = await self.board.poll(
                self.engine.factories, self.engine.clock.now(), self.engine.unloaded
            )
            self.stats.polls += 1
            if report is not None:
                for card in report.edited:  # a reply may have come with the edit
                    self.hint("feedback", card)
        except Exception as exc:
            self._failed("intake", exc)
        # a card moved to Cancelled is now a cancel request in the database: the agents
        # running here look at once rather than at their next check
        self.engine.check_cancels_now()
        await self.dispatch()

    async def feedback(self) -> None:
        if not self.accepting:
            return
        hints, self.hints["feedback"] = self.hints.get("feedback", set()), set()
        schedule = self.config.replies
        started = time.monotonic()
        if schedule is not None and self._feedback_started is not None:
            # woken early by a webhook: this pass gets the time since the last one
            budget = budget_for(schedule, started - self._feedback_started)
            schedule = replace(schedule, budget=budget)
        self._feedback_started = started
        try:
            done = await resume_answered(self.engine, self.board, hints, schedule)
        except Exception as exc:
            for card in hints:  # not looked at: keep
                self.hint("feedback", card)
            self._failed("feedback", exc)
            return
        for card in done.unreached:
            self.hint("feedback", card)
        for report in done.ticks:
            self._count(report)

    async def dispatch(self) -> None:
        # an agent call that overran its timeout still runs in its thread: its slot stays
        # taken until it returns, or new cards would queue behind it for a thread
        room = self.config.concurrency - self.engine.agents.overrunning
        free = room - len(self.inflight)
        if not self.accepting or free <= 0:
            return
        try:
            # a copy taken here: ticks on this loop add to `held` while the thread reads it
            held = frozenset(self.engine.held)
            due = await run_io(self._due, free + len(self.inflight), held)
        except Exception as exc:
            self._failed("dispatch", exc)
            return
        for task_id in due:
            if len(self.inflight) >= room:
                break
            # held meanwhile: a tick that ended while `_due` ran held it after the copy
            if task_id in self.inflight or task_id in self.engine.held:
                continue
            self.inflight[task_id] = asyncio.create_task(self._tick(task_id))

    def _due(self, limit: int, held: frozenset[str]) -> list[str]:
        with self.engine.db.connect() as conn:
            return repo.runnable_task_ids(
                conn, self.board.id, self.engine.clock.now(), limit, exclude=held
            )

    async def _tick(self, task_id: str) -> TickReport:
        self.stats.running[task_id] = time.monotonic()
        self.on_change()
        try:
            report = await self.engine.tick(task_id)
            self._count(report)
            if report.transitions or report.outcome not in ("idle", "busy"):
                log.info(
                    "card %s: %s after %d transition(s), now %s",
                    task_id[:8],
                    report.outcome,
                    report.transitions,
                    report.status,
                )
            return report
        except Exception as exc:
            self._failed(f"tick {task_id[:8]}", exc)
            raise
        finally:
            self.inflight.pop(task_id, None)
            self.stats.running.pop(task_id, None)
            self.on_change()
            if self.accepting:
                # a finished tick frees a slot: fill it now rather than at the next interval
                asyncio.get_running_loop().call_soon(self.wake, "dispatch")
                asyncio.get_running_loop().call_soon(self.wake, "deliver")

    async def deliver(self) -> DrainReport:
        try:
            report = await drain(
                self.engine.db, self.board, self.engine.clock.now(), clock=self.engine.clock.now
            )
        except Exception as exc:
            self._failed("deliver", exc)
            return DrainReport()
        self.stats.delivered += report.delivered
        self.stats.delivery_failures += report.failed
        if report.delivered or report.failed:
            self.on_change()
        return report

    async def publish_progress(self) -> int:
        """Show each running agent's changed line on its card; the number of writes."""
        if not isinstance(self.board, ShowsProgress):
            return 0
        progress = self.engine.progress
        writes = 0
        for update in progress.due(self.config.progress_seconds):
            try:
                async with progress.publishing(update) as sent:
                    try:
                        wrote = await self.board.show_progress(update)
                    except Exception as exc:
                        # it may have sent something: the card waits its interval anyway
                        wrote = True
                        self._failed(f"progress {update.task_id[:8]}", exc)
                    if wrote:
                        sent()
                        writes += 1
            except LookupError:
                continue  # its agent ended meanwhile: its step's log says the rest
        if writes:
            self.on_change()
        return writes

    # -- bookkeeping -----------------------------------------------------------------

    def _count(self, report: TickReport) -> None:
        self.stats.ticks += 1
        self.stats.transitions += report.transitions
        self.stats.outcomes[report.outcome] = self.stats.outcomes.get(report.outcome, 0) + 1
        if report.took_over:
            self.stats.lease_takeovers += 1
        if report.outcome == "lease_lost":
            self.stats.leases_lost += 1

    def _failed(self, where: str, exc: BaseException) -> None:
        log.warning("%s failed: %s", where, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        self.stats.error(f"{where}: {exc}")


def quiet_chatty_loggers() -> None:
    """Every job run and request at INFO, and every coalesced (skipped) run, is noise."""
    for name in ("httpx", "uvicorn.access", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # a skipped run means the previous one is still going, which is the design
    logging.getLogger("apscheduler.executors.default").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
