"""Subscriber ids never reused, and a link key per subscriber that every link carries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Why: SQLite hands the largest deleted rowid to the next insert, so an erased person's
confirm or unsubscribe link named the stranger who signed up next. ``subscriber`` gets
``AUTOINCREMENT`` on SQLite (only a rebuild of the table can add it; PostgreSQL's
sequence never reuses a value) and ``link_key``: 16 random bytes as hex, set for every
existing row here (a per-row server default, which also covers rows inserted by raw
SQL) and for new rows by ``subscribers.models.new_link_key``. Tokens carry
it and ``subscribers.tokens.Tokens.check`` compares it, so links already sent (without
a key) stop working: a one-time cost of the fix, the same as a secret-key change.

The rebuild drops the old table; with SQLite's foreign keys on, that deletes the
``consent_event`` rows by cascade, so they are kept aside and put back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The database's own random 32 hex digits, evaluated per row (also for the rows that
# exist when the column is added): subscribers.models.RandomLinkKey renders the same.
_RANDOM_KEY = {
    "sqlite": "(lower(hex(randomblob(16))))",
    "postgresql": "md5(random()::text || clock_timestamp()::text)",
}


def _keep_consent(sqlite: bool) -> None:
    if sqlite:
        op.execute("CREATE TEMP TABLE _consent_kept AS SELECT * FROM consent_event")


def _restore_consent(sqlite: bool) -> None:
    if sqlite:
        op.execute("DELETE FROM consent_event")
        op.execute("INSERT INTO consent_event SELECT * FROM _consent_kept")
        op.execute("DROP TABLE _consent_kept")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    column = sa.Column(
        "link_key",
        sa.String(length=32),
        server_default=sa.text(_RANDOM_KEY[dialect]),
        nullable=False,
    )
    if dialect != "sqlite":
        # A volatile default: PostgreSQL rewrites the table and draws one per row.
        op.add_column("subscriber", column)
        return
    # SQLite cannot add a column with a non-constant default, nor AUTOINCREMENT, to a
    # table: both come with the rebuild, whose copy draws the default per row.
    _keep_consent(True)
    with op.batch_alter_table(
        "subscriber", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.add_column(column)
    _restore_consent(True)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _keep_consent(sqlite)
    with op.batch_alter_table("subscriber", recreate="always" if sqlite else "auto") as batch:
        batch.drop_column("link_key")
    _restore_consent(sqlite)
