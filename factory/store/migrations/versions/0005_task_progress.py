"""task_progress: the latest progress line of a card's running agent

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_progress",
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("state_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("line", sa.Text(), nullable=True),
        sa.Column("block_id", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_task_progress_task_id_tasks"),
        sa.PrimaryKeyConstraint("task_id", name="pk_task_progress"),
    )


def downgrade() -> None:
    op.drop_table("task_progress")
