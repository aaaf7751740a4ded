"""Subscriber ids never reused, and a link key per subscriber that every link carries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Why: SQLite hands the largest deleted rowid to the next insert, so an erased person's
confirm or unsubscribe link named the stranger who signed up next. ``subscriber`` gets
``AUTOINCREMENT`` on SQLite (only a rebuild of the table can add it; PostgreSQL's
sequence never reuses a value) and ``link_key``: 16 random bytes as hex, set for every
existing row here and for new rows by ``subscribers.models.new_link_key``. Tokens carry
it and ``subscribers.tokens.Tokens.check`` compares it, so links already sent (without
a key) stop working: a one-time cost of the fix, the same as a secret-key change.

The rebuild drops the old table; with SQLite's foreign keys on, that deletes the
``consent_event`` rows by cascade, so they are kept aside and put back.
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_subscriber = sa.table("subscriber", sa.column("id", sa.Integer), sa.column("link_key"))


def _keep_consent(sqlite: bool) -> None:
    if sqlite:
        op.execute("CREATE TEMP TABLE _consent_kept AS SELECT * FROM consent_event")


def _restore_consent(sqlite: bool) -> None:
    if sqlite:
        op.execute("DELETE FROM consent_event")
        op.execute("INSERT INTO consent_event SELECT * FROM _consent_kept")
        op.execute("DROP TABLE _consent_kept")


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.add_column("subscriber", sa.Column("link_key", sa.String(length=32), nullable=True))
    ids = bind.execute(sa.select(_subscriber.c.id)).scalars().all()
    for start in range(0, len(ids), 10_000):
        bind.execute(
            _subscriber.update()
            .where(_subscriber.c.id == sa.bindparam("row_id"))
            .values(link_key=sa.bindparam("key")),
            [{"row_id": i, "key": secrets.token_hex(16)} for i in ids[start : start + 10_000]],
        )
    _keep_consent(sqlite)
    with op.batch_alter_table(
        "subscriber",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.alter_column("link_key", existing_type=sa.String(length=32), nullable=False)
    _restore_consent(sqlite)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    _keep_consent(sqlite)
    with op.batch_alter_table("subscriber", recreate="always" if sqlite else "auto") as batch:
        batch.drop_column("link_key")
    _restore_consent(sqlite)
