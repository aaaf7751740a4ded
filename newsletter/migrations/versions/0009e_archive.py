"""Campaigns left out of the public archive (issue 15, point 4).

Revision ID: 0009e
Revises: 0008
Create Date: 2026-11-30

A table of its own rather than a column on ``campaign``: a row says "left out"
(``campaigns archive ID --exclude``), no row means listed, so every existing and new
campaign is archived without touching the campaign table (which code at older
revisions, and other branches' migrations, keep writing with their own columns).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009e"
down_revision: str | None = "0009d"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_archive_exclusion",
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("excluded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("excluded_by", sa.String(length=100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaign_archive_exclusion")
