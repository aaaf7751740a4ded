"""Sign-out that holds on the server: each console user's session epoch (security fixes
of the console's sign-in).

Revision ID: 0009j
Revises: 0009i
Create Date: 2026-11-30

A table of its own rather than a column on ``console_user``: a row only for users who
have signed out or been disabled (newsletter.accounts.ConsoleSessionEpoch). Every session
cookie carries the epoch it was signed with and is refused once the epoch changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009j"
down_revision: str | None = "0009i"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_session_epoch",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("console_user.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("epoch", sa.String(length=64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_session_epoch")
