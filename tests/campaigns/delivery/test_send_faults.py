"""Faults end in one clear line and lose nothing (issue 12.10).

PostgreSQL going away mid-send, for real: the test terminates the sender's backend
connections from another connection (``pg_terminate_backend``, never a restart of the
shared server) while the sender holds one in a transaction, between batches. The sender
reconnects with backoff and finishes, every recipient exactly once; or, when the database
stays away longer than ``database_reconnect_seconds``, it stops with one line (a
DatabaseError), the campaign stays 'sending', and the next run finishes it: nobody
twice but the batch that was at the provider.

The outbox's disk filling up: a tiny wrapper around the outbox's write function fails
with ENOSPC after a few files, half-way through a file. Every message written is
recorded as sent, no temporary file is left, the run stops with the reason in one line,
and the next run sends only the rest.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.providers import outbox
from campaigns.delivery.sending import SendProgress, send_campaign
from campaigns.models import Campaign
from newsletter import db
from newsletter.errors import DatabaseError
from newsletter.settings import PROJECT_ROOT, Settings
from tests.conftest import _pg_base_url, make_settings
from tests.support.content import make_campaign as content_campaign
from tests.support.content import make_snippet
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid

READERS = 6000
BATCH = 1000
FAST_RETRY = {"retry_base_seconds": 0.01, "retry_max_seconds": 0.05, "retry_max_attempts": 3}


def everyone(count: int) -> set[str]:
    return {f"user{i}@example.com" for i in range(1, count + 1)}


# ---------------------------------------------------------------- PostgreSQL goes away


@pytest.fixture
def sender(postgres_url: str, tmp_path: Path, fake: FakeSendGrid) -> Iterator[Settings]:
    """Sender settings whose connections carry an application name of their own, so the
    test can find and terminate exactly them on the shared server."""
    name = f"nl_sender_{uuid.uuid4().hex[:10]}"
    cfg = make_settings(
        f"{postgres_url}&application_name={name}",
        tmp_path,
        provider="sendgrid",
        base_url="https://news.example.com",
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=fake.url,
        # Paced to 2 batches a second: between batches the sender waits holding its
        # connection in a transaction (the status check), where the fault strikes.
        send_rate_per_second=2 * BATCH,
        **FAST_RETRY,
    )
    engine = db.get_engine(cfg.database_url)
    db.upgrade(engine)
    add_subscribers(engine, READERS)
    yield cfg
    db.dispose_engine(cfg.database_url)


def application_name(cfg: Settings) -> str:
    return cfg.database_url.rsplit("application_name=", 1)[1]


class Terminator:
    """Terminates the sender's backends from another connection once it has sent
    ``after`` recipients: once, or again and again for ``seconds``."""

    def __init__(self, cfg: Settings, *, after: int, seconds: float = 0.0) -> None:
        self.name = application_name(cfg)
        self.after = after
        self.seconds = seconds
        self.due = threading.Event()
        self.terminated = 0
        self.admin = sa.create_engine(_pg_base_url())
        self.thread = threading.Thread(target=self._run, daemon=True)

    def progress(self, p: SendProgress) -> None:
        if p.sent >= self.after:
            self.due.set()

    def _terminate(self) -> int:
        with self.admin.begin() as connection:
            return sum(
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self.name},
                ).scalars()
            )

    def _run(self) -> None:
        if not self.due.wait(60):
            return
        time.sleep(0.15)  # the sender is pacing itself now, its connection in a transaction
        deadline = time.monotonic() + self.seconds
        self.terminated += self._terminate()
        while time.monotonic() < deadline:
            self.terminated += self._terminate()
            time.sleep(0.01)

    def __enter__(self) -> Terminator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.due.set()
        self.thread.join(30)
        self.admin.dispose()


def send(cfg: Settings, campaign_id: int, terminator: Terminator | None = None):
    with Session(db.get_engine(cfg.database_url)) as session:
        return send_campaign(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            preflight=False,
            on_progress=terminator.progress if terminator else None,
        )


def campaign_in(cfg: Settings) -> int:
    with Session(db.get_engine(cfg.database_url)) as session:
        return make_campaign(session).id


@pytest.mark.parametrize("away", [0.0, 1.5], ids=["terminated-once", "away-for-1.5s"])
def test_the_sender_reconnects_and_finishes_exactly_once(
    sender: Settings, fake: FakeSendGrid, away: float, caplog: pytest.LogCaptureFixture
) -> None:
    campaign_id = campaign_in(sender)
    with (
        caplog.at_level(logging.WARNING, logger="newsletter.db"),
        Terminator(sender, after=2 * BATCH, seconds=away) as terminator,
    ):
        report = send(sender, campaign_id, terminator)
    assert terminator.terminated >= 1
    retries = [m for m in caplog.messages if m.startswith("database connection lost while")]
    assert retries, "the fault never struck the sender"
    assert (report.status, report.sent, report.queued) == ("sent", READERS, 0)
    assert set(fake.deliveries) == everyone(READERS)
    assert fake.duplicates() == {}  # not even the batch at the provider went out twice
    with Session(db.get_engine(sender.database_url)) as session:
        assert delivery_counts(session, campaign_id=campaign_id).sent == READERS


def test_a_database_that_stays_away_stops_the_send_in_one_line_and_it_resumes(
    sender: Settings, fake: FakeSendGrid
) -> None:
    impatient = sender.model_copy(update={"database_reconnect_seconds": 0})
    campaign_id = campaign_in(impatient)
    with Terminator(impatient, after=2 * BATCH) as terminator, pytest.raises(DatabaseError) as err:
        send(impatient, campaign_id, terminator)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"lost the database connection while sending campaign {campaign_id}")
    assert "send again to resume" in message and "terminating connection" in message
    with Session(db.get_engine(sender.database_url)) as session:
        assert session.get(Campaign, campaign_id).status == "sending"
    in_flight = {
        p["to"][0]["email"] for body in fake.requests[2:] for p in body["personalizations"]
    }
    report = send(sender, campaign_id)  # at once: the lease was given up
    assert report.status == "sent"
    assert set(fake.deliveries) == everyone(READERS)
    assert set(fake.duplicates()) <= in_flight and len(fake.duplicates()) <= BATCH
    with Session(db.get_engine(sender.database_url)) as session:
        assert delivery_counts(session, campaign_id=campaign_id).sent == READERS


# ---------------------------------------------------------------- the outbox's disk fills up


class FullDisk:
    """``outbox.write_file`` that writes ``files`` files, then half of the next and ENOSPC."""

    def __init__(self, files: int) -> None:
        self.files = files
        self.written = 0
        self.real = outbox.write_file

    def __call__(self, path: Path, data: bytes) -> None:
        if self.written >= self.files:
            with open(path, "wb") as file:
                file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        self.real(path, data)
        self.written += 1


def outbox_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(.eml files, leftover temporary files)."""
    return sorted(folder.glob("*.eml")), sorted(folder.glob(".*.tmp"))


def recipients_of(files: list[Path]) -> Counter[str]:
    return Counter(parseaddr(message_from_bytes(f.read_bytes())["To"])[1] for f in files)


def test_a_full_outbox_disk_records_what_was_written_and_the_rest_resumes(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = settings.model_copy(update=FAST_RETRY)
    add_subscribers(engine, 20, name=False)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
    monkeypatch.setattr(outbox, "write_file", FullDisk(files=5))
    with Session(engine) as session:
        report = send_campaign(session, settings=cfg, campaign_id=campaign_id, preflight=False)
    assert (report.status, report.sent, report.queued) == ("failed", 5, 15)
    assert report.stopped is not None and "\n" not in report.stopped
    assert f"cannot write to the outbox {cfg.outbox_dir}: No space left on device" in (
        report.stopped
    )
    written, leftovers = outbox_files(Path(cfg.outbox_dir))
    assert (len(written), leftovers) == (5, [])
    with Session(engine) as session:
        counts = delivery_counts(session, campaign_id=campaign_id)
    assert (counts.sent, counts.queued) == (5, 15)

    monkeypatch.undo()  # space was freed
    with Session(engine) as session:
        again = send_campaign(session, settings=cfg, campaign_id=campaign_id, preflight=False)
    assert (again.status, again.sent, again.queued) == ("sent", 15, 0)
    written, leftovers = outbox_files(Path(cfg.outbox_dir))
    assert leftovers == []
    assert recipients_of(written) == Counter(everyone(20))  # each exactly once


# `newsletter campaigns send` in its own process, its outbox writes wrapped as above.
CLI_WITH_A_FULL_DISK = """
import errno, sys
from campaigns.delivery.providers import outbox

real, written = outbox.write_file, []

def full(path, data):
    if len(written) >= 3:
        with open(path, "wb") as file:
            file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    real(path, data)
    written.append(path)

outbox.write_file = full
from cli import main
sys.argv = ["newsletter", "campaigns", "send", sys.argv[1]]
main()
"""


def test_the_cli_says_the_disk_is_full_in_one_line(
    sqlite_settings: Settings, sqlite_engine: Engine, tmp_path: Path
) -> None:
    add_subscribers(sqlite_engine, 8)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        snippets = [make_snippet(session, sqlite_settings, category="back-pain")]
        campaign_id = content_campaign(session, snippets).id
        session.commit()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=sqlite_settings.database_url,
        NEWSLETTER_OUTBOX_DIR=str(tmp_path / "outbox"),
        NEWSLETTER_SECRET_KEY="test-secret-key-0123456789abcdef",
        NEWSLETTER_POSTAL_ADDRESS="Pain Relief Weekly, 12 Test Street, Springfield, USA",
        NEWSLETTER_RETRY_BASE_SECONDS="0.01",
        NEWSLETTER_RETRY_MAX_SECONDS="0.05",
        NEWSLETTER_RETRY_MAX_ATTEMPTS="2",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-c", CLI_WITH_A_FULL_DISK, str(campaign_id)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "stopped: provider unavailable after 2 attempts: cannot write to the outbox "
        f"{tmp_path / 'outbox'}: No space left on device; the remaining recipients stay "
        "queued: send again to resume"
    ]
    assert "sent 3" in result.stdout and "still queued 5" in result.stdout
    written, leftovers = outbox_files(tmp_path / "outbox")
    assert (len(written), leftovers) == (3, [])
