"""Task leases with fencing epochs.

A claim is one conditional UPDATE: it succeeds only when the task is free,
its lease has expired, or the claimant already holds it. Every claim bumps
the epoch, and every later write by the holder is conditioned on
(owner, epoch), so a worker whose lease was taken over can write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, or_, select, update

from factory.store.db import Database
from factory.store.tables import tasks


@dataclass(frozen=True)
class Lease:
    task_id: str
    owner: str
    epoch: int
    expires_at: datetime
    took_over: bool = False  # claimed from another worker whose lease had expired


class LeaseHeld(RuntimeError):
    """Strict mode: another worker holds the task's lease."""

    def __init__(self, task_id: str, owner: str | None, expires_at: datetime | None) -> None:
        until = f" until {expires_at:%Y-%m-%d %H:%M:%S} UTC" if expires_at else ""
        super().__init__(f"task {task_id} is being worked by {owner}{until}; try again later")
        self.owner = owner
        self.expires_at = expires_at


class LeaseLost(RuntimeError):
    """Our lease was taken over (or released): this worker must stop writing."""

    def __init__(self, lease: Lease) -> None:
        super().__init__(
            f"lease on task {lease.task_id} (epoch {lease.epoch}, owner {lease.owner}) "
            "was lost to another worker; stopping without writing"
        )
        self.lease = lease


def claim(db: Database, task_id: str, owner: str, now: datetime, ttl: float) -> Lease | None:
    """Take the task's lease, or None when another live lease holds it."""
    expires = now + timedelta(seconds=ttl)
    stmt = (
        update(tasks)
        .where(
            tasks.c.id == task_id,
            or_(
                tasks.c.lease_owner.is_(None),
                tasks.c.lease_expires_at < now,
                tasks.c.lease_owner == owner,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=expires, lease_epoch=tasks.c.lease_epoch + 1)
        .returning(tasks.c.lease_epoch)
    )
    with db.begin() as conn:
        before = conn.execute(
            select(tasks.c.lease_owner).where(tasks.c.id == task_id).with_for_update()
        ).scalar_one_or_none()
        epoch = conn.execute(stmt).scalar_one_or_none()
    if epoch is None:
        return None
    return Lease(task_id, owner, epoch, expires, took_over=before not in (None, owner))


def holder(db: Database, task_id: str) -> tuple[str | None, datetime | None] | None:
    """(owner, expiry) of the task's lease, or None when there is no such task."""
    with db.begin() as conn:
        row = conn.execute(
            select(tasks.c.lease_owner, tasks.c.lease_expires_at).where(tasks.c.id == task_id)
        ).one_or_none()
    return None if row is None else (row.lease_owner, row.lease_expires_at)


def held_by(lease: Lease):  # type: ignore[no-untyped-def]
    """The WHERE clause that fences a write to the lease's holder and epoch."""
    return and_(
        tasks.c.id == lease.task_id,
        tasks.c.lease_owner == lease.owner,
        tasks.c.lease_epoch == lease.epoch,
    )


def guard(conn: Connection, lease: Lease, now: datetime, ttl: float) -> Lease:
    """Inside a write transaction: prove the lease is still ours (and extend it), or raise.

    The UPDATE takes the row lock on PostgreSQL (and SQLite's write lock is
    already held), so a competing claim waits until this transaction ends.
    """
    expires = now + timedelta(seconds=ttl)
    result = conn.execute(update(tasks).where(held_by(lease)).values(lease_expires_at=expires))
    if result.rowcount != 1:
        raise LeaseLost(lease)
    return Lease(lease.task_id, lease.owner, lease.epoch, expires, lease.took_over)


def renew(db: Database, lease: Lease, now: datetime, ttl: float) -> Lease:
    with db.begin() as conn:
        return guard(conn, lease, now, ttl)


def release(db: Database, lease: Lease) -> bool:
    """Give the lease back so another worker need not wait for it to expire."""
    with db.begin() as conn:
        result = conn.execute(
            update(tasks).where(held_by(lease)).values(lease_owner=None, lease_expires_at=None)
        )
    return result.rowcount == 1
