"""procrastinate's schema: applied once, in the connection's own schema (each test has
its own through search_path), never on SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.workers.handover import hand_over
from campaigns.delivery.workers.queue import ensure_schema, run_worker
from newsletter import db
from newsletter.errors import ConfigError
from newsletter.models import Lease
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workers import queue_settings, status_of


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


@pytest.mark.postgres
def test_a_worker_runs_as_many_blocks_at_once_as_its_concurrency(postgres_url: str, tmp_path: Path):
    """Eight blocks paced by the shared limit hold their leases together when eight run at
    once (asyncio's default executor alone gives min(32, cores + 4) threads)."""
    engine = db.get_engine(postgres_url)
    db.upgrade(engine)
    add_subscribers(engine, 600)
    with FakeSendGrid(API_KEY) as fake:
        settings = queue_settings(postgres_url, tmp_path, fake, worker_batch_size=75,
                                  sendgrid_batch_size=25, send_rate_per_second=300)  # fmt: skip
        with Session(engine) as session:
            campaign_id = make_campaign(session).id
            assert campaign_id is not None
            hand_over(session, settings=settings, campaign_id=campaign_id, preflight=False)
        watcher = sa.create_engine(postgres_url)  # its own: the worker sizes the shared pool
        peak = Peak(watcher, f"send:{campaign_id}:b")
        with peak:
            run_worker(settings, concurrency=8, wait=False)
        watcher.dispose()
    engine = db.get_engine(postgres_url)  # the worker's engine, its pool sized for 8 blocks
    assert status_of(engine, campaign_id) == "sent" and fake.duplicates() == {}
    assert peak.most == 8


class Peak(threading.Thread):
    """The most block leases held at once, read from the lease table while a worker runs."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        super().__init__(daemon=True)
        self.engine, self.prefix, self.most = engine, prefix, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with self.engine.connect() as connection:
                held = connection.execute(
                    sa.select(sa.func.count()).where(Lease.name.startswith(self.prefix))  # type: ignore[attr-defined]
                ).scalar_one()
            self.most = max(self.most, held)
            self.done.wait(0.01)

    def __enter__(self) -> Peak:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(5)
