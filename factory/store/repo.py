"""Repository functions: tasks, runs, transitions, workspaces and cancel requests."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from factory.effects import Effect, StateEffect, blocked_effects, state_effect
from factory.statuses import ACTIVE, OutboxStatus, RunStatus, TaskStatus
from factory.store.db import Database
from factory.store.leases import Lease, guard
from factory.store.tables import boards, consumed_comments, outbox, runs, tasks, transitions
from factory.transitions import RunView

LOCAL_BOARD = "local"


class NotFound(LookupError):
    """No such task or run."""


@dataclass(frozen=True)
class TaskRow:
    id: str
    board_id: str
    external_id: str | None
    factory_id: str
    title: str
    prompt: str
    context: str
    status: TaskStatus
    step: str | None
    last_error: str | None
    active_run_id: str | None
    cancel_requested: bool
    not_before: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    lease_epoch: int
    created_at: datetime
    updated_at: datetime
    cancel_reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TaskStatus(self.status))  # the row's plain string


@dataclass(frozen=True)
class RunRow:
    id: str
    task_id: str
    factory_id: str
    status: RunStatus
    active: bool
    state_id: str
    previous_state_id: str | None
    ctx: dict[str, Any]
    attempt: int
    iterations: dict[str, int]
    transitions: int
    last_error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    workspace_path: str | None = None
    workspace_branch: str | None = None
    workspace_state: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))  # the row's plain string

    def view(self) -> RunView:
        return RunView(
            state_id=self.state_id,
            previous_state_id=self.previous_state_id,
            ctx=self.ctx,
            attempt=self.attempt,
            iterations=self.iterations,
            transitions=self.transitions,
        )


def new_id() -> str:
    return str(uuid.uuid4())


def register_board(
    db: Database,
    board_id: str,
    kind: str,
    now: datetime,
    title: str = "",
    external_id: str | None = None,
) -> None:
    """`ensure_board` in a transaction of its own."""
    with db.begin() as conn:
        ensure_board(conn, board_id, kind, now, title=title, external_id=external_id)


def ensure_board(
    conn: Connection,
    board_id: str,
    kind: str,
    now: datetime,
    title: str = "",
    external_id: str | None = None,
) -> None:
    exists = conn.execute(select(boards.c.id).where(boards.c.id == board_id)).first()
    if exists is None:
        # workers starting together on one database may both get here: first one wins
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            dialect_insert(boards)
            .values(
                id=board_id,
                kind=kind,
                title=title,
                external_id=external_id,
                created_at=now,
                watermark_seen=[],
            )
            .on_conflict_do_nothing(index_elements=[boards.c.id])
        )


def create_task(
    conn: Connection,
    *,
    factory_id: str,
    title: str,
    now: datetime,
    prompt: str = "",
    context: str = "",
    board_id: str = LOCAL_BOARD,
    external_id: str | None = None,
) -> str:
    if board_id == LOCAL_BOARD:
        ensure_board(conn, LOCAL_BOARD, "local", now, title="Local board")
    task_id = new_id()
    conn.execute(
        insert(tasks).values(
            id=task_id,
            board_id=board_id,
            external_id=external_id,
            factory_id=factory_id,
            title=title,
            prompt=prompt,
            context=context,
            status=TaskStatus.queued,
            cancel_requested=False,
            lease_epoch=0,
            created_at=now,
            updated_at=now,
        )
    )
    return task_id


def get_task(conn: Connection, task_id: str) -> TaskRow:
    row = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no task with id {task_id!r}")
    return TaskRow(**row)


def find_task(conn: Connection, ref: str) -> TaskRow:
    """A task by its id, its id prefix (as `status` shows), or its board card id."""
    row = (
        conn.execute(select(tasks).where(or_(tasks.c.id == ref, tasks.c.external_id == ref)))
        .mappings()
        .first()
    )
    if row is None and len(ref) >= 4:
        matches = (
            conn.execute(select(tasks).where(tasks.c.id.startswith(ref, autoescape=True)))
            .mappings()
            .all()
        )
        if len(matches) > 1:
            some = ", ".join(sorted(m["id"][: len(ref) + 4] + "…" for m in matches)[:3])
            raise NotFound(
                f"task id prefix {ref!r} is ambiguous ({len(matches)} tasks: {some}); "
                "give more of it"
            )
        row = matches[0] if matches else None
    if row is None:
        raise NotFound(
            f"no task with id {ref!r} (give a task id, the short id `status` shows, "
            "a card's page id or its URL)"
        )
    return TaskRow(**row)


def get_run(conn: Connection, run_id: str) -> RunRow:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no run with id {run_id!r}")
    return RunRow(**row)


def task_and_run(conn: Connection, task_id: str) -> tuple[TaskRow, RunRow | None]:
    """The task and its active run (None when it has none), in one read."""
    task = get_task(conn, task_id)
    return task, None if task.active_run_id is None else get_run(conn, task.active_run_id)


def latest_run(conn: Connection, task_id: str) -> RunRow | None:
    row = (
        conn.execute(
            select(runs)
            .where(runs.c.task_id == task_id)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else RunRow(**row)


def start_run(
    conn: Connection,
    lease: Lease,
    task: TaskRow,
    start_state: str,
    ctx: Mapping[str, Any],
    now: datetime,
    ttl: float,
) -> RunRow:
    """Open a run for a queued task; the partial unique index refuses a second active one."""
    guard(conn, lease, now, ttl)
    run_id = new_id()
    conn.execute(
        insert(runs).values(
            id=run_id,
            task_id=task.id,
            factory_id=task.factory_id,
            status=RunStatus.running,
            active=True,
            state_id=start_state,
            ctx=dict(ctx),
            attempt=0,
            iterations={},
            transitions=0,
            started_at=now,
            updated_at=now,
        )
    )
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id)
        .values(
            status=TaskStatus.running,
            step=start_state,
            active_run_id=run_id,
            last_error=None,
            not_before=None,
            updated_at=now,
        )
    )
    return get_run(conn, run_id)


def add_effects(
    conn: Connection,
    task_id: str,
    board_id: str,
    key: str,
    seq: int,
    effects: Sequence[Effect],
    now: datetime,
) -> None:
    """Queue effects in the outbox (`outbox_rows`)."""
    if effects:
        conn.execute(insert(outbox), outbox_rows(task_id, board_id, key, seq, effects, now))


def outbox_rows(
    task_id: str,
    board_id: str,
    key: str,
    seq: int,
    effects: Sequence[Effect],
    now: datetime,
) -> list[dict[str, Any]]:
    """The outbox rows of `effects`, pending; `key`+`seq`+index makes each effect's
    idempotency key."""
    return [
        {
            "task_id": task_id,
            "board_id": board_id,
            "kind": effect.kind,
            "payload": effect.to_payload(),
            "effect_key": f"{key}:{seq}:{i}:{effect.kind}",
            "status": OutboxStatus.pending,
            "attempts": 0,
            "created_at": now,
        }
        for i, effect in enumerate(effects)
    ]


def block_task(
    conn: Connection, lease: Lease, task: TaskRow, error: str, now: datetime, ttl: float
) -> None:
    """Block a task that cannot start (unknown factory), telling the person why."""
    guard(conn, lease, now, ttl)
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id)
        .values(status=TaskStatus.blocked, last_error=error, updated_at=now)
    )
    effects = blocked_effects(error)
    add_effects(conn, task.id, task.board_id, f"task-{task.id}-blocked", lease.epoch, effects, now)


def hold_task(
    conn: Connection, lease: Lease, task: TaskRow, reason: str, now: datetime, ttl: float
) -> None:
    """Leave a task where it is (its factory's module failed to load), telling the person why.

    Its column does not change; the card's Error says what to fix.
    """
    guard(conn, lease, now, ttl)
    conn.execute(
        update(tasks).where(tasks.c.id == task.id).values(last_error=reason, updated_at=now)
    )
    effects = [state_effect(task.status, task.step or "", reason)]
    add_effects(conn, task.id, task.board_id, f"task-{task.id}-held", lease.epoch, effects, now)


def name_workspace(conn: Connection, run_id: str, branch: str) -> None:
    """Give a new run its branch in the run's first transaction, before git makes it: a
    worker that dies in between leaves a name the next one makes, never a second branch."""
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(workspace_branch=branch, workspace_state="pending")
    )


def record_workspace(
    conn: Connection,
    lease: Lease,
    run: RunRow,
    board_id: str,
    path: str,
    state: str,
    effects: Sequence[Effect],
    now: datetime,
    ttl: float,
) -> None:
    """Where the run's worktree is and what became of it, with what the card should say."""
    guard(conn, lease, now, ttl)
    conn.execute(
        update(runs).where(runs.c.id == run.id).values(workspace_path=path, workspace_state=state)
    )
    key = f"{run.id}:workspace-{state}"
    add_effects(conn, run.task_id, board_id, key, lease.epoch, effects, now)


def mark_workspace(conn: Connection, run_id: str, state: str) -> bool:
    """Set a finished run's workspace state (`nfactory workspaces prune`); False if the run is
    active again or gone."""
    done = conn.execute(
        update(runs).where(runs.c.id == run_id, ~runs.c.active).values(workspace_state=state)
    )
    return done.rowcount == 1


def list_workspaces(conn: Connection) -> list[dict[str, Any]]:
    """Runs that have (or had) a worktree, newest first, with their card's title."""
    rows = conn.execute(
        select(
            runs.c.id.label("run_id"),
            runs.c.task_id,
            runs.c.status,
            runs.c.active,
            runs.c.workspace_path,
            runs.c.workspace_branch,
            runs.c.workspace_state,
            runs.c.started_at,
            tasks.c.title,
            tasks.c.external_id,
        )
        .join(tasks, tasks.c.id == runs.c.task_id)
        .where(runs.c.workspace_branch.is_not(None))
        .order_by(runs.c.started_at.desc(), runs.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def request_cancel(conn: Connection, task_id: str, now: datetime, by: str = "a person") -> bool:
    """Ask the task's run to stop; False when the task has already finished.

    The worker running it notices within a second or so (see Engine) and interrupts
    its agent; a task not running now ends Cancelled at its next tick.
    """
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_(ACTIVE))
        .values(cancel_requested=True, cancel_reason=by[:200], updated_at=now)
    )
    return result.rowcount == 1


def cancel_request(conn: Connection, task_id: str) -> str | None:
    """Who asked to cancel the task (None: nobody). One primary-key read, cheap enough to
    make every second while an agent runs."""
    row = conn.execute(
        select(tasks.c.cancel_requested, tasks.c.cancel_reason).where(tasks.c.id == task_id)
    ).one_or_none()
    if row is None or not row.cancel_requested:
        return None
    return row.cancel_reason or "a person"


def runnable_task_ids(
    conn: Connection,
    board_id: str,
    now: datetime,
    limit: int = 100,
    exclude: Collection[str] = (),
) -> list[str]:
    """The board's queued or running tasks whose backoff is over and whose lease is free or
    expired. Another board's tasks in the same database belong to the worker on that board;
    `exclude` names tasks this worker has already decided to leave alone."""
    query = select(tasks.c.id).where(
        tasks.c.board_id == board_id,
        or_(
            tasks.c.status.in_((TaskStatus.queued, TaskStatus.running)),
            # a card waiting for a reply is ticked only when answered; cancelled, it must
            # end now, not whenever someone comments
            and_(tasks.c.status == TaskStatus.feedback, tasks.c.cancel_requested),
        ),
        or_(tasks.c.not_before.is_(None), tasks.c.not_before <= now),
        or_(tasks.c.lease_owner.is_(None), tasks.c.lease_expires_at < now),
    )
    if exclude:
        query = query.where(tasks.c.id.not_in(list(exclude)))
    rows = conn.execute(query.order_by(tasks.c.updated_at, tasks.c.id).limit(limit))
    return [r.id for r in rows]


def consumed_comment_ids(conn: Connection, task_id: str) -> set[str]:
    rows = conn.execute(
        select(consumed_comments.c.comment_id).where(consumed_comments.c.task_id == task_id)
    )
    return {r.comment_id for r in rows}


def list_tasks(conn: Connection) -> list[dict[str, Any]]:
    """Tasks with their latest run's attempt counter and board column, newest first."""
    latest = (
        select(runs.c.task_id, func.max(runs.c.started_at).label("started_at"))
        .group_by(runs.c.task_id)
        .subquery()
    )
    last_run = runs.alias("last_run")
    column = (
        select(outbox.c.payload)
        .where(
            outbox.c.task_id == tasks.c.id,
            outbox.c.kind == StateEffect.kind,
            outbox.c.status == OutboxStatus.delivered,
        )
        .order_by(outbox.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            tasks,
            last_run.c.attempt.label("run_attempt"),
            last_run.c.transitions.label("run_transitions"),
            column.label("board_state"),
        )
        .select_from(
            tasks.outerjoin(latest, latest.c.task_id == tasks.c.id).outerjoin(
                last_run,
                and_(
                    last_run.c.task_id == tasks.c.id, last_run.c.started_at == latest.c.started_at
                ),
            )
        )
        .order_by(tasks.c.created_at.desc())
    ).mappings()
    return [dict(r) for r in rows]


def history(conn: Connection, task_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(transitions).where(transitions.c.task_id == task_id).order_by(transitions.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def backoff_until(now: datetime, delay_ms: int | None) -> datetime | None:
    return None if delay_ms is None else now + timedelta(milliseconds=delay_ms)
