"""The delivery ledger without foreign keys: queueing a million rows in seconds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Why: queueing is one ``INSERT ... SELECT`` of the whole audience. On PostgreSQL the two
foreign-key checks of ``delivery`` (``campaign_id``, ``subscriber_id``: one trigger per
row each) took about 11 of the 17 seconds a million rows cost, and SQLite checks them row
by row too. The rows are written by ``campaigns.delivery.ledger.queue_deliveries`` only, from ids
the same statement selects from ``campaign`` and ``subscriber``, so the checks never
caught anything there.

The trade-off, and what replaces each constraint:
- ``subscriber_id ... ON DELETE SET NULL``: erasure now nulls the person's delivery rows
  itself (``campaigns.tracking.erasure.erase_person``), in the same transaction as the delete.
  It must: SQLite may hand the largest deleted rowid to the next new subscriber, and a
  dangling id would then point at someone else. A row whose subscriber is gone by any
  other path reads as "subscriber erased" and is skipped by the send loop.
- ``campaign_id ... ON DELETE CASCADE``: campaigns are never deleted by the service; a
  hand-deleted campaign leaves orphan ledger rows that nothing reads.
The columns and all indexes stay (``ix_delivery_subscriber_id`` serves erasure);
``ix_delivery_provider_message_id`` becomes partial (``IS NOT NULL``): a queued row has no
message id yet, and the event webhook only ever looks one up by a value.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# 0001 left the constraints unnamed; SQLite's batch mode needs names to find them, and
# PostgreSQL named them <table>_<column>_fkey.
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_CONSTRAINTS = (
    ("campaign_id", "campaign", "CASCADE"),
    ("subscriber_id", "subscriber", "SET NULL"),
)


def _name(column: str, referred: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"delivery_{column}_fkey"
    return f"fk_delivery_{column}_{referred}"


_MESSAGE_ID_INDEX = "ix_delivery_provider_message_id"
_HAS_MESSAGE_ID = sa.text("provider_message_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("delivery", naming_convention=_SQLITE_NAMES) as batch:
        for column, referred, _ in _CONSTRAINTS:
            batch.drop_constraint(_name(column, referred), type_="foreignkey")
    op.drop_index(_MESSAGE_ID_INDEX, table_name="delivery")
    op.create_index(
        _MESSAGE_ID_INDEX,
        "delivery",
        ["provider_message_id"],
        postgresql_where=_HAS_MESSAGE_ID,
        sqlite_where=_HAS_MESSAGE_ID,
    )


def downgrade() -> None:
    op.drop_index(_MESSAGE_ID_INDEX, table_name="delivery")
    op.create_index(_MESSAGE_ID_INDEX, "delivery", ["provider_message_id"])
    # Rows of erased subscribers or deleted campaigns would fail the restored checks.
    delivery = sa.table("delivery", sa.column("subscriber_id"), sa.column("campaign_id"))
    subscriber = sa.table("subscriber", sa.column("id"))
    campaign = sa.table("campaign", sa.column("id"))
    op.execute(
        delivery.update()
        .where(
            delivery.c.subscriber_id.is_not(None),
            ~sa.exists().where(subscriber.c.id == delivery.c.subscriber_id),
        )
        .values(subscriber_id=None)
    )
    op.execute(delivery.delete().where(~sa.exists().where(campaign.c.id == delivery.c.campaign_id)))
    with op.batch_alter_table("delivery", naming_convention=_SQLITE_NAMES) as batch:
        for column, referred, ondelete in _CONSTRAINTS:
            batch.create_foreign_key(
                _name(column, referred), referred, [column], ["id"], ondelete=ondelete
            )
