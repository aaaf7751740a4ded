"""Recipients the receiving server put off, each with its own next try (issue 15).

Revision ID: 0009d
Revises: 0008
Create Date: 2026-11-30

Why: an SMTP server that answers 4yz to one recipient (greylisting, a full mailbox) used
to stop the whole campaign. That recipient's delivery row now becomes ``deferred`` (the
status column is a string: no change) and this table says when to try it again. A table
of its own rather than columns on ``delivery``, the hot table of every send (HOT updates,
migration 0003): only the few deferred rows have a row here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009d"
down_revision: str | None = "0009c"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_deferral",
        sa.Column("delivery_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    op.create_index("ix_delivery_deferral_campaign_id", "delivery_deferral", ["campaign_id"])
    op.create_index("ix_delivery_deferral_due_at", "delivery_deferral", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_deferral_due_at", table_name="delivery_deferral")
    op.drop_index("ix_delivery_deferral_campaign_id", table_name="delivery_deferral")
    op.drop_table("delivery_deferral")
