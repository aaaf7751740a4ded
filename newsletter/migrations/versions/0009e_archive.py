"""A campaign can be left out of the public archive (issue 15, point 4).

Revision ID: 0009e
Revises: 0008
Create Date: 2026-11-30

``campaign.archive_excluded``: false for every existing and new campaign (a server
default, so rows inserted by raw SQL are archived too). ``campaign`` is written once per
state change, never per recipient, so a column there costs the send nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009e"
down_revision: str | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(
            sa.Column("archive_excluded", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("archive_excluded")
