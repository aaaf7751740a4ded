"""A cancelled weekly issue can be replaced: one *live* campaign per ISO week.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Why: ``campaign.week`` was unique, so once a week's issue was cancelled nothing could
build another for that week (``campaigns assemble`` answered "already assembled").
The rule people mean is "one issue goes out per week": the unique constraint becomes a
partial unique index on ``week`` over the campaigns that are not cancelled. A cancelled
campaign never changes state again (``campaigns.workflow.TRANSITIONS``), so at most one
campaign per week is ever live, and the cancelled ones keep their week for the record.

The constraint of 0001 is unnamed: PostgreSQL named it ``campaign_week_key``; SQLite's
batch mode finds it through a naming convention and rebuilds the table, with foreign
keys off (:func:`newsletter.db._migrating`) so the rebuild's ``DROP TABLE`` does not
cascade to campaign_snippet and campaign_log.

Downgrading restores the unique constraint. A week that has a replacement keeps one
campaign under its week: the live one, else the newest cancelled one; the other
cancelled issues of that week lose their week (they read as ad-hoc campaigns).

Merge note: branches added 0004 and 0005 in parallel; this revision follows whichever
is last when they are chained.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_INDEX = "uq_campaign_week_live"
_LIVE = sa.text("status != 'cancelled'")


def _unique_name() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "campaign_week_key"
    return "uq_campaign_week"


def upgrade() -> None:
    with op.batch_alter_table("campaign", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(_unique_name(), type_="unique")
    op.create_index(
        _INDEX, "campaign", ["week"], unique=True, sqlite_where=_LIVE, postgresql_where=_LIVE
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="campaign")
    campaign = sa.table("campaign", sa.column("id"), sa.column("week"), sa.column("status"))
    other = campaign.alias("other")
    kept_instead = sa.exists().where(
        other.c.week == campaign.c.week,
        other.c.id != campaign.c.id,
        sa.or_(other.c.status != "cancelled", other.c.id > campaign.c.id),
    )
    op.execute(
        campaign.update()
        .where(campaign.c.status == "cancelled", campaign.c.week.is_not(None), kept_instead)
        .values(week=None)
    )
    with op.batch_alter_table("campaign", naming_convention=_SQLITE_NAMES) as batch:
        batch.create_unique_constraint(_unique_name(), ["week"])
