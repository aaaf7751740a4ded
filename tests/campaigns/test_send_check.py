"""campaigns.send_check: what Send now's confirmation says, on both databases."""

from __future__ import annotations

from sqlmodel import Session

from campaigns.models import CampaignStatus
from campaigns.send_check import send_check
from newsletter.settings import Settings
from tests.support.content import make_campaign, make_snippet
from tests.support.subscribers import make_subscriber

S = CampaignStatus


def test_readers_are_the_active_unpaused_list(session: Session, settings: Settings) -> None:
    make_subscriber(session, "ann@example.com")
    make_subscriber(session, "gone@example.com", status="unsubscribed")
    draft = make_campaign(session, [make_snippet(session, settings)], subject="News")
    session.commit()
    assert send_check(session, settings=settings, campaign_id=draft.id or 0).readers == 1


def test_a_campaign_sent_with_the_same_snippets_is_named_with_what_is_the_same(
    session: Session, settings: Settings
) -> None:
    first, second = make_snippet(session, settings), make_snippet(session, settings)
    sent = make_campaign(session, [first, second], subject="Week 47", status=S.SENT)
    draft = make_campaign(session, [first, second], subject="  week   47 ")
    other_order = make_campaign(session, [second, first], subject="Another", status=S.SENT)
    session.commit()
    earlier = send_check(session, settings=settings, campaign_id=draft.id or 0).earlier
    assert [(e.campaign.id, e.what) for e in earlier] == [(sent.id, "subject and snippets")]
    assert other_order.id not in [e.campaign.id for e in earlier]


def test_a_draft_or_a_different_campaign_is_not_an_earlier_send(
    session: Session, settings: Settings
) -> None:
    snippet = make_snippet(session, settings)
    make_campaign(session, [snippet], subject="Same", status=S.DRAFT)
    make_campaign(session, [make_snippet(session, settings)], subject="Other", status=S.SENT)
    draft = make_campaign(session, [snippet], subject="Same")
    session.commit()
    assert send_check(session, settings=settings, campaign_id=draft.id or 0).earlier == []


def test_a_sent_campaign_cannot_be_sent_now(session: Session, settings: Settings) -> None:
    sent = make_campaign(session, [make_snippet(session, settings)], subject="Done", status=S.SENT)
    draft = make_campaign(session, [make_snippet(session, settings)], subject="Next")
    session.commit()
    assert not send_check(session, settings=settings, campaign_id=sent.id or 0).can_send
    assert send_check(session, settings=settings, campaign_id=draft.id or 0).can_send


def test_preflight_errors_are_named_before_a_send(session: Session, settings: Settings) -> None:
    empty = make_campaign(session, [], subject="Nothing in it")
    session.commit()
    check = send_check(session, settings=settings, campaign_id=empty.id or 0)
    assert check.errors == ["campaign: the campaign has no snippets"]
