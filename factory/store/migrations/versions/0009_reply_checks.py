"""reply_checks: when each card's comments were last read for replies

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reply_checks",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_reply_checks_task_id_tasks"),
        sa.PrimaryKeyConstraint("task_id", name="pk_reply_checks"),
    )


def downgrade() -> None:
    op.drop_table("reply_checks")
