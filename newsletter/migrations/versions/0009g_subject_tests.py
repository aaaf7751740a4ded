"""Subject tests (variants, their sample deliveries) and resends to non-openers.

Revision ID: 0009g
Revises: 0008
Create Date: 2026-11-30

Why: issue 16, points 2 and 3. ``subject_test`` holds a campaign's test (sample share,
wait, metric, phase, winner), ``campaign_variant`` its two or three subjects,
``variant_delivery`` which variant each sample delivery got (keyed by delivery id, no
foreign key, like the ledger), and ``campaign_resend`` the one follow-up per campaign to
those who did not open it. New tables only: the hot ``delivery`` table is not altered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009g"
down_revision: str | None = "0009b"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def _campaign_key() -> sa.Column:
    return sa.Column(
        "campaign_id",
        sa.Integer(),
        sa.ForeignKey("campaign.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "subject_test",
        _campaign_key(),
        sa.Column("sample_percent", sa.Integer(), nullable=False),
        sa.Column("wait_seconds", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=10), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("sample_sent_at", _WHEN, nullable=True),
        sa.Column("decide_at", _WHEN, nullable=True),
        sa.Column("winner", sa.String(length=1), nullable=True),
        sa.Column("decided_at", _WHEN, nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
    )
    op.create_index("ix_subject_test_decide_at", "subject_test", ["decide_at"])
    op.create_table(
        "campaign_variant",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=1), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("preheader", sa.String(length=300), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.UniqueConstraint("campaign_id", "label", name="uq_campaign_variant_label"),
    )
    op.create_index("ix_campaign_variant_campaign_id", "campaign_variant", ["campaign_id"])
    op.create_table(
        "variant_delivery",
        sa.Column("delivery_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=1), nullable=False),
    )
    op.create_index("ix_variant_delivery_campaign_id", "variant_delivery", ["campaign_id"])
    op.create_table(
        "campaign_resend",
        _campaign_key(),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("after_seconds", sa.Integer(), nullable=False),
        sa.Column("due_at", _WHEN, nullable=False),
        sa.Column("requested_at", _WHEN, nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("resend_campaign_id", sa.Integer(), nullable=True),
        sa.Column("triggered_at", _WHEN, nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=True),
    )
    op.create_index("ix_campaign_resend_due_at", "campaign_resend", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_campaign_resend_due_at", table_name="campaign_resend")
    op.drop_table("campaign_resend")
    op.drop_index("ix_variant_delivery_campaign_id", table_name="variant_delivery")
    op.drop_table("variant_delivery")
    op.drop_index("ix_campaign_variant_campaign_id", table_name="campaign_variant")
    op.drop_table("campaign_variant")
    op.drop_index("ix_subject_test_decide_at", table_name="subject_test")
    op.drop_table("subject_test")
