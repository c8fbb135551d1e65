"""The schema. The database is the source of truth; the board is a view of it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database.

    SQLite has no time zones and compares timestamps as text, so every value
    is normalised to UTC before it is stored: comparisons then agree on both
    SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given where UTC is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

boards = Table(
    "boards",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # local | notion
    Column("external_id", String(64)),  # a Notion board's database id (`id` is its data source)
    Column("title", Text, nullable=False, server_default=""),
    # intake watermark: the first last_edited_time minute not yet settled, the keys of the
    # cards handled since, and the heavy minutes (ISO) left out of polls until they settle
    Column("watermark", UTCDateTime),
    Column("watermark_seen", Json, nullable=False, default=list),
    Column("watermark_heavy", Json, nullable=False, default=list),
    Column("created_at", UTCDateTime, nullable=False),
)

# What NOTION_BOARD_ID resolved to, and the bot's own id, kept between commands so an
# idle `nfactory tick` costs one request. Keyed by NOTION_BOARD_ID as configured (it may
# name the database or its data source), so a changed setting never reads another's row.
board_identity = Table(
    "board_identity",
    metadata,
    Column("board_ref", String(64), primary_key=True),
    Column("data_source_id", String(64), nullable=False),
    Column("database_id", String(64)),
    Column("title", Text, nullable=False, server_default=""),
    Column("bot_id", String(64), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("board_id", String(64), ForeignKey("boards.id"), nullable=False),
    Column("external_id", String(64)),  # the card's page id on a Notion board
    Column("factory_id", String(200), nullable=False),
    Column("title", Text, nullable=False),
    Column("prompt", Text, nullable=False, server_default=""),
    Column("context", Text, nullable=False, server_default=""),
    Column("status", String(16), nullable=False),  # statuses.TaskStatus
    Column("step", String(200)),
    Column("last_error", Text),
    Column("active_run_id", String(36)),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # who or what asked ("a person moving the card to Cancelled"), for the card's reason line
    Column("cancel_reason", String(200)),
    Column("not_before", UTCDateTime),  # retry backoff: not runnable before this
    Column("lease_owner", String(200)),
    Column("lease_expires_at", UTCDateTime),
    Column("lease_epoch", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("board_id", "external_id"),
    Index("ix_tasks_status_not_before", "status", "not_before"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("task_id", String(36), ForeignKey("tasks.id"), nullable=False),
    Column("factory_id", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # statuses.RunStatus
    Column("active", Boolean, nullable=False),
    Column("state_id", String(200), nullable=False),
    Column("previous_state_id", String(200)),
    Column("ctx", Json, nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("iterations", Json, nullable=False, default=dict),
    Column("transitions", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # the run's git worktree, for factories with a workspace: where, on which branch, and
    # pending | ready | removed | kept (see factory/workspaces.py)
    Column("workspace_path", Text),
    Column("workspace_branch", String(300)),
    Column("workspace_state", String(16)),
    Index("ix_runs_task_id", "task_id"),
    # at most one active run per task, enforced by the database itself
    Index(
        "uq_runs_one_active_per_task",
        "task_id",
        unique=True,
        sqlite_where=text("active"),
        postgresql_where=text("active"),
    ),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("runs.id"), nullable=False),
    Column("task_id", String(36), ForeignKey("tasks.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("from_state", String(200), nullable=False),
    Column("to_state", String(200), nullable=False),
    Column("event", String(200), nullable=False),
    Column("reason", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("loop_iteration", Integer),
    Column("message", Text, nullable=False, server_default=""),
    Column("error", Text),
    Column("worker_id", String(200), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("committed_at", UTCDateTime, nullable=False),
    # a transition can never be applied twice, whatever the workers believe
    UniqueConstraint("run_id", "seq"),
    Index("ix_transitions_task_id", "task_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), ForeignKey("tasks.id"), nullable=False),
    Column("board_id", String(64), ForeignKey("boards.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # an effects.Effect kind: state, log, page...
    Column("payload", Json, nullable=False),
    Column("effect_key", String(200), nullable=False, unique=True),
    # statuses.OutboxStatus: pending | sending | delivered | superseded | parked
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("external_ref", Text),  # what the board answered (block or comment id)
    Column("attempted_at", UTCDateTime),  # the last delivery attempt began
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index("ix_outbox_status_task_id", "status", "task_id", "id"),
)

consumed_comments = Table(
    "consumed_comments",
    metadata,
    Column("task_id", String(36), ForeignKey("tasks.id"), primary_key=True),
    Column("comment_id", String(64), primary_key=True),
    Column("run_id", String(36), nullable=False),
    Column("consumed_at", UTCDateTime, nullable=False),
)

# The local board's comment thread (the Notion board keeps comments in Notion).
local_comments = Table(
    "local_comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), ForeignKey("tasks.id"), nullable=False),
    Column("author", String(200), nullable=False),
    Column("is_bot", Boolean, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_local_comments_task_id", "task_id", "id"),
)

# Webhook deliveries seen, so a redelivered event is acted on once (Notion retries).
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

# The latest progress line of a card's running agent, for `nfactory status` and the
# board: one row per card, overwritten (progress is never history). `block_id` is the
# Notion block showing it, kept until the step's delivery removes that block.
task_progress = Table(
    "task_progress",
    metadata,
    Column("task_id", String(36), ForeignKey("tasks.id"), primary_key=True),
    Column("state_id", String(200), nullable=False, server_default=""),
    Column("line", Text),  # NULL once the agent's step is committed
    Column("block_id", String(64)),
    Column("updated_at", UTCDateTime, nullable=False),
)

# One integration's rate budget, shared by every worker on this database (a token
# bucket): `key` names the integration (its bot user id, never its token), the level
# is `tokens` as of `updated_at`, and nothing is sent before `paused_until` (a 429).
rate_budget = Table(
    "rate_budget",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("paused_until", UTCDateTime),
)

# When a card's comments were last read for replies (one row per task, overwritten), so
# the reply schedule holds across `nfactory tick` processes and worker restarts.
reply_checks = Table(
    "reply_checks",
    metadata,
    Column("task_id", String(36), ForeignKey("tasks.id"), primary_key=True),
    Column("checked_at", UTCDateTime, nullable=False),
)
