"""A send's live progress (campaigns/live.py): counts, rate, expected finish, who started it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from campaigns import workflow
from campaigns.live import live_progress
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.settings import Settings

S = CampaignStatus
D = DeliveryStatus
START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def _sending(session: Session, statuses: list[DeliveryStatus], *, actor: str) -> Campaign:
    campaign = Campaign(subject="Weekly", status=S.SCHEDULED)
    session.add(campaign)
    session.flush()
    workflow.transition(session, campaign=campaign, to=S.SENDING, actor=actor, reason="send")
    campaign.started_at = START
    session.add(campaign)
    for n, status in enumerate(statuses):
        session.add(Delivery(campaign_id=campaign.id or 0, subscriber_id=n + 1, status=status))
    session.commit()
    return campaign


def test_progress_has_the_counts_the_rate_and_when_it_should_finish(
    session: Session, settings: Settings
) -> None:
    campaign = _sending(session, [D.SENT] * 6 + [D.FAILED, D.SKIPPED] + [D.QUEUED] * 4, actor="cli")
    now = START + timedelta(seconds=4)
    p = live_progress(session, settings=settings, campaign_id=campaign.id or 0, now=now)
    assert (p.queued, p.sent, p.failed, p.skipped, p.total) == (4, 6, 1, 1, 12)
    assert (p.percent, p.rate, p.finished, p.started_by) == (66.7, 2.0, False, "cli")
    assert p.expected_finish == now + timedelta(seconds=2)  # 4 queued at 2 per second
    assert p.to_dict()["expected_finish"] == "2026-12-01T14:00:06+00:00"


def test_a_sent_campaign_is_finished_with_no_expected_finish(
    session: Session, settings: Settings
) -> None:
    campaign = _sending(session, [D.SENT, D.SENT], actor="scheduler")
    workflow.transition(session, campaign=campaign, to=S.SENT, actor="scheduler")
    session.commit()
    p = live_progress(session, settings=settings, campaign_id=campaign.id or 0)
    assert (p.percent, p.finished, p.expected_finish, p.started_by) == (
        100.0,
        True,
        None,
        "scheduler",
    )
