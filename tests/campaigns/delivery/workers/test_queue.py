"""procrastinate's schema: applied once, in the connection's own schema (each test has
its own through search_path), never on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.delivery.workers.queue import ensure_schema
from newsletter import db
from newsletter.errors import ConfigError
from tests.conftest import make_settings


@pytest.mark.postgres
def test_the_queue_schema_is_applied_once_in_our_own_schema(postgres_url: str, tmp_path: Path):
    settings = make_settings(postgres_url, tmp_path, sender="queue")
    db.upgrade(db.get_engine(postgres_url))
    assert ensure_schema(settings) is True
    assert ensure_schema(settings) is False  # there already: a no-op
    with db.get_engine(postgres_url).connect() as connection:
        ours = connection.exec_driver_sql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name LIKE 'procrastinate%%'"
        ).scalars()
        assert "procrastinate_jobs" in set(ours)


def test_sqlite_has_no_queue(tmp_path: Path):
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    with pytest.raises(ConfigError, match="PostgreSQL"):
        ensure_schema(settings)
