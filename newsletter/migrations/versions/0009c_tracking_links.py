"""Our own click and open tracking (issue 15): link tables, switches, machine clicks.

Revision ID: 0009c
Revises: 0008
Create Date: 2026-11-30

``campaign_link``: each campaign's article links, numbered when it is compiled for
sending; a click redirect names a (campaign, position), never a URL, so nothing outside a
campaign can be reached through it. ``tracking_opt_out``: readers who asked not to be
tracked (their own table: ``subscriber`` is read by every send batch).
``campaign_tracking_off``: campaigns switched off (``campaigns track ID --off``).
``delivery.machine_click_count``: scanner clicks counted beside the human ones (adding a
column with a constant default rewrites no rows on PostgreSQL 11+ and SQLite).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009c"
down_revision: str | None = "0009h"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_link",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "position"),
    )
    op.create_table(
        "tracking_opt_out",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id"),
    )
    op.create_table(
        "campaign_tracking_off",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id"),
    )
    op.add_column(
        "delivery",
        sa.Column("machine_click_count", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("machine_click_count")
    op.drop_table("campaign_tracking_off")
    op.drop_table("tracking_opt_out")
    op.drop_table("campaign_link")
