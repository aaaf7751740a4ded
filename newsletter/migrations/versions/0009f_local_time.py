"""Issue 16, local-time delivery: a reader's time zone and a campaign's waves.

Revision ID: 0009f
Revises: 0008
Create Date: 2026-11-30

``subscriber.timezone``: an IANA name (newsletter.timezones), nullable: a reader without
one gets the list's (NEWSLETTER_TIMEZONE). ``campaign_wave`` (campaigns.delivery.waves):
one row per distinct UTC instant of a campaign sent at a local wall time; the scheduler
releases each wave's readers into the ledger when its instant comes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009f"
down_revision: str | None = "0009g"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("subscriber", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.create_table(
        "campaign_wave",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("zones", sa.JSON(), nullable=False),
        sa.Column("local_time", sa.String(length=5), nullable=False),
        sa.Column("late", sa.String(length=10), nullable=True),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_campaign_wave_campaign_id"), "campaign_wave", ["campaign_id"], unique=False
    )
    op.create_index("ix_campaign_wave_status_release_at", "campaign_wave", ["status", "release_at"])


def downgrade() -> None:
    op.drop_index("ix_campaign_wave_status_release_at", table_name="campaign_wave")
    op.drop_index(op.f("ix_campaign_wave_campaign_id"), table_name="campaign_wave")
    op.drop_table("campaign_wave")
    # Not a batch rebuild: on SQLite that would drop the table, and its consent events by
    # cascade (see 0008). SQLite 3.35+ and PostgreSQL both drop a column in place.
    op.execute("ALTER TABLE subscriber DROP COLUMN timezone")
