"""Several senders on PostgreSQL (issue 17 point 1): the shared rate bucket.

Revision ID: 0010a
Revises: 0009j
Create Date: 2026-11-30

``send_rate_bucket`` holds one row per provider: the next free instant of the provider's
rate limit, shared by every worker (campaigns.delivery.workers.shared_rate). It is made
on both databases so the models match the schema everywhere; SQLite never uses it.

procrastinate's own schema is not made here but by an idempotent step of queue mode
(campaigns.delivery.workers.queue.ensure_schema: ``newsletter db upgrade`` with
``NEWSLETTER_SENDER=queue``, a worker's start, a hand-over), in the connection's own
schema: an inline deployment never carries its tables and functions, and every migrated
test database does not pay for them (about 80 ms each, some 600 times a suite).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010a"
down_revision: str | None = "0009j"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_rate_bucket",
        sa.Column("name", sa.String(length=40), primary_key=True),
        sa.Column("next_free", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("send_rate_bucket")
