"""runs.workspace_path, workspace_branch, workspace_state: each run's git worktree

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("workspace_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("workspace_branch", sa.String(300), nullable=True))
        batch.add_column(sa.Column("workspace_state", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("workspace_state")
        batch.drop_column("workspace_branch")
        batch.drop_column("workspace_path")
