"""Queue mode's test parts: settings for workers against the fake SendGrid server, and
real ``newsletter worker`` processes started and stopped by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Campaign
from newsletter import db
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers
from tests.support.fake_sendgrid import FakeSendGrid

ROOT = Path(__file__).resolve().parents[2]
CLI = "from cli import main; main()"


def queue_settings(database_url: str, root: Path, fake: FakeSendGrid, **extra: object) -> Settings:
    values: dict[str, object] = {
        "sender": "queue",
        "provider": "sendgrid",
        "base_url": "https://news.example.com",
        "sendgrid_api_key": API_KEY,
        "sendgrid_api_host": fake.url,
        "lease_seconds": 3,
        "worker_heartbeat_seconds": 0.5,
        "worker_stalled_seconds": 2.0,
        "retry_base_seconds": 0.1,
    }
    values.update(extra)
    return make_settings(database_url, root, **values)


def queued_list(
    database_url: str, root: Path, fake: FakeSendGrid, *, subscribers: int, block: int
) -> Settings:
    """A migrated database of ``subscribers`` readers and queue-mode settings that cut a
    campaign into blocks of ``block`` ids (SendGrid requests of 100)."""
    engine = db.get_engine(database_url)
    db.upgrade(engine)
    add_subscribers(engine, subscribers)
    return queue_settings(
        database_url, root, fake, worker_batch_size=block, sendgrid_batch_size=100
    )


def environment(settings: Settings) -> dict[str, str]:
    """The settings as a worker process reads them: NEWSLETTER_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, list | dict):
            continue
        env[f"NEWSLETTER_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_workers(settings: Settings, count: int, cwd: Path) -> list[subprocess.Popen[bytes]]:
    """``count`` worker processes; each one's log in ``cwd/worker<i>.log``."""
    workers = []
    for i in range(count):
        with (cwd / f"worker{i}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", CLI, "worker", "--concurrency", "1"],
                    cwd=cwd,
                    env=environment(settings),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.05)


def status_of(engine: Engine, campaign_id: int) -> str:
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status
