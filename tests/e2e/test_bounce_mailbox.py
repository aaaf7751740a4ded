"""Bounces with SMTP end to end: send over SMTP with VERP return paths, put our DSN samples
in a real IMAP mailbox (Debian's Dovecot), read it with ``newsletter bounces fetch``, and
find the addresses in suppression; a second reading counts nothing twice."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.sending import send_campaign
from campaigns.tracking.bounces import fetch_bounces
from newsletter import db
from newsletter.settings import Settings
from subscribers.models import Subscriber, Suppression
from tests.conftest import make_settings
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.imap import Dovecot, dovecot, dsn_sample
from tests.support.smtp import Sink, running

NEWSLETTER = str(Path(sys.executable).parent / "newsletter")
BOUNCE_DOMAIN = "bounce.news.example.com"


@pytest.fixture
def mailbox() -> Iterator[Dovecot]:
    with dovecot() as server:
        yield server


@pytest.fixture
def sent(
    tmp_path: Path, mailbox: Dovecot
) -> Iterator[tuple[Settings, Engine, dict[str, tuple[str, str]]]]:
    """Four readers sent one campaign over SMTP: address -> (VERP sender, Message-ID)."""
    handler = Sink(pipelining=True)
    with running(handler) as (_controller, port):
        cfg = make_settings(
            f"sqlite:///{tmp_path / 'bounces.db'}",
            tmp_path,
            provider="smtp",
            smtp_url=f"smtp://127.0.0.1:{port}",
            base_url="https://news.example.com",
            bounce_domain=BOUNCE_DOMAIN,
            bounce_imap_url=mailbox.url(),
        )
        engine = db.get_engine(cfg.database_url)
        db.upgrade(engine)
        add_subscribers(engine, 4)
        with Session(engine) as session:
            campaign = make_campaign(session)
            send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    copies = {
        rcpts[0]: (sender, email.message_from_bytes(data)["Message-ID"].strip("<>"))
        for sender, rcpts, data in handler.messages
    }
    yield cfg, engine, copies
    db.dispose_engine(cfg.database_url)


def fetch(cfg: Settings) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=cfg.database_url,
        NEWSLETTER_SECRET_KEY=cfg.secret_key or "",
        NEWSLETTER_BOUNCE_IMAP_URL=cfg.bounce_imap_url or "",
        NEWSLETTER_BOUNCE_DOMAIN=BOUNCE_DOMAIN,
    )
    result = subprocess.run(
        [NEWSLETTER, "bounces", "fetch", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(cfg.outbox_dir).parent,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sample(name: str, copies: dict[str, tuple[str, str]], address: str, **override: str) -> bytes:
    verp, message_id = copies[address]
    values = {"verp": verp, "recipient": address, "message_id": message_id, **override}
    return dsn_sample(name, **values)


def people(engine: Engine) -> tuple[dict[str, tuple[str, int]], set[str]]:
    with Session(engine) as session:
        rows = session.execute(
            sa.select(Subscriber.email, Subscriber.status, Subscriber.soft_bounces)
        ).all()
        suppressed = set(session.execute(sa.select(Suppression.email)).scalars())
    return {e: (s, n) for e, s, n in rows}, suppressed


def test_dsns_in_the_mailbox_are_read_back_into_suppression(sent, mailbox: Dovecot):
    cfg, engine, copies = sent
    u1, u2, u3, u4 = (f"user{i}@example.com" for i in range(1, 5))
    mailbox.append(sample("rfc3464_hard_5.1.1.eml", copies, u1))
    mailbox.append(sample("rfc3464_soft_4.2.2.eml", copies, u2))
    # No VERP (a server that bounces to a fixed address): our Message-ID and the address.
    mailbox.append(sample("postfix_nonstandard.eml", copies, u3, verp=f"bounces@{BOUNCE_DOMAIN}"))
    mailbox.append(sample("autoreply_not_a_bounce.eml", copies, u4))
    # A forged report about u4: neither a VERP token nor a Message-ID of ours.
    forged = {"verp": f"bounces@{BOUNCE_DOMAIN}", "message_id": "x@elsewhere.example"}
    mailbox.append(sample("rfc3464_hard_5.1.1.eml", copies, u4, **forged))

    report = fetch(cfg)

    assert {k: report[k] for k in ("messages", "bounces", "hard", "soft", "moved")} == {
        "messages": 5, "bounces": 3, "hard": 2, "soft": 1, "moved": 4
    }  # fmt: skip
    assert (report["not_bounces"], report["unmatched"]) == (1, 1)
    states, suppressed = people(engine)
    assert states[u1] == ("bounced", 0) and states[u3] == ("bounced", 0)
    assert states[u2] == ("active", 1) and states[u4] == ("active", 0)
    assert suppressed == {u1, u3}
    assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (1, 4)


def test_a_bounce_read_twice_counts_once(sent, mailbox: Dovecot):
    cfg, engine, copies = sent
    soft = sample("rfc3464_soft_4.2.2.eml", copies, "user2@example.com")
    mailbox.append(soft)
    with Session(engine) as session:
        first = fetch_bounces(session, settings=cfg)
        mailbox.append(soft)  # the same report again (a crash before the move, a copy back)
        again = fetch_bounces(session, settings=cfg)
    assert (first.bounces, again.bounces, again.duplicates) == (1, 0, 1)
    states, _suppressed = people(engine)
    assert states["user2@example.com"] == ("active", 1)


def test_a_forged_message_id_without_verp_changes_nothing(sent, mailbox: Dovecot):
    """A reader forges a hard bounce for another: the victim's delivery id, their own nonce."""
    cfg, engine, copies = sent
    attacker, victim = "user1@example.com", "user2@example.com"
    local, domain = copies[attacker][1].split("@")
    campaign, _own_delivery, nonce = local.split(".")
    victim_delivery = copies[victim][1].split(".")[1]
    no_verp = f"bounces@{BOUNCE_DOMAIN}"
    for guess in (nonce, "0" * 16):
        forged = f"{campaign}.{victim_delivery}.{guess}@{domain}"
        mailbox.append(
            sample("rfc3464_hard_5.1.1.eml", copies, victim, verp=no_verp, message_id=forged)
        )
    with Session(engine) as session:
        report = fetch_bounces(session, settings=cfg)
    assert (report.bounces, report.unmatched) == (0, 2)
    states, suppressed = people(engine)
    assert states[victim] == ("active", 0) and suppressed == set()


def test_a_bounce_quoting_the_exact_message_id_without_verp_suppresses(sent, mailbox: Dovecot):
    cfg, engine, copies = sent
    victim = "user2@example.com"
    no_verp = f"bounces@{BOUNCE_DOMAIN}"
    mailbox.append(sample("rfc3464_hard_5.1.1.eml", copies, victim, verp=no_verp))
    with Session(engine) as session:
        report = fetch_bounces(session, settings=cfg)
    assert (report.bounces, report.hard, report.unmatched) == (1, 1, 0)
    states, suppressed = people(engine)
    assert states[victim] == ("bounced", 0) and suppressed == {victim}
