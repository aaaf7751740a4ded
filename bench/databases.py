"""A fresh, migrated database per benchmark run: a SQLite file or a PostgreSQL schema.

Each (size, provider) run gets its own so one run's ledger and campaign never meet the
next one's; the PostgreSQL schema is dropped afterwards, the SQLite file deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from newsletter import db
from newsletter.settings import Settings


def dialect_name(url: str | None) -> str:
    return "sqlite" if url is None or url.startswith("sqlite") else "postgresql"


def _normalised(url: str) -> str:
    """The URL as the service would use it (postgresql:// becomes psycopg 3)."""
    return Settings(_env_file=None, database_url=url).database_url  # type: ignore[call-arg]


@contextmanager
def fresh_database(base_url: str | None, workdir: Path, label: str) -> Iterator[str]:
    """Yield the URL of an empty, migrated database; remove it afterwards."""
    if base_url is None or base_url.startswith("sqlite"):
        path = workdir / f"{label}.db"
        url = f"sqlite:///{path}"
        try:
            db.upgrade(db.get_engine(url))
            yield url
        finally:
            db.dispose_engine(url)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    base = _normalised(base_url)
    schema = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    try:
        db.upgrade(db.get_engine(url))
        yield url
    finally:
        db.dispose_engine(url)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
