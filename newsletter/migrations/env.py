"""Alembic environment: migrations are written by hand, so no model import is needed here.

The engine comes from :func:`newsletter.db.upgrade`; ``tests/newsletter/test_migrations.py`` checks
that the migrated schema matches the SQLModel classes.
"""

from alembic import context

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
