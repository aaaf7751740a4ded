"""Resends to non-openers: only those without a human open get it (a machine open does not
count), never someone who left meanwhile, once per reader and once per campaign."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns import actions, follow_up_jobs, jobs, resends
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign, CampaignStatus, Delivery
from newsletter.errors import InvalidInput, NotFound, StateError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.subscribers import messages
from tests.support.tracking import engagement

AGAIN = "In case you missed it: five stretches for sciatica"


def sent_campaign(session: Session, settings: Settings, engine: Engine) -> Campaign:
    add_subscribers(engine, 6)
    campaign = make_campaign(session)
    send_campaign(session, settings=settings, campaign_id=campaign.id, preflight=False)
    session.expire_all()
    return campaign


def delivery_to(session: Session, campaign_id: int, number: int) -> Delivery:
    subscriber = session.exec(
        select(Subscriber).where(Subscriber.email == f"user{number}@example.com")
    ).one()
    return session.exec(
        select(Delivery).where(
            Delivery.campaign_id == campaign_id, Delivery.subscriber_id == subscriber.id
        )
    ).one()


def resent_to(settings: Settings) -> list[str]:
    return sorted(
        str(m["To"]).split("<")[-1].rstrip(">") for m in messages(settings) if m["Subject"] == AGAIN
    )


def test_a_resend_reaches_only_the_non_openers(
    settings: Settings, engine: Engine, session: Session
):
    campaign = sent_campaign(session, settings, engine)
    engagement(session, settings, delivery_to(session, campaign.id, 1), "opened")
    engagement(session, settings, delivery_to(session, campaign.id, 2), "clicked")  # implies open
    engagement(session, settings, delivery_to(session, campaign.id, 3), "opened", machine=True)
    engagement(session, settings, delivery_to(session, campaign.id, 4), "clicked", machine=True)
    resends.request_resend(
        session, campaign_id=campaign.id, subject=AGAIN, after=timedelta(days=3), actor="test"
    )
    session.commit()
    due = datetime.fromisoformat(str(resends.describe(session, campaign_id=campaign.id)["due_at"]))
    assert follow_up_jobs.due_resends(settings, due - timedelta(minutes=1)).outcome == "idle"
    assert "to 4 who did not open" in follow_up_jobs.due_resends(settings, due).detail
    # Queued, then gone before the send: the send-time guard keeps the mail back.
    leaver = session.exec(select(Subscriber).where(Subscriber.email == "user6@example.com")).one()
    lifecycle.unsubscribe(session, subscriber_id=leaver.id, source="cli")
    session.commit()
    jobs.dispatch(settings, due)
    jobs.dispatch(settings, due + timedelta(minutes=1))
    assert resent_to(settings) == [f"user{n}@example.com" for n in (3, 4, 5)]
    shown = actions.show(session, settings=settings, campaign_id=campaign.id).resend
    assert shown is not None and (shown["subject"], shown["recipients"]) == (AGAIN, 4)
    follow_up = session.get(Campaign, shown["resend_campaign_id"])
    assert follow_up is not None and follow_up.status == CampaignStatus.SENT


def test_a_second_resend_is_refused(sqlite_settings: Settings, sqlite_engine: Engine):
    with Session(sqlite_engine) as session:
        campaign = sent_campaign(session, sqlite_settings, sqlite_engine)
        resends.request_resend(
            session, campaign_id=campaign.id, subject=AGAIN, after=timedelta(days=3), actor="t"
        )
        session.commit()
        with pytest.raises(StateError, match=r"already has a resend .* at most one per campaign"):
            resends.request_resend(
                session,
                campaign_id=campaign.id,
                subject="Again",
                after=timedelta(days=1),
                actor="t",
            )


def test_a_resend_follows_a_sent_campaign_only(sqlite_engine: Engine):
    session = Session(sqlite_engine)
    campaign = make_campaign(session, status=CampaignStatus.DRAFT)
    with pytest.raises(StateError, match="a resend follows a sent campaign"):
        resends.request_resend(
            session, campaign_id=campaign.id, subject=AGAIN, after=timedelta(days=3), actor="t"
        )
    with pytest.raises(InvalidInput, match="control character"):
        resends.request_resend(
            session,
            campaign_id=campaign.id,
            subject="a\nBcc: x",
            after=timedelta(days=3),
            actor="t",
        )


def _requested(session: Session, settings: Settings, engine: Engine) -> Campaign:
    campaign = sent_campaign(session, settings, engine)
    resends.request_resend(
        session, campaign_id=campaign.id, subject=AGAIN, after=timedelta(days=3), actor="t"
    )
    session.commit()
    return campaign


def test_a_cancelled_resend_is_never_made_and_a_new_one_may_be_asked(
    settings: Settings, engine: Engine, session: Session
):
    campaign = _requested(session, settings, engine)
    due = datetime.fromisoformat(str(resends.describe(session, campaign_id=campaign.id)["due_at"]))
    resends.cancel_resend(session, campaign_id=campaign.id, actor="editor")
    session.commit()
    assert resends.describe(session, campaign_id=campaign.id) is None
    assert follow_up_jobs.due_resends(settings, due).outcome == "idle"
    resends.request_resend(
        session, campaign_id=campaign.id, subject="Later", after=timedelta(days=1), actor="t"
    )
    session.commit()
    assert resends.describe(session, campaign_id=campaign.id)["subject"] == "Later"


def test_a_cancelled_resend_is_in_the_audit_log(sqlite_settings: Settings, sqlite_engine: Engine):
    from newsletter.audit import AuditEntry

    with Session(sqlite_engine) as session:
        campaign = _requested(session, sqlite_settings, sqlite_engine)
        resends.cancel_resend(session, campaign_id=campaign.id, actor="editor")
        session.commit()
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "campaign.resend_cancelled")
        ).one()
    assert entry.actor == "editor" and entry.before["subject"] == AGAIN


def test_a_resend_already_made_cannot_be_cancelled(
    settings: Settings, engine: Engine, session: Session
):
    campaign = _requested(session, settings, engine)
    due = datetime.fromisoformat(str(resends.describe(session, campaign_id=campaign.id)["due_at"]))
    follow_up_jobs.due_resends(settings, due)
    session.expire_all()
    with pytest.raises(StateError, match=r"resend was made \(campaign \d+\): cancel that"):
        resends.cancel_resend(session, campaign_id=campaign.id, actor="editor")


def test_cancelling_a_resend_a_campaign_does_not_have_is_not_found(sqlite_engine: Engine):
    session = Session(sqlite_engine)
    campaign = make_campaign(session, status=CampaignStatus.SENT)
    with pytest.raises(NotFound, match="has no resend"):
        resends.cancel_resend(session, campaign_id=campaign.id, actor="editor")
