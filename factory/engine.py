"""Runs ticks: claims a task, executes states, commits one transaction per transition.

Decisions come from `transitions`, effects from `effects`, SQL from `store` (a
transition's write from `store/steps`); user code is called by `user_code`, under the
lease that `keep_alive`'s heartbeat renews. This module only sequences them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from factory import user_code, worktrees
from factory.board_protocol import Reply
from factory.clock import Clock, SystemClock
from factory.dsl import Action, Factory, Feedback, Loop, Orchestrate, Terminal
from factory.effects import SummaryComment, note, plan_effects, run_started_effects
from factory.graph import card_diagram
from factory.keep_alive import KeepAlive, Watchers
from factory.progress import Progress
from factory.results import AgentInput, BadResult, parse_result
from factory.statuses import TERMINAL, RunStatus, TaskStatus
from factory.store import repo
from factory.store.db import Database, in_transaction
from factory.store.leases import Lease, LeaseHeld, LeaseLost, claim, holder, release
from factory.store.steps import StepWriter
from factory.threads import AgentThreads, run_io
from factory.transitions import (
    TRANSITION_CAP,
    Cancelled,
    Errored,
    GuardChecked,
    Outcome,
    Replied,
    Selected,
    Step,
    Succeeded,
    WorkspaceFailed,
    cap_reached,
    decide,
)
from factory.unknown import unknown_factory
from factory.user_code import CancelRequested, UserCodeFailed
from factory.workspaces import branch_name, cleanup_action

log = logging.getLogger("nfactory.engine")

TickOutcome = Literal[
    "finished",  # the run reached done/failed/blocked/cancelled
    "paused",  # waiting in feedback for a human
    "yielded",  # used its transition budget; the next tick resumes
    "backoff",  # waiting out a retry delay longer than a tick may sleep
    "idle",  # nothing to do (finished task, or not due yet)
    "busy",  # another worker holds the lease
    "lease_lost",  # taken over mid-tick; nothing more was written
    "held",  # its factory's module failed to load: left where it is, the card says why
]


@dataclass
class TickReport:
    task_id: str
    outcome: TickOutcome
    transitions: int = 0
    status: str = ""
    detail: str = ""
    steps: list[Step] = field(default_factory=list)
    took_over: bool = False  # this tick took the card from a worker whose lease expired


@dataclass(frozen=True)
class EngineConfig:
    worker_id: str
    lease_seconds: float = 30.0
    max_transitions_per_tick: int = 25
    max_inline_backoff_seconds: float = 10.0
    transition_cap: int = TRANSITION_CAP
    agent_threads: int = 5  # sync agent calls at once (runtime: concurrency + 1)
    # While user code runs, the task's cancel request is read this often (one primary-key
    # read; never less often than the lease is renewed), so a card moved to Cancelled, or
    # `nfactory task cancel`, reaches its agent in about this long after the request lands.
    cancel_check_seconds: float = 1.0
    # which finished cards get a summary comment (each one notifies people)
    summary_comment: SummaryComment = SummaryComment.problems
    # the factory's diagram on the card's page when a run starts (in the first log append)
    card_graph: bool = True


class Engine:
    def __init__(
        self,
        db: Database,
        factories: Mapping[str, Factory],
        config: EngineConfig,
        clock: Clock | None = None,
        unloaded: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.factories = factories
        self.config = config
        self.clock = clock or SystemClock()
        self.agents = AgentThreads(config.agent_threads)
        self.steps = StepWriter(db)  # the transition's write, its statements compiled once
        # the latest `inp.progress` line of each card whose agent runs here
        self.progress = Progress()
        # workflow module -> why it failed to load: an unknown factory id may be one of its
        self.unloaded: Mapping[str, str] = dict(unloaded or {})
        # tasks held for an unloaded factory; modules load once per process, so a held task
        # stays held until a restart and need not be claimed again
        self.held: set[str] = set()
        # cancel watchers of agents running now, waiting for their next check
        self.watchers = Watchers()
        # factory id -> its picture at the start state: the same for every run, drawn once
        self._diagrams: dict[str, str] = {}

    def start_diagram(self, factory: Factory) -> str:
        """The diagram a new run shows on its card (factory/graph.py), drawn once."""
        if factory.id not in self._diagrams:
            self._diagrams[factory.id] = card_diagram(factory, factory.start)
        return self._diagrams[factory.id]

    def check_cancels_now(self) -> None:
        """Have every running agent's cancel watcher read its request now, not at its next
        check (intake has just taken in the board's changes, cancels among them)."""
        self.watchers.check_now()

    async def tick(
        self, task_id: str, *, strict: bool = False, replies: Sequence[Reply] = ()
    ) -> TickReport:
        """Drive one task as far as one tick may. `replies` resume a task waiting in feedback."""
        lease = await run_io(
            claim,
            self.db,
            task_id,
            self.config.worker_id,
            self.clock.now(),
            self.config.lease_seconds,
        )
        if lease is None:
            held = await run_io(holder, self.db, task_id)
            if held is None:
                raise repo.NotFound(f"no task with id {task_id!r}")
            owner, until = held
            if strict:
                raise LeaseHeld(task_id, owner, until)
            return TickReport(task_id, "busy", detail=f"leased by {owner}")
        tick = _Tick(self, lease, repo.new_id())
        if lease.took_over:
            log.info("took over task %s from an expired lease", task_id)
        try:
            report = await tick.drive(list(replies))
        except LeaseLost as lost:
            log.warning("%s", lost)
            report = TickReport(
                task_id, "lease_lost", tick.count, detail=str(lost), steps=tick.steps
            )
        finally:
            await tick.keep.stop()  # no heartbeat may renew a lease given back
            await run_io(release, self.db, tick.lease)
        report.took_over = lease.took_over
        return report


class _Tick:
    """One tick of one task: the lease, the running count, and the steps taken."""

    def __init__(self, engine: Engine, lease: Lease, tick_id: str) -> None:
        self.engine = engine
        self.db = engine.db
        self.config = engine.config
        self.clock = engine.clock
        self.lease = lease
        self.tick_id = tick_id
        self.count = 0
        self.steps: list[Step] = []
        self.board_id = ""
        self.workspace: Path | None = None  # the run's worktree, once made or found this tick
        # the tick's heartbeat and cancel watcher, started when user code first runs
        self.keep = KeepAlive(
            engine.db,
            lease,
            engine.clock,
            lease_seconds=engine.config.lease_seconds,
            cancel_check_seconds=engine.config.cancel_check_seconds,
            watchers=engine.watchers,
        )

    def _report(self, outcome: TickOutcome, status: str, detail: str = "") -> TickReport:
        return TickReport(self.lease.task_id, outcome, self.count, status, detail, self.steps)

    async def drive(self, replies: list[Reply]) -> TickReport:
        task, run = await self._read(repo.task_and_run, self.lease.task_id)
        self.board_id = task.board_id
        factory = self.engine.factories.get(task.factory_id)
        if task.status in TERMINAL:
            return self._report("idle", task.status, "task is finished")
        if factory is None:
            verdict = unknown_factory(task.factory_id, self.engine.factories, self.engine.unloaded)
            if verdict.action == "hold":
                await self._hold(task, verdict.reason)
                return self._report("held", task.status, verdict.reason)
            await self._block_unknown_factory(task, verdict.reason)
            return self._report("finished", TaskStatus.blocked, verdict.reason)
        now = self.clock.now()
        if task.not_before is not None and task.not_before > now:
            return self._report("backoff", task.status, f"retry due at {task.not_before:%H:%M:%S}")
        if task.status == TaskStatus.queued:
            run, task = await self._write(self._start_run, task, factory)
        elif run is None:
            return self._report("idle", task.status, "no active run")
        pending = replies if run.status == RunStatus.feedback else []
        # the first commit clears a progress line an earlier tick may have left on the card;
        # later ones only when this tick published one
        clear_progress = True

        while self.count < self.config.max_transitions_per_tick:
            started = self.clock.now()
            consumed: list[str] = []
            # `task` is the row as the last commit left it (cancel request included),
            # returned by that commit's own update: no read between transitions
            step = cap_reached(run.view(), self.config.transition_cap)
            if step is None:
                state = factory.states[run.state_id]
                if task.cancel_requested:
                    outcome: Outcome = Cancelled(task.cancel_reason or "a person")
                elif isinstance(state, Feedback):
                    if not pending:
                        return self._report(
                            "paused", TaskStatus.feedback, f"waiting in {run.state_id!r}"
                        )
                    outcome = Replied(
                        "\n\n".join(r.text for r in pending), tuple(r.meta() for r in pending)
                    )
                    consumed = [r.comment_id for r in pending]
                    pending = []
                else:
                    problem = await self._prepare_workspace(factory, run, task)
                    try:
                        outcome = problem or await self._execute(factory, state, run, task)
                    except CancelRequested as stop:
                        outcome = Cancelled(stop.by, interrupted=True, partial=stop.partial)
                    finally:
                        # before the commit: no progress of this call lands after its log
                        if await self.engine.progress.finish(task.id):
                            clear_progress = True
                step = decide(factory, run.view(), outcome)
            run, task = await self._commit(run, step, started, consumed, clear_progress)
            clear_progress = False
            self.count += 1
            self.steps.append(step)
            if step.ends_run:
                await self._finish_workspace(factory, run.id, step.run_status)
                return self._report("finished", step.run_status)
            if step.pauses:
                return self._report("paused", TaskStatus.feedback, f"waiting in {step.to_state!r}")
            if step.retry_delay_ms is not None:
                delay = step.retry_delay_ms / 1000
                if delay > self.config.max_inline_backoff_seconds:
                    return self._report("backoff", TaskStatus.running, f"retry in {delay:.1f}s")
                # a cancel request ends the wait early. The task is read again either way:
                # the watcher polls, so a cancel late in (or shorter than) its interval is
                # seen only here, and the next attempt must not start on a cancelled card
                await _first(self.clock.sleep(delay), self.keep.start())
                task = await self._read(repo.get_task, self.lease.task_id)
                self.keep.check_lease()
        return self._report("yielded", run.status, "transition budget for this tick used")

    # -- executing states (user code) ------------------------------------------------

    async def _execute(
        self, factory: Factory, state: Any, run: repo.RunRow, task: repo.TaskRow
    ) -> Outcome:
        sid = run.state_id
        match state:
            case Action(agent=agent, timeout=timeout):
                return await self._agent(agent, timeout, run, task)
            case Orchestrate(select=select, agent=agent, timeout=timeout):
                if agent is not None:
                    return await self._agent(agent, timeout, run, task)
                try:
                    event = await self._call(select, self._input(run, task), timeout, sid, "select")
                except UserCodeFailed as failed:
                    return Errored(str(failed))
                if not isinstance(event, str) or not event:
                    return Errored(
                        f"state {sid!r}: select must return an event name, got {event!r}"
                    )
                return Selected(event)
            case Loop(until=until):
                if until is None:
                    return GuardChecked(False)
                guard = factory.guard(until)
                try:
                    satisfied = await self._call(guard, dict(run.ctx), None, sid, "guard")
                except UserCodeFailed as failed:
                    return Errored(str(failed))
                return GuardChecked(bool(satisfied))
            case Terminal():
                return Errored(f"state {sid!r} is terminal but the run is still active")
        raise AssertionError(f"cannot execute {type(state).__name__}")

    async def _agent(
        self,
        agent: Callable[..., Any],
        time_limit: float | None,
        run: repo.RunRow,
        task: repo.TaskRow,
    ) -> Outcome:
        try:
            raw = await self._call(agent, self._input(run, task), time_limit, run.state_id, "agent")
            return Succeeded(parse_result(raw, run.state_id))
        except (UserCodeFailed, BadResult) as failed:
            return Errored(str(failed))

    async def _call(
        self, fn: Callable[..., Any], arg: Any, time_limit: float | None, state_id: str, what: str
    ) -> Any:
        """Run user code under the tick's heartbeat, stopped by a cancel request."""
        result = await user_code.call(
            self.engine.agents,
            fn,
            arg,
            time_limit=time_limit,
            state_id=state_id,
            what=what,
            label=f"{what} in state {state_id!r} of task {self.lease.task_id[:8]}",
            cancelled=self.keep.start(),
        )
        self.keep.check_lease()
        return result

    def _input(self, run: repo.RunRow, task: repo.TaskRow) -> AgentInput:
        return AgentInput(
            task_id=task.id,
            title=task.title,
            prompt=task.prompt,
            context=task.context,
            ctx=dict(run.ctx),
            state_id=run.state_id,
            run_id=run.id,
            tick_id=self.tick_id,
            attempt=run.attempt + 1,
            workspace=self.workspace,
            progress=self.engine.progress.start(task.id, run.id, run.state_id, task.title),
        )

    # -- persistence ------------------------------------------------------------------

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        def work() -> Any:
            with self.db.connect() as conn:
                return fn(conn, *args)

        return await run_io(work)

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        # once more on a fresh connection if the pooled one was found dead: the writes are
        # fenced (lease epoch, the run's transition count), so a replay cannot double one
        return await run_io(in_transaction, self.db, fn, *args)

    def _start_run(
        self, conn: Any, task: repo.TaskRow, factory: Factory
    ) -> tuple[repo.RunRow, repo.TaskRow]:
        now = self.clock.now()
        run = repo.start_run(
            conn, self.lease, task, factory.start, factory.context, now, self.config.lease_seconds
        )
        diagram = self.engine.start_diagram(factory) if self.config.card_graph else None
        effects = run_started_effects(factory.id, factory.start, now, diagram)
        repo.add_effects(conn, task.id, task.board_id, run.id, 0, effects, now)
        if factory.workspace is not None:
            repo.name_workspace(conn, run.id, branch_name(task.title, run.id))
            run = repo.get_run(conn, run.id)
        return run, repo.get_task(conn, task.id)

    async def _commit(
        self,
        run: repo.RunRow,
        step: Step,
        started: datetime,
        consumed: list[str],
        clear_progress: bool,
    ) -> tuple[repo.RunRow, repo.TaskRow]:
        """Commit the step: here on the loop when that cannot block (store/steps.py),
        else on a thread."""
        now = self.clock.now()
        steps = self.engine.steps
        planned = steps.plan(
            self.lease,
            self.board_id,
            run,
            step,
            plan_effects(step, now, run.transitions + 1, self.config.summary_comment),
            started_at=started,
            now=now,
            ttl=self.config.lease_seconds,
            not_before=repo.backoff_until(now, step.retry_delay_ms),
            consumed=consumed,
            # the step's own log says the rest of what the progress line said
            clear_progress=clear_progress,
        )
        committed = steps.commit_here(planned)
        if committed is None:
            committed = await run_io(steps.commit, planned)
        return committed

    # -- the run's git worktree ------------------------------------------------------------

    async def _prepare_workspace(
        self, factory: Factory, run: repo.RunRow, task: repo.TaskRow
    ) -> WorkspaceFailed | None:
        """Make, find or bring back the run's worktree before its first agent this tick."""
        spec = factory.workspace
        if spec is None or self.workspace is not None:
            return None
        current: repo.RunRow = await self._read(repo.get_run, run.id)
        branch = current.workspace_branch or branch_name(task.title, run.id)
        try:
            # a first clone of a URL or a large checkout may outlast the lease: keep it alive
            self.keep.start()
            made = await run_io(worktrees.ensure, spec, branch, current.workspace_state, Path.cwd())
            self.keep.check_lease()
        except worktrees.WorkspaceError as exc:
            log.warning("task %s: workspace problem: %s", task.id, exc)
            return WorkspaceFailed(f"workspace: {exc}")
        moved = current.workspace_path != str(made.path)
        if made.how != "reused" or current.workspace_state != "ready" or moved:
            if made.how == "created":
                how = f"new from {spec.base} at {made.base[:10]}"
            else:
                how = "brought back from its branch" if made.how == "reattached" else "found"
            line = f"workspace {_code(str(made.path))} on branch {_code(branch)} ({how})"
            await self._record_workspace(current, str(made.path), "ready", line)
        self.workspace = made.path
        return None

    async def _finish_workspace(self, factory: Factory, run_id: str, status: RunStatus) -> None:
        """At the run's end: remove its worktree or keep it, as the policy and its changes say.

        Never raises: the run has ended whatever becomes of its folder, and
        `nfactory workspaces prune` can finish the job later.
        """
        spec = factory.workspace
        if spec is None:
            return
        try:
            run: repo.RunRow = await self._read(repo.get_run, run_id)
            if run.workspace_state != "ready" or not run.workspace_path:
                return  # never made (blocked first), or already dealt with
            path = Path(run.workspace_path)
            if worktrees.path_state(path) != "worktree":
                return
            branch = _code(run.workspace_branch or "")
            dirty = await run_io(worktrees.is_dirty, path)
            action = cleanup_action(spec.cleanup, status, dirty)
            where = _code(str(path))
            if action == "remove":
                try:
                    await run_io(worktrees.remove, path)
                    state = "removed"
                    line = f"workspace removed; branch {branch} keeps its commits"
                except worktrees.WorkspaceError as exc:
                    state, line = "kept", f"workspace kept at {where}: removing it failed: {exc}"
            elif action == "keep_dirty":
                state = "kept"
                line = (
                    f"workspace kept at {where} (branch {branch}): it has uncommitted changes; "
                    "`nfactory workspaces prune --force` removes it"
                )
            else:
                state = "kept"
                line = f"workspace kept at {where} (branch {branch}, cleanup={spec.cleanup})"
            await self._record_workspace(run, str(path), state, line)
        except LeaseLost:
            log.warning("task %s: lease lost while cleaning up its workspace", self.lease.task_id)
        except Exception:
            log.warning("task %s: workspace cleanup failed", self.lease.task_id, exc_info=True)

    async def _record_workspace(self, run: repo.RunRow, path: str, state: str, line: str) -> None:
        def work(conn: Any) -> None:
            now = self.clock.now()
            effect = note(line, now)
            repo.record_workspace(
                conn,
                self.lease,
                run,
                self.board_id,
                path,
                state,
                [effect],
                now,
                self.config.lease_seconds,
            )

        await self._write(work)

    async def _hold(self, task: repo.TaskRow, reason: str) -> None:
        self.engine.held.add(task.id)
        if task.last_error == reason:
            return  # the card already says so (an earlier tick, or another worker)

        def work(conn: Any) -> None:
            now = self.clock.now()
            repo.hold_task(conn, self.lease, task, reason, now, self.config.lease_seconds)

        await self._write(work)

    async def _block_unknown_factory(self, task: repo.TaskRow, error: str) -> None:
        def work(conn: Any) -> None:
            now = self.clock.now()
            repo.block_task(conn, self.lease, task, error, now, self.config.lease_seconds)

        await self._write(work)


def _code(text: str) -> str:
    """`text` as inline code on the card; a backtick in it would end the span early."""
    return "`" + text.replace("`", "'") + "`"


async def _first(aw: Awaitable[Any], cancelled: asyncio.Task[str]) -> None:
    """Await `aw` unless the cancel watcher fires first (then `aw` is abandoned)."""
    work = asyncio.ensure_future(aw)
    try:
        await asyncio.wait({work, cancelled}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
