"""Issue 15, point 6: what an SMTP server answers during the send, per recipient.

aiosmtpd on 127.0.0.1 with a handler of ours: 550 5.1.1 at RCPT for one reader, a
lasting 450 for another, 552 5.2.2 after DATA for a third; everyone else is delivered,
each message with its own VERP return path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.deferred_sends import retry_due
from campaigns.delivery.providers.smtp import SmtpConfig, SmtpProvider
from campaigns.delivery.sending import send_campaign
from campaigns.delivery.verp import Verp
from campaigns.models import Delivery, DeliveryDeferral
from campaigns.reports.figures import campaign_report
from newsletter.clock import utcnow
from newsletter.errors import ConfigError, ProviderConfigError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import ConsentSource, Subscriber, Suppression
from tests.conftest import make_settings
from tests.support.delivery import add_subscribers, content, make_campaign, recipient
from tests.support.smtp import Sink, running

BOUNCE_DOMAIN = "bounce.news.example.com"


class Answers(Sink):
    """Sink, plus replies after DATA for chosen recipients and a refused MAIL FROM."""

    def __init__(self) -> None:
        super().__init__(pipelining=True)
        self.after_data: dict[str, str] = {}
        self.refuse_sender: str | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        refused = [self.after_data[r] for r in envelope.rcpt_tos if r in self.after_data]
        if refused:
            return refused[0]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def answers() -> Iterator[tuple[Answers, int]]:
    handler = Answers()
    handler.refuse["user2@example.com"] = "550 5.1.1 <user2@example.com>: User unknown"
    handler.refuse["user3@example.com"] = "450 4.2.0 <user3@example.com>: Greylisted, retry later"
    handler.after_data["user4@example.com"] = "552 5.2.2 Mailbox full"
    with running(handler) as (_controller, port):
        yield handler, port


def smtp_settings(settings: Settings, port: int, **overrides: object) -> Settings:
    return make_settings(
        settings.database_url,
        Path(settings.outbox_dir).parent,
        provider="smtp",
        smtp_url=f"smtp://127.0.0.1:{port}",
        base_url="https://news.example.com",
        bounce_domain=BOUNCE_DOMAIN,
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
        **overrides,
    )


def send_six(engine: Engine, cfg: Settings) -> tuple[int, object]:
    add_subscribers(engine, 6)
    with Session(engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
        return campaign.id, report


def statuses(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Delivery.subscriber_id, Delivery.status)).all()
    return dict(rows)


def test_the_campaign_finishes_past_a_refused_and_a_greylisted_recipient(
    settings: Settings, engine: Engine, answers: tuple[Answers, int]
):
    handler, port = answers
    _cid, report = send_six(engine, smtp_settings(settings, port))
    assert (report.status, report.sent, report.failed) == ("sent", 3, 2)
    assert (report.bounced, report.deferred, report.stopped) == (2, 1, None)
    assert statuses(engine) == {
        1: "sent", 2: "failed", 3: "deferred", 4: "failed", 5: "sent", 6: "sent"
    }  # fmt: skip
    delivered = sorted(rcpts[0] for _sender, rcpts, _data in handler.messages)
    assert delivered == ["user1@example.com", "user5@example.com", "user6@example.com"]


def test_a_5_1_1_suppresses_at_once_and_5_2_2_counts_a_soft_bounce(
    settings: Settings, engine: Engine, answers: tuple[Answers, int]
):
    send_six(engine, smtp_settings(settings, port=answers[1]))
    with Session(engine) as session:
        unknown, full = session.get(Subscriber, 2), session.get(Subscriber, 4)
        suppressed = session.exec(sa.select(Suppression.email)).scalars().all()
        assert unknown.status == "bounced" and "user2@example.com" in suppressed
        assert full.status == "active" and full.soft_bounces == 1
        assert "user4@example.com" not in suppressed


def test_the_report_shows_the_smtp_bounces(
    sqlite_settings: Settings, sqlite_engine: Engine, answers: tuple[Answers, int]
):
    cid, _report = send_six(sqlite_engine, smtp_settings(sqlite_settings, answers[1]))
    with Session(sqlite_engine) as session:
        report = campaign_report(session, campaign_id=cid)
    figures = {f.name: f.count for f in report.figures}
    assert (figures["bounces"], figures["hard_bounces"], figures["soft_bounces"]) == (2, 1, 1)
    assert not report.provider_events  # our own bounces do not make delivery figures known


def test_each_message_carries_its_own_signed_verp_return_path(
    sqlite_settings: Settings, sqlite_engine: Engine, answers: tuple[Answers, int]
):
    handler, port = answers
    cfg = smtp_settings(sqlite_settings, port)
    cid, _report = send_six(sqlite_engine, cfg)
    with sqlite_engine.connect() as conn:
        keys = dict(conn.execute(sa.select(Subscriber.email, Subscriber.link_key)).all())
    verp = Verp(cfg)
    senders = {rcpts[0]: sender for sender, rcpts, _data in handler.messages}
    assert len(set(senders.values())) == 3
    for address, sender in senders.items():
        local, _at, domain = sender.rpartition("@")
        assert domain == BOUNCE_DOMAIN and len(local) <= 64  # RFC 5321 4.5.3.1.1
        claim = Verp.claim(sender)
        assert claim is not None and claim.campaign_id == cid
        assert f"user{claim.subscriber_id}@example.com" == address
        assert verp.verify(claim, keys[address])


def test_a_due_deferral_is_sent_again_and_leaves_the_ledger_sent(
    settings: Settings, engine: Engine, answers: tuple[Answers, int]
):
    handler, port = answers
    cfg = smtp_settings(settings, port)
    send_six(engine, cfg)
    del handler.refuse["user3@example.com"]  # the greylisting is over
    with Session(engine) as session:
        early = retry_due(session, settings=cfg, now=utcnow() + timedelta(minutes=4))
        later = retry_due(session, settings=cfg, now=utcnow() + timedelta(minutes=6))
        left = session.exec(sa.select(DeliveryDeferral)).all()
    assert early.tried == 0  # the first wait is 5 minutes
    assert (later.tried, later.sent) == (1, 1) and not left
    assert statuses(engine)[3] == "sent"
    assert handler.messages[-1][1] == ["user3@example.com"]


def test_a_deferred_reader_who_unsubscribed_meanwhile_is_skipped(
    sqlite_settings: Settings, sqlite_engine: Engine, answers: tuple[Answers, int]
):
    handler, port = answers
    cfg = smtp_settings(sqlite_settings, port)
    send_six(sqlite_engine, cfg)
    del handler.refuse["user3@example.com"]
    with Session(sqlite_engine) as session:
        lifecycle.unsubscribe(session, subscriber_id=3, source=ConsentSource.FORM, detail={})
        session.commit()
        report = retry_due(session, settings=cfg, now=utcnow() + timedelta(minutes=6))
    assert (report.sent, report.skipped) == (0, 1)
    assert statuses(sqlite_engine)[3] == "skipped"


def test_a_lasting_450_fails_the_delivery_after_the_retry_limit(
    sqlite_settings: Settings, sqlite_engine: Engine, answers: tuple[Answers, int]
):
    cfg = smtp_settings(sqlite_settings, answers[1], deferral_max_retries=1)
    send_six(sqlite_engine, cfg)
    with Session(sqlite_engine) as session:
        report = retry_due(session, settings=cfg, now=utcnow() + timedelta(minutes=6))
        error = session.exec(sa.select(Delivery.error).where(Delivery.subscriber_id == 3)).one()
    assert (report.tried, report.failed, report.deferred) == (1, 1, 0)
    assert statuses(sqlite_engine)[3] == "failed" and error[0].startswith("put off 2 times")


def test_a_refused_sender_stops_the_campaign(
    sqlite_settings: Settings, sqlite_engine: Engine, answers: tuple[Answers, int]
):
    handler, port = answers
    handler.refuse_sender = "553 5.7.1 Sender address rejected: not owned by you"
    _cid, report = send_six(sqlite_engine, smtp_settings(sqlite_settings, port))
    assert report.status == "failed" and "553" in (report.stopped or "")
    assert set(statuses(sqlite_engine).values()) == {"queued"}  # nobody bounced for it


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_credentials_for_a_server_without_auth_are_a_config_error():
    handler = Sink()  # aiosmtpd offers no AUTH without an authenticator
    with running(handler) as (_controller, port):
        config = SmtpConfig.parse(f"smtp://ann:s3cret@127.0.0.1:{port}")
        started = time.monotonic()
        with SmtpProvider(config, timeout=5) as provider, pytest.raises(ConfigError) as caught:
            provider.send_batch(content(), [recipient(1)])
    assert isinstance(caught.value, ProviderConfigError)
    assert "offers no AUTH" in str(caught.value) and "cannot reach" not in str(caught.value)
    assert time.monotonic() - started < 2 and handler.messages == []  # no retries


def test_a_421_mid_batch_defers_the_rest_and_bounces_nobody():
    handler = Sink(pipelining=True)
    handler.refuse["r2@example.com"] = "421 4.3.2 System shutting down"
    with running(handler) as (_controller, port):
        config = SmtpConfig.parse(f"smtp://127.0.0.1:{port}")
        with SmtpProvider(config, timeout=5) as provider:
            result = provider.send_batch(content(), [recipient(1), recipient(2), recipient(3)])
    assert set(result.accepted) == {1001} and set(result.deferred) == {1002, 1003}
    assert result.rejected == {} and result.transient == {}
