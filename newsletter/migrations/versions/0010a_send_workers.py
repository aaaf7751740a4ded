"""Several senders on PostgreSQL (issue 17 point 1): procrastinate's schema and the
shared rate bucket.

Revision ID: 0010a
Revises: 0009j
Create Date: 2026-11-30

``send_rate_bucket`` holds one row per provider: the next free instant of the provider's
rate limit, shared by every worker (campaigns.delivery.workers.shared_rate). It is made
on both databases so the models match the schema everywhere; SQLite never uses it.

On PostgreSQL this also runs procrastinate's own schema SQL (``procrastinate/sql/
schema.sql`` of the installed version) in the schema first on the connection's
``search_path``, so each test's private schema gets its own queue. SQLite: nothing (it
always sends inline). A later procrastinate release with schema changes ships its own
migration scripts (``procrastinate/sql/migrations``): they go in a migration of ours then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010a"
down_revision: str | None = "0009j"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# Everything procrastinate's schema creates, for the way down.
_DROP_PROCRASTINATE = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
             WHERE p.pronamespace = current_schema()::regnamespace
               AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION IF EXISTS ' || r.f || ' CASCADE';
    END LOOP;
END $$;
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
    procrastinate_jobs, procrastinate_workers CASCADE;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
"""


def upgrade() -> None:
    op.create_table(
        "send_rate_bucket",
        sa.Column("name", sa.String(length=40), primary_key=True),
        sa.Column("next_free", sa.Float(), nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # Driver level: the schema's PL/pgSQL has % and : that SQLAlchemy's text() would read.
    bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(_DROP_PROCRASTINATE.replace("%", "%%"))
    op.drop_table("send_rate_bucket")
