"""The scheduler as ops run it: real processes, SIGKILL, SIGTERM, a standby taking over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from campaigns.models import Campaign, CampaignStatus, Delivery
from newsletter import db, leases
from newsletter.clock import utcnow
from newsletter.settings import PROJECT_ROOT
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import add_subscribers

READERS = 200
RATE = 40  # messages/s: batches of 40, so a send takes about five seconds
NEWSLETTER = str(Path(sys.executable).parent / "newsletter")
SCHEDULER_FILE = str(PROJECT_ROOT / "scheduler.py")
# serial: real scheduler processes race for a lease with a TTL of seconds; under another
# xdist worker's load a slow start can miss the standby moment. Runs alone in `make test`.
pytestmark = pytest.mark.serial


def env_for(url: str, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=url,
        NEWSLETTER_OUTBOX_DIR=str(root / "outbox"),
        NEWSLETTER_SECRET_KEY="test-secret-key-0123456789abcdef",
        NEWSLETTER_POSTAL_ADDRESS="Pain Relief Weekly, 12 Test Street, Springfield, USA",
        NEWSLETTER_FROM_EMAIL="news@example.com",
        NEWSLETTER_TIMEZONE="UTC",
        NEWSLETTER_LEASE_SECONDS="3",
        NEWSLETTER_DISPATCH_INTERVAL_SECONDS="1",
        NEWSLETTER_SEND_RATE_PER_SECOND=str(RATE),
    )
    return env


def due_campaign(engine: Engine, url: str) -> int:
    from tests.conftest import make_settings

    cfg = make_settings(url, Path("/nonexistent"))
    add_subscribers(engine, READERS)
    with Session(engine, expire_on_commit=False) as session:
        snippets = [make_snippet(session, cfg, category=c) for c in ("back-pain", "sciatica")]
        campaign = make_campaign(session, snippets, status=CampaignStatus.SCHEDULED)
        campaign.scheduled_at = utcnow()
        session.add(campaign)
        session.commit()
        assert campaign.id is not None
        return campaign.id


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# serial: real scheduler processes race for a lease with a TTL of seconds; under another
# xdist worker's load a slow start can miss the standby moment. Runs alone in `make test`.
pytestmark = pytest.mark.serial


def sent(engine: Engine, campaign_id: int) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).where(
                Delivery.campaign_id == campaign_id, Delivery.status == "sent"
            )
        ).one()


def status(engine: Engine, campaign_id: int) -> str:
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status


def holder_pid(engine: Engine) -> int | None:
    lease = leases.current(engine)
    return int(lease.holder.split(":")[1]) if lease else None


def mail_counts(root: Path) -> Counter[str]:
    return Counter(
        parseaddr(message_from_bytes(p.read_bytes())["To"])[1]
        for p in (root / "outbox").glob("*.eml")
    )


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def spawn(procs: list, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log = cwd / f"stderr-{len(procs)}.log"  # a file, read while it runs (_peek)
    with log.open("wb") as err:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err)
    proc.log = log  # type: ignore[attr-defined]
    procs.append(proc)
    return proc


def _peek(proc: subprocess.Popen[bytes]) -> bytes:
    """What ``proc`` has written to stderr so far."""
    return proc.log.read_bytes()  # type: ignore[attr-defined]


def test_the_standby_finishes_after_a_kill_and_only_one_batch_is_ever_sent_twice(
    postgres_url: str, tmp_path: Path, procs: list
) -> None:
    engine = db.get_engine(postgres_url)
    db.upgrade(engine)
    campaign_id = due_campaign(engine, postgres_url)
    env = env_for(postgres_url, tmp_path)
    first = spawn(procs, [NEWSLETTER, "scheduler", "run"], env, tmp_path)
    wait_for("the first instance to hold the lease", lambda: holder_pid(engine) == first.pid)
    second = spawn(procs, [sys.executable, "-m", "scheduler"], env, tmp_path)  # the CLI's way
    # The standby is up (it logs so) before the first is killed: on a slow machine its
    # start could otherwise come after the kill, and it would find no one to stand by for.
    standby = b'"event": "standby: another instance is active"'
    wait_for("the standby", lambda: standby in _peek(second), 30)
    wait_for("the first batches", lambda: sent(engine, campaign_id) >= RATE)
    assert status(engine, campaign_id) == CampaignStatus.SENDING
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    wait_for("the standby to finish", lambda: status(engine, campaign_id) == "sent", 60)
    assert holder_pid(engine) == second.pid
    counts = mail_counts(tmp_path)
    assert len(counts) == READERS and sent(engine, campaign_id) == READERS
    twice = [address for address, n in counts.items() if n > 1]
    assert max(counts.values()) <= 2 and len(twice) <= RATE  # at most the batch in flight
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0
    assert standby in _peek(second)
    assert leases.current(engine) is None  # released on a clean exit
    db.dispose_engine(postgres_url)


def test_a_second_instance_on_sqlite_refuses_to_start(
    sqlite_url: str, tmp_path: Path, procs: list
) -> None:
    engine = db.get_engine(sqlite_url)
    db.upgrade(engine)
    env = env_for(sqlite_url, tmp_path)
    first = spawn(procs, [NEWSLETTER, "scheduler", "run"], env, tmp_path)
    wait_for("the first instance to hold the lease", lambda: holder_pid(engine) == first.pid)
    second = subprocess.run(
        [NEWSLETTER, "scheduler", "run"], env=env, cwd=tmp_path, capture_output=True, timeout=30
    )
    assert second.returncode == 1
    message = second.stderr.decode().strip().splitlines()[-1]
    assert message.startswith(f"error: another scheduler instance ({socket_host()}:{first.pid}:")
    assert message.endswith(
        "SQLite allows one instance: stop it first, or use PostgreSQL to run standby instances"
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0
    db.dispose_engine(sqlite_url)


def test_python_m_scheduler_once_sends_what_is_due_and_exits(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = db.get_engine(sqlite_url)
    db.upgrade(engine)
    campaign_id = due_campaign(engine, sqlite_url)
    env = env_for(sqlite_url, tmp_path)
    once = subprocess.run(
        [sys.executable, "-m", "scheduler", "--once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr.decode()
    assert status(engine, campaign_id) == CampaignStatus.SENT
    assert leases.current(engine) is None  # the lease was given up on the way out
    for command, prog in (
        ([sys.executable, "-m", "scheduler"], b"python -m scheduler"),
        ([sys.executable, SCHEDULER_FILE], b"python scheduler.py"),
    ):
        wrong = subprocess.run([*command, "--twice"], env=env, capture_output=True, timeout=60)
        assert (wrong.returncode, wrong.stderr) == (2, b"usage: " + prog + b" [--once]\n")
    db.dispose_engine(sqlite_url)


def socket_host() -> str:
    import socket

    return socket.gethostname()


def test_sigterm_finishes_the_batch_in_flight_and_run_once_resumes(
    sqlite_url: str, tmp_path: Path, procs: list
) -> None:
    engine = db.get_engine(sqlite_url)
    db.upgrade(engine)
    campaign_id = due_campaign(engine, sqlite_url)
    env = env_for(sqlite_url, tmp_path)
    service = spawn(procs, [NEWSLETTER, "scheduler", "run"], env, tmp_path)
    wait_for("the first batch", lambda: sent(engine, campaign_id) >= RATE)
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=20) == 0
    stopped_at = sent(engine, campaign_id)
    assert status(engine, campaign_id) == CampaignStatus.SENDING
    assert stopped_at % RATE == 0 and stopped_at < READERS  # whole batches, recorded
    assert sum(mail_counts(tmp_path).values()) == stopped_at  # nothing sent but not recorded
    once = subprocess.run(
        [NEWSLETTER, "scheduler", "run", "--once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stderr.decode()
    assert status(engine, campaign_id) == CampaignStatus.SENT
    counts = mail_counts(tmp_path)
    assert len(counts) == READERS and set(counts.values()) == {1}
    db.dispose_engine(sqlite_url)
