"""The send loop end to end: ledger, fake SendGrid through the real client, faults."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import sending
from campaigns.delivery.ledger import delivery_counts, queue_deliveries
from campaigns.delivery.providers.sendgrid import SendGridProvider
from campaigns.delivery.sending import SendProgress, send_campaign
from campaigns.models import Campaign, CampaignStatus, Delivery
from campaigns.workflow import transition
from newsletter.errors import HeaderInjection, Suppressed
from newsletter.settings import Settings
from subscribers.models import Subscriber, Suppression, SuppressionReason
from subscribers.suppression import suppress
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid

FAST_RETRY = {"retry_base_seconds": 0.01, "retry_max_seconds": 0.05}


def sg_settings(settings: Settings, fake: FakeSendGrid, **overrides: object) -> Settings:
    values = {
        "provider": "sendgrid",
        "base_url": "https://news.example.com",  # real mail: one-click links over HTTPS
        "sendgrid_api_key": API_KEY,
        "sendgrid_api_host": fake.url,
        "sendgrid_timeout_seconds": 5.0,
        **FAST_RETRY,
        **overrides,
    }
    return make_settings(settings.database_url, Path(settings.outbox_dir).parent, **values)


def statuses(session: Session, campaign_id: int) -> dict[str, int]:
    return delivery_counts(session, campaign_id=campaign_id).as_dict()


def test_20000_subscribers_go_out_in_batches_of_1000_exactly_once(
    settings: Settings, engine: Engine, session: Session, fake: FakeSendGrid
):
    add_subscribers(engine, 20_000)
    campaign = make_campaign(session)
    cfg = sg_settings(settings, fake)
    seen: list[SendProgress] = []
    started = time.perf_counter()
    report = send_campaign(
        session, settings=cfg, campaign_id=campaign.id, preflight=False, on_progress=seen.append
    )
    seconds = time.perf_counter() - started
    print(f"\n20k via fake SendGrid on {engine.dialect.name}: {20_000 / seconds:,.0f} recipients/s")
    assert (report.status, report.sent, report.queued) == ("sent", 20_000, 0)
    assert [len(r["personalizations"]) for r in fake.requests] == [1000] * 20
    assert fake.recipients == 20_000 and not fake.duplicates()
    assert seen[-1].sent == 20_000 and seen[-1].total == 20_000
    last = fake.requests[-1]["personalizations"][-1]
    subscriber_id = int(last["custom_args"]["nl_subscriber_id"])
    token = last["headers"]["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    assert Tokens(cfg).verify(Purpose.UNSUBSCRIBE, token) == subscriber_id
    row = session.execute(
        sa.select(Delivery.provider_message_id, Delivery.sent_at).where(
            Delivery.id == int(last["custom_args"]["nl_delivery_id"])
        )
    ).one()
    assert row.provider_message_id and row.sent_at is not None


def test_campaign_is_logged_through_sending_to_sent(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 3)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        send_campaign(
            session,
            settings=sg_settings(sqlite_settings, fake),
            campaign_id=campaign.id,
            preflight=False,
        )
        session.refresh(campaign)
        assert campaign.status == "sent" and campaign.started_at and campaign.finished_at


def test_a_429_storm_is_survived_with_nobody_lost_or_doubled(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 3000)
    fake.fail_next(429, count=4, headers={"Retry-After": "0"})
    fake.fail_next(503, count=1)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(
            session,
            settings=sg_settings(sqlite_settings, fake),
            campaign_id=campaign.id,
            preflight=False,
        )
        assert (report.status, report.sent) == ("sent", 3000)
    assert fake.attempts == 3 + 5 and fake.recipients == 3000 and not fake.duplicates()


def test_retry_waits_at_least_retry_after(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 2)
    fake.fail_next(429, headers={"Retry-After": "1"})
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        started = time.monotonic()
        send_campaign(
            session,
            settings=sg_settings(sqlite_settings, fake),
            campaign_id=campaign.id,
            preflight=False,
        )
    assert time.monotonic() - started >= 1.0 and fake.recipients == 2


def test_unavailable_beyond_the_attempts_fails_the_campaign_and_keeps_rows_queued(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 5)
    fake.fail_next(500, count=3)
    cfg = sg_settings(sqlite_settings, fake, retry_max_attempts=3)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
        assert report.status == "failed" and "send again to resume" in report.stopped
        assert statuses(session, campaign.id)["queued"] == 5
        again = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
        assert (again.status, again.sent) == ("sent", 5)


def test_a_400_fails_that_batch_only(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 2500)
    fake.fail_next(400, errors=[{"message": "Invalid type.", "field": "personalizations.3.to"}])
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(
            session,
            settings=sg_settings(sqlite_settings, fake),
            campaign_id=campaign.id,
            preflight=False,
        )
        assert (report.status, report.sent, report.failed) == ("sent", 1500, 1000)
        error = session.execute(
            sa.select(Delivery.error).where(Delivery.status == "failed").limit(1)
        ).scalar_one()
        assert "personalizations.3.to" in error


def test_a_401_stops_the_campaign_and_sends_nothing_more(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 3000)
    fake.fail_next(401, errors=[{"message": "bad key"}])
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(
            session,
            settings=sg_settings(sqlite_settings, fake),
            campaign_id=campaign.id,
            preflight=False,
        )
        session.refresh(campaign)
        assert report.status == "failed" and "bad key" in (campaign.error or "")
        assert fake.attempts == 1 and fake.recipients == 0
        assert statuses(session, campaign.id)["queued"] == 3000


def test_suppressed_or_unsubscribed_since_queueing_is_skipped(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 10)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        queue_deliveries(session, campaign=campaign)
        session.commit()
        session.add(Suppression(email_hash="h3", email="user3@example.com", reason="complaint"))
        session.execute(
            sa.update(Subscriber).where(Subscriber.id == 4).values(status="unsubscribed")
        )
        session.commit()
        report = send_campaign(
            session,
            settings=sg_settings(sqlite_settings, fake),
            campaign_id=campaign.id,
            preflight=False,
        )
        assert (report.sent, report.skipped) == (8, 2)
        errors = dict(
            session.execute(
                sa.select(Delivery.subscriber_id, Delivery.error).where(
                    Delivery.status == "skipped"
                )
            ).all()
        )
    assert errors == {3: "address is suppressed", 4: "subscriber is unsubscribed"}
    assert "user3@example.com" not in fake.deliveries and "user4@example.com" not in fake.deliveries


def test_pause_stops_between_batches(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 5000)

    def pause_after_two(progress: SendProgress) -> None:
        if progress.sent == 2000:
            with Session(sqlite_engine) as other:
                row = other.get(Campaign, progress.campaign_id)
                if row.status == CampaignStatus.SENDING:
                    transition(other, campaign=row, to=CampaignStatus.PAUSED, actor="test")
                other.commit()

    cfg = sg_settings(sqlite_settings, fake)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(
            session,
            settings=cfg,
            campaign_id=campaign.id,
            preflight=False,
            on_progress=pause_after_two,
        )
        assert (report.status, report.sent, report.stopped) == (
            "paused",
            2000,
            "campaign is paused",
        )
        resumed = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
        assert (resumed.status, resumed.sent) == ("sent", 3000)
    assert fake.recipients == 5000 and not fake.duplicates()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_stop_request_records_the_batches_in_flight_and_resumes_cleanly(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid, concurrency: int
):
    add_subscribers(sqlite_engine, 6000)
    batches_done: list[int] = []
    cfg = sg_settings(sqlite_settings, fake, send_concurrency=concurrency)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(
            session,
            settings=cfg,
            campaign_id=campaign.id,
            preflight=False,
            on_progress=lambda p: batches_done.append(p.sent),
            should_stop=lambda: bool(batches_done) and batches_done[-1] >= 2000,
        )
        assert (report.status, report.stopped) == ("sending", "stop requested")
        # Whatever was in flight when the stop came is recorded, not lost or resent.
        assert report.sent == fake.recipients < 6000
        resumed = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
        assert resumed.status == "sent"
    assert fake.recipients == 6000 and not fake.duplicates()


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_concurrency_and_rate_limit_are_honoured(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 60)
    cfg = sg_settings(sqlite_settings, fake, send_concurrency=3, send_rate_per_second=100)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        started = time.monotonic()
        report = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    assert report.sent == 60 and fake.recipients == 60 and not fake.duplicates()
    assert [len(r["personalizations"]) for r in fake.requests] == [60]
    assert time.monotonic() - started < 5


def test_rate_limit_spreads_batches_over_time(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 30)
    cfg = sg_settings(sqlite_settings, fake, send_rate_per_second=20)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        started = time.monotonic()
        send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    assert time.monotonic() - started >= 0.5  # 30 at 20/s: the second batch waits 1 s
    assert [len(r["personalizations"]) for r in fake.requests] == [20, 10]


def test_a_second_sender_is_refused_while_the_first_holds_the_lease(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    from campaigns.delivery import send_lease
    from newsletter.errors import StateError

    add_subscribers(sqlite_engine, 2)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        send_lease.claim(session, campaign_id=campaign.id, holder="other:1", seconds=60)
        session.commit()
        with pytest.raises(StateError, match="being sent by other:1"):
            send_campaign(
                session,
                settings=sg_settings(sqlite_settings, fake),
                campaign_id=campaign.id,
                preflight=False,
            )
    assert fake.attempts == 0


def test_test_send_marks_the_copy_and_records_nothing(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session, status=CampaignStatus.DRAFT)
        cfg = sg_settings(sqlite_settings, fake)
        provider = SendGridProvider.from_settings(cfg)
        message_id = sending.test_send(
            session,
            settings=cfg,
            campaign_id=campaign.id,
            to_email="me@example.com",
            provider=provider,
        )
        session.refresh(campaign)
        assert message_id and campaign.status == "draft"
        assert session.execute(sa.select(sa.func.count()).select_from(Delivery)).scalar() == 0
    assert fake.requests[0]["subject"].startswith("[TEST] ")
    assert fake.deliveries == {"me@example.com": 1}


@pytest.mark.parametrize("reason", [SuppressionReason.COMPLAINT, SuppressionReason.ERASED])
def test_test_send_to_a_suppressed_address_is_refused_and_nothing_goes(
    settings: Settings, engine: Engine, fake: FakeSendGrid, reason: SuppressionReason
):
    """The one suppression guard covers a marketer's test copy too (issue 12.4)."""
    with Session(engine) as session:
        campaign = make_campaign(session, status=CampaignStatus.DRAFT)
        suppress(session, email="Victim@Example.com", reason=reason)
        session.commit()
        cfg = sg_settings(settings, fake)
        with pytest.raises(Suppressed, match="suppressed"):
            sending.test_send(
                session,
                settings=cfg,
                campaign_id=campaign.id,
                to_email="victim@example.com",
                provider=SendGridProvider.from_settings(cfg),
            )
    assert fake.attempts == 0


class _WatchedSendGrid(SendGridProvider):
    """The real provider, noting which thread prepares and what the sending thread gets."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.prepared_on: list[str] = []
        self.sent_prepared: list[bool] = []

    def prepare(self, content, recipients):  # type: ignore[no-untyped-def]
        self.prepared_on.append(threading.current_thread().name)
        return super().prepare(content, recipients)

    def send_prepared(self, content, recipients, prepared):  # type: ignore[no-untyped-def]
        self.sent_prepared.append(prepared is not None)
        return super().send_prepared(content, recipients, prepared)


def test_each_batch_is_prepared_on_the_loops_thread_and_posted_as_prepared(
    settings: Settings, engine: Engine, session: Session, fake: FakeSendGrid
):
    add_subscribers(engine, 2_500)
    campaign = make_campaign(session)
    cfg = sg_settings(settings, fake)
    provider = _WatchedSendGrid(api_key=API_KEY, api_host=fake.url, timeout=5.0, settings=cfg)
    report = send_campaign(
        session, settings=cfg, campaign_id=campaign.id, preflight=False, provider=provider
    )
    assert (report.sent, fake.recipients) == (2_500, 2_500) and not fake.duplicates()
    assert provider.prepared_on == [threading.main_thread().name] * 3
    assert provider.sent_prepared == [True] * 3


def test_unsigned_readers_get_links_that_verify_when_their_names_need_care(
    settings: Settings, engine: Engine, session: Session, fake: FakeSendGrid
):
    add_subscribers(engine, 3)
    for subscriber_id, name in ((1, 'Jo "JJ" & <Co>'), (2, "Chloé García"), (3, "Tab\there")):
        session.execute(
            sa.update(Subscriber).where(Subscriber.id == subscriber_id).values(name=name)
        )
    session.commit()
    campaign = make_campaign(session)
    cfg = sg_settings(settings, fake)
    send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    items = fake.requests[0]["personalizations"]
    by_id = {int(i["custom_args"]["nl_subscriber_id"]): i for i in items}
    assert by_id[1]["substitutions"]["[%name_html%]"] == "Jo &quot;JJ&quot; &amp; &lt;Co&gt;"
    assert by_id[2]["to"] == [{"email": "user2@example.com", "name": "Chloé García"}]
    assert by_id[3]["substitutions"]["[%greeting%]"] == "Hello Tab here,"
    tokens = Tokens(cfg)
    for subscriber_id, item in by_id.items():
        token = item["headers"]["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
        assert tokens.verify(Purpose.UNSUBSCRIBE, token) == subscriber_id


def test_a_stored_address_that_may_not_be_a_header_stops_the_send_with_nothing_unrecorded(
    settings: Settings, engine: Engine, session: Session, fake: FakeSendGrid
):
    """Found by a review: the batch after the one in flight is prepared on the loop's
    thread; its error must not stop the loop before the batch in flight is recorded."""
    add_subscribers(engine, 2_500)
    bad = "u1500@example.com\r\nBcc: x@evil.example"
    session.execute(sa.update(Subscriber).where(Subscriber.id == 1500).values(email=bad))
    session.commit()
    campaign = make_campaign(session)
    cfg = sg_settings(settings, fake)
    with pytest.raises(HeaderInjection):
        send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    session.expire_all()
    assert statuses(session, campaign.id)["sent"] == fake.recipients == 1_000
    with pytest.raises(HeaderInjection):  # a resume stops at the same row, sending nothing again
        send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    assert fake.recipients == 1_000 and not fake.duplicates()
