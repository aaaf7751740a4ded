"""Retired snippets: a table of their own (issue 14, the console's snippet library).

Revision ID: 0009b
Revises: 0009a
Create Date: 2026-11-30

Why a new table rather than a column on ``snippet``: retiring is rare and the snippet
table is read by every assembly; one row per retired snippet (who, when) keeps the
history of the choice and leaves the hot table alone. Unretiring deletes the row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009b"
down_revision: str | None = "0009a"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snippet_retirement",
        sa.Column(
            "snippet_id",
            sa.Integer,
            sa.ForeignKey("snippet.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_by", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snippet_retirement")
