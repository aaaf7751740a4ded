"""Subject tests: a reproducible even sample, winners by human clicks or opens (never
machines), by hand, and the rest getting the winner; the clock is the jobs' ``now``."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns import follow_up_jobs, jobs, subject_tests
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign, CampaignStatus, Delivery
from campaigns.variant_models import VariantDelivery
from newsletter.errors import InvalidInput, NotFound, StateError
from newsletter.settings import Settings
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.subscribers import messages
from tests.support.tracking import engagement

A, B = "Five stretches for sciatica", "Your back, in five minutes a day"


def started_test(
    session: Session, engine: Engine, audience: int = 50, metric: str = "clicks"
) -> Campaign:
    """A draft with a subject test (40 % sample, 4 h wait) whose sample has been sent."""
    add_subscribers(engine, audience)
    campaign = make_campaign(session, status=CampaignStatus.DRAFT, subject="Weekly")
    subject_tests.create_test(
        session,
        campaign_id=campaign.id,
        subjects=[A, B],
        sample_percent=40,
        wait=timedelta(hours=4),
        metric=metric,
        actor="test",
    )
    session.commit()
    return campaign


def send(session: Session, settings: Settings, campaign_id: int) -> str:
    return send_campaign(
        session, settings=settings, campaign_id=campaign_id, preflight=False
    ).status


def sample_of(session: Session, campaign_id: int, label: str) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery)
            .join(VariantDelivery, VariantDelivery.delivery_id == Delivery.id)
            .where(VariantDelivery.campaign_id == campaign_id, VariantDelivery.label == label)
        ).all()
    )


def decide_at(session: Session, campaign_id: int) -> datetime:
    described = subject_tests.describe(session, campaign_id=campaign_id)
    assert described is not None
    return datetime.fromisoformat(str(described["decide_at"]))


def subjects_sent(settings: Settings) -> Counter[str]:
    return Counter(str(m["Subject"]) for m in messages(settings))


def test_human_clicks_choose_the_winner_while_machine_opens_favour_the_other(
    settings: Settings, engine: Engine, session: Session
):
    campaign = started_test(session, engine)
    assert send(session, settings, campaign.id) == CampaignStatus.PAUSED
    assert subjects_sent(settings) == {A: 10, B: 10}  # 40 % of 50, split evenly
    for delivery in sample_of(session, campaign.id, "B"):  # a privacy proxy opens every B
        engagement(session, settings, delivery, "opened", machine=True)
    engagement(session, settings, sample_of(session, campaign.id, "B")[0], "clicked", machine=True)
    for delivery in sample_of(session, campaign.id, "A")[:3]:
        engagement(session, settings, delivery, "clicked")
    due = decide_at(session, campaign.id)
    assert (
        follow_up_jobs.subject_test_winners(settings, due - timedelta(seconds=1)).outcome == "idle"
    )
    assert (
        follow_up_jobs.subject_test_winners(settings, due).detail
        == f"campaign {campaign.id}: variant A won"
    )
    jobs.dispatch(settings, due)
    assert subjects_sent(settings) == {A: 10 + 30, B: 10}  # the rest got the winner
    shown = subject_tests.describe(session, campaign_id=campaign.id)
    assert shown is not None and shown["winner"] == "A"
    a, b = shown["variants"]  # type: ignore[misc]
    assert (a["human_clicks"], a["human_opens"], b["human_clicks"], b["human_opens"]) == (
        3,
        3,
        0,
        0,
    )
    session.expire_all()
    assert session.get(Campaign, campaign.id).status == CampaignStatus.SENT


def test_with_metric_opens_machine_opens_are_ignored(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    settings = sqlite_settings
    with Session(sqlite_engine) as session:
        campaign = started_test(session, sqlite_engine, metric="opens")
        send(session, settings, campaign.id)
        for delivery in sample_of(session, campaign.id, "A"):
            engagement(session, settings, delivery, "opened", machine=True)
        engagement(session, settings, sample_of(session, campaign.id, "B")[0], "opened")
        chosen = subject_tests.choose_winner(session, campaign_id=campaign.id, actor="test")
    assert chosen["winner"] == "B"


def test_a_winner_chosen_by_hand_goes_to_the_rest(sqlite_settings: Settings, sqlite_engine: Engine):
    settings = sqlite_settings
    with Session(sqlite_engine) as session:
        campaign = started_test(session, sqlite_engine)
        send(session, settings, campaign.id)
        engagement(session, settings, sample_of(session, campaign.id, "A")[0], "clicked")
        subject_tests.choose_winner(session, campaign_id=campaign.id, label="b", actor="marketer")
        session.commit()
        due = decide_at(session, campaign.id)
        # decided already
        assert follow_up_jobs.subject_test_winners(settings, due).outcome == "idle"
        jobs.dispatch(settings, due)
    assert subjects_sent(settings) == {A: 10, B: 10 + 30}


def test_a_winner_is_refused_before_the_sample_is_sent(sqlite_engine: Engine):
    session = Session(sqlite_engine)
    campaign = started_test(session, sqlite_engine)
    with pytest.raises(StateError, match="the sample is not sent yet"):
        subject_tests.choose_winner(session, campaign_id=campaign.id, label="A", actor="test")


def test_resuming_while_the_test_waits_sends_nobody_else(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    settings = sqlite_settings
    with Session(sqlite_engine) as session:
        campaign = started_test(session, sqlite_engine)
        send(session, settings, campaign.id)
        from campaigns import actions

        actions.resume(session, settings=settings, campaign_id=campaign.id, actor="test")
        session.commit()
        assert send(session, settings, campaign.id) == CampaignStatus.PAUSED
    assert sum(subjects_sent(settings).values()) == 20


def test_a_test_needs_two_or_three_different_subjects(sqlite_engine: Engine):
    session = Session(sqlite_engine)
    campaign = make_campaign(session, status=CampaignStatus.DRAFT)
    with pytest.raises(InvalidInput, match="2 or 3 subjects"):
        subject_tests.create_test(session, campaign_id=campaign.id, subjects=[A], actor="t")
    with pytest.raises(InvalidInput, match="different"):
        subject_tests.create_test(session, campaign_id=campaign.id, subjects=[A, A], actor="t")


def test_a_campaign_sent_at_local_time_cannot_get_a_subject_test(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    from campaigns import actions

    add_subscribers(sqlite_engine, 3)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        campaign = make_campaign(session, status=CampaignStatus.DRAFT, subject="Weekly")
        actions.schedule_local(
            session,
            settings=sqlite_settings,
            campaign_id=campaign.id,
            local_time="07:00",
            late="next-day",
            on=None,
            actor="test",
            now=datetime(2030, 1, 7, 12, 0),
        )
        session.commit()
        with pytest.raises(StateError, match="local time"):
            subject_tests.create_test(session, campaign_id=campaign.id, subjects=[A, B], actor="t")


def test_a_campaign_with_a_subject_test_cannot_be_sent_at_local_time(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    from campaigns import actions

    with Session(sqlite_engine, expire_on_commit=False) as session:
        campaign = started_test(session, sqlite_engine, audience=3)
        with pytest.raises(StateError, match="subject test"):
            actions.schedule_local(
                session,
                settings=sqlite_settings,
                campaign_id=campaign.id,
                local_time="07:00",
                late="next-day",
                on=None,
                actor="test",
                now=datetime(2030, 1, 7, 12, 0),
            )


def test_subjects_an_inbox_shows_alike_are_not_different(sqlite_engine: Engine):
    session = Session(sqlite_engine)
    campaign = make_campaign(session, status=CampaignStatus.DRAFT)
    with pytest.raises(InvalidInput, match="different"):
        subject_tests.create_test(
            session, campaign_id=campaign.id, subjects=[A, f" {A.upper()}  "], actor="t"
        )


def test_a_test_removed_before_its_sample_leaves_the_campaign_its_own_subject(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    with Session(sqlite_engine) as session:
        campaign = started_test(session, sqlite_engine, audience=5)
        subject_tests.remove_test(session, campaign_id=campaign.id, actor="editor")
        session.commit()
        assert subject_tests.describe(session, campaign_id=campaign.id) is None
        assert send(session, sqlite_settings, campaign.id) == CampaignStatus.SENT
    assert subjects_sent(sqlite_settings) == Counter({"Weekly": 5})


def test_a_removed_test_is_in_the_audit_log_with_its_subjects(sqlite_engine: Engine):
    from newsletter.audit import AuditEntry

    with Session(sqlite_engine) as session:
        campaign = started_test(session, sqlite_engine, audience=2)
        subject_tests.remove_test(session, campaign_id=campaign.id, actor="editor")
        session.commit()
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "campaign.subject_test_removed")
        ).one()
    assert (entry.actor, entry.before) == ("editor", {"subjects": {"A": A, "B": B}})


def test_a_test_whose_sample_is_sent_cannot_be_removed(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    with Session(sqlite_engine) as session:
        campaign = started_test(session, sqlite_engine)
        send(session, sqlite_settings, campaign.id)
        with pytest.raises(StateError, match=r"has started .* decided by its winner now"):
            subject_tests.remove_test(session, campaign_id=campaign.id, actor="editor")


def test_removing_a_test_a_campaign_does_not_have_is_not_found(sqlite_engine: Engine):
    session = Session(sqlite_engine)
    campaign = make_campaign(session, status=CampaignStatus.DRAFT)
    with pytest.raises(NotFound, match="has no subject test"):
        subject_tests.remove_test(session, campaign_id=campaign.id, actor="editor")
