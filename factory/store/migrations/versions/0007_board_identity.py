"""board_identity: what NOTION_BOARD_ID resolved to and the bot's id, with when it was checked

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "board_identity",
        sa.Column("board_ref", sa.String(64), nullable=False),
        sa.Column("data_source_id", sa.String(64), nullable=False),
        sa.Column("database_id", sa.String(64), nullable=True),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("bot_id", sa.String(64), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("board_ref", name=op.f("pk_board_identity")),
    )


def downgrade() -> None:
    op.drop_table("board_identity")
