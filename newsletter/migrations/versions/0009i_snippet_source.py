"""The Markdown a snippet's summary was typed in (issue 14, the console's snippet library).

Revision ID: 0009i
Revises: 0009e
Create Date: 2026-11-30

A table of its own rather than a column on ``snippet``: the snippet table is read by
every assembly and keeps the plain text a card shows; this one keeps the marketer's
Markdown so the edit form can show it again. No row: the plain summary is all there is
(feed entries, and every snippet saved before this revision).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009i"
down_revision: str | None = "0009e"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "snippet_source",
        sa.Column(
            "snippet_id",
            sa.Integer,
            sa.ForeignKey("snippet.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("summary_markdown", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snippet_source")
