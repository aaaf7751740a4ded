"""Rate limits and used sign-up challenges in the database, shared by every worker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

``rate_hit`` (subscribers.ratelimit): one row per allowed hit of a limited action (a
sign-up per IP, a data download per subscriber), so every uvicorn worker and instance
counts against one limit. ``used_challenge`` (subscribers.challenge): the sign-up form's
proof-of-work challenges already accepted, kept until they expire, so a solution cannot
be replayed. Times are seconds since the epoch (floats): both tables only compare them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_hit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rate_hit_bucket_key_at", "rate_hit", ["bucket", "key", "at"])
    op.create_index(op.f("ix_rate_hit_expires_at"), "rate_hit", ["expires_at"])
    op.create_table(
        "used_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    op.create_index(op.f("ix_used_challenge_expires_at"), "used_challenge", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_used_challenge_expires_at"), table_name="used_challenge")
    op.drop_table("used_challenge")
    op.drop_index(op.f("ix_rate_hit_expires_at"), table_name="rate_hit")
    op.drop_index("ix_rate_hit_bucket_key_at", table_name="rate_hit")
    op.drop_table("rate_hit")
