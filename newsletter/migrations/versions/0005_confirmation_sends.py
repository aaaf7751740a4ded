"""A log of confirmation emails per address, for the per-address caps.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Why: at most ``NEWSLETTER_CONFIRM_MAX_PER_HOUR`` unanswered confirmation emails per
address per hour and ``NEWSLETTER_CONFIRM_MAX_PER_WEEK`` per week, whatever the IP asking
(issue 12); a click on a confirmation link deletes the address's rows. The
consent history cannot be the count: an expired sign-up is deleted with its history, and
so is an erased person's, which would reset the count. ``confirmation_send`` keeps only
the sha256 of the address and the time, like the suppression list, and rows older than a
week are pruned by the subscriber housekeeping. The table stands alone, so this revision
does not depend on anything 0004 changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "confirmation_send",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_confirmation_send_hash_sent_at", "confirmation_send", ["email_hash", "sent_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_confirmation_send_hash_sent_at", table_name="confirmation_send")
    op.drop_table("confirmation_send")
