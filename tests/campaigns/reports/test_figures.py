"""Campaign figures, the deliverability warnings, CSV, the timeline and list growth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.models import Campaign, Delivery, DeliveryStatus
from campaigns.reports.figures import (
    NA,
    campaign_report,
    campaign_timeline,
    growth_dicts,
    list_growth,
    rate_warnings,
    report_csv,
)
from campaigns.tracking.events import EventKind
from campaigns.tracking.hit_writer import Hit, HitWriter
from newsletter.errors import NotFound
from newsletter.settings import Settings
from subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.support.tracking import (
    T0,
    add_campaign,
    add_delivery,
    add_subscriber,
    apply,
    engagement,
    later,
    sg_event,
)


@pytest.fixture
def campaign(session: Session, settings: Settings) -> Campaign:
    """7 recipients: one skipped, three delivered, two bounced, one dropped."""
    campaign = add_campaign(session, subject="Leg cramps at night", week="2026-W48")
    people = {n: add_subscriber(session, f"{n}@example.com") for n in "abcdefg"}
    d = {
        n: add_delivery(
            session, campaign, s, status=DeliveryStatus.SKIPPED if n == "f" else DeliveryStatus.SENT
        )
        for n, s in people.items()
    }
    apply(
        session,
        settings,
        sg_event("delivered", d["a"], "a@example.com", at=later(1)),
        sg_event("open", d["a"], "a@example.com", at=later(70)),
        sg_event("open", d["a"], "a@example.com", at=later(80)),
        sg_event("click", d["a"], "a@example.com", at=later(81)),
        sg_event("delivered", d["b"], "b@example.com", at=later(1)),
        sg_event("open", d["b"], "b@example.com", at=later(2), sg_machine_open=True),
        sg_event("unsubscribe", d["b"], "b@example.com", at=later(130)),
        sg_event("delivered", d["c"], "c@example.com", at=later(2)),
        sg_event("open", d["c"], "c@example.com", at=later(65)),
        sg_event("spamreport", d["c"], "c@example.com", at=later(66)),
        sg_event("bounce", d["d"], "d@example.com", type="bounce", at=later(1)),
        sg_event("bounce", d["e"], "e@example.com", type="blocked", at=later(1)),
        sg_event("dropped", d["g"], "g@example.com", reason="Bounced Address", at=later(0)),
    )
    return campaign


def test_the_report_has_every_figure_with_its_rate(session: Session, campaign: Campaign) -> None:
    assert campaign_report(session, campaign_id=campaign.id).to_dict() == {
        "campaign_id": campaign.id,
        "subject": "Leg cramps at night",
        "week": "2026-W48",
        "status": "sent",
        "figures": {
            "recipients": {"count": 7, "rate": None},
            "sent": {"count": 6, "rate": 0.857143},
            "delivered": {"count": 3, "rate": 0.5},
            "dropped": {"count": 1, "rate": 0.166667},
            "bounces": {"count": 2, "rate": 0.333333},
            "hard_bounces": {"count": 1, "rate": 0.166667},
            "soft_bounces": {"count": 1, "rate": 0.166667},
            "complaints": {"count": 1, "rate": 0.333333},
            "unsubscribes": {"count": 1, "rate": 0.333333},
            "unique_opens": {"count": 2, "rate": 0.666667},
            "machine_opens": {"count": 1, "rate": 0.333333},
            "unique_clicks": {"count": 1, "rate": 0.333333},
            "machine_clicks": {"count": 0, "rate": 0.0},
        },
        "warnings": [
            "complaint rate 33.33% is at or above 0.1%: mailbox providers start filtering "
            "or blocking at this level",
            "bounce rate 33.33% is above 2%: clean the list before the next send",
        ],
        "provider_events": True,
    }


def test_a_campaign_without_events_reports_what_is_unknown_as_such_and_no_warning(
    session: Session,
) -> None:
    """Issue 13.6: with nothing to count opens (outbox, SMTP, tracking off) they are
    "n/a", not "0 (0.00%)"; issue 15.7: delivered is sent less bounced and rejected,
    known for every provider."""
    campaign = add_campaign(session)
    add_delivery(session, campaign, add_subscriber(session, "a@example.com"))
    report = campaign_report(session, campaign_id=campaign.id)
    assert (report.figure("unique_opens").count, report.figure("unique_opens").rate) == (NA, None)
    assert report.to_dict()["figures"]["unique_clicks"] == {"count": None, "rate": None}
    assert report.to_dict()["figures"]["delivered"] == {"count": 1, "rate": 1.0}
    assert report.provider_events is False
    assert report.warnings == []


def test_opens_counted_in_the_ledger_are_figures_whatever_the_provider(session: Session) -> None:
    """Issue 15.7: an open recorded in the ledger (our own tracking, no provider event)
    is a count, and a bounce lowers delivered without any "delivered" event."""
    campaign = add_campaign(session)
    opened = add_delivery(session, campaign, add_subscriber(session, "a@example.com"))
    bounced = add_delivery(session, campaign, add_subscriber(session, "b@example.com"))
    add_delivery(session, campaign, add_subscriber(session, "c@example.com"))
    opened.open_count, bounced.bounce = 1, "hard"
    session.add_all([opened, bounced])
    session.commit()
    figures = campaign_report(session, campaign_id=campaign.id).to_dict()["figures"]
    assert figures["delivered"] == {"count": 2, "rate": 0.666667}
    assert figures["unique_opens"] == {"count": 1, "rate": 0.5}
    assert figures["unique_clicks"] == {"count": 0, "rate": 0.0}
    assert figures["bounces"] == {"count": 1, "rate": 0.333333}


def test_an_unknown_campaign_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="campaign 404 does not exist"):
        campaign_report(session, campaign_id=404)


def test_a_complaint_rate_of_exactly_one_in_a_thousand_warns() -> None:
    warnings = rate_warnings(complaints=1, delivered=1000, bounces=0, sent=1000)
    assert warnings == [
        "complaint rate 0.10% is at or above 0.1%: mailbox providers start "
        "filtering or blocking at this level"
    ]


def test_a_complaint_rate_just_below_one_in_a_thousand_does_not_warn() -> None:
    assert rate_warnings(complaints=1, delivered=1001, bounces=0, sent=1001) == []


def test_a_bounce_rate_of_exactly_two_percent_does_not_warn() -> None:
    assert rate_warnings(complaints=0, delivered=98, bounces=2, sent=100) == []


def test_a_bounce_rate_above_two_percent_warns() -> None:
    assert rate_warnings(complaints=0, delivered=97, bounces=3, sent=100) == [
        "bounce rate 3.00% is above 2%: clean the list before the next send"
    ]


def test_a_complaint_rate_a_hair_below_the_limit_does_not_warn_on_a_large_list() -> None:
    # 1000 / 1,000,001 rounds to 0.001000 at six places but is below 0.1 %.
    assert rate_warnings(complaints=1000, delivered=1_000_001, bounces=0, sent=1_000_001) == []


def test_a_bounce_rate_a_hair_above_the_limit_warns_on_a_large_list() -> None:
    # 1,000,001 / 50,000,000 rounds to 0.020000 at six places but is above 2 %.
    warnings = rate_warnings(complaints=0, delivered=1, bounces=1_000_001, sent=50_000_000)
    assert [w.split(":")[0] for w in warnings] == ["bounce rate 2.00% is above 2%"]


def test_nothing_sent_gives_no_warning() -> None:
    assert rate_warnings(complaints=0, delivered=0, bounces=0, sent=0) == []


def test_the_warnings_in_a_report_use_the_exact_boundaries(
    session: Session, settings: Settings
) -> None:
    """50 sent: one bounce is exactly 2 % (no warning); one complaint in 49 is far above."""
    campaign = add_campaign(session)
    people = [add_subscriber(session, f"p{i}@example.com") for i in range(50)]
    deliveries = [
        add_delivery(session, campaign, p, message_id=f"m{i}") for i, p in enumerate(people)
    ]
    events = [
        sg_event("delivered", d, p.email) for d, p in zip(deliveries[1:], people[1:], strict=True)
    ]
    events.append(sg_event("bounce", deliveries[0], people[0].email, type="bounce"))
    events.append(sg_event("spamreport", deliveries[1], people[1].email, at=later(5)))
    apply(session, settings, *events)
    report = campaign_report(session, campaign_id=campaign.id)
    assert (report.figure("bounces").rate, report.figure("complaints").rate) == (0.02, 0.020408)
    assert report.warnings == [
        "complaint rate 2.04% is at or above 0.1%: mailbox providers start filtering "
        "or blocking at this level"
    ]


def test_the_csv_holds_the_same_figures(session: Session, campaign: Campaign) -> None:
    lines = report_csv(campaign_report(session, campaign_id=campaign.id)).splitlines()
    cid = campaign.id
    assert lines[0] == "campaign_id,figure,label,count,rate,of"
    assert lines[1] == f"{cid},recipients,Recipients,7,,"
    assert lines[2] == f"{cid},sent,Sent,6,0.857143,recipients"
    assert lines[8] == f"{cid},complaints,Spam complaints,1,0.333333,delivered"
    assert lines[10] == f"{cid},unique_opens,Unique opens (people),2,0.666667,delivered"
    assert lines[12] == f"{cid},unique_clicks,Unique clicks (people),1,0.333333,delivered"
    assert lines[13] == f"{cid},machine_clicks,Machine clicks (link scanners),0,0.000000,delivered"
    assert len(lines) == 14


def test_the_timeline_counts_events_per_hour_without_machine_opens(
    session: Session, campaign: Campaign
) -> None:
    timeline = campaign_timeline(session, campaign_id=campaign.id)
    assert timeline.buckets == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert timeline.series == {
        "delivered": [3, 0, 0],
        "opens": [0, 3, 0],
        "clicks": [0, 1, 0],
        "bounces": [3, 0, 0],
        "complaints": [0, 1, 0],
        "unsubscribes": [0, 0, 1],
    }


def test_the_timeline_of_a_campaign_without_events_is_empty(session: Session) -> None:
    campaign = add_campaign(session)
    assert campaign_timeline(session, campaign_id=campaign.id).buckets == []


def own_hits(engine: Engine, settings: Settings, *hits: tuple[EventKind, Delivery, int]) -> None:
    """Opens and clicks as our own /o/ pixel and /r/ redirects record them, written by
    the real hit writer (tracking_event.provider "newsletter")."""
    writer = HitWriter(engine, settings)
    writer.add(
        [
            Hit(
                kind=kind,
                campaign_id=delivery.campaign_id,
                subscriber_id=delivery.subscriber_id,
                position=1 if kind is EventKind.CLICKED else None,
                url="https://example.com/stretches" if kind is EventKind.CLICKED else None,
                at=later(minutes),
                method="GET",
                user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
                ip="203.0.113.7",
                machine=None,
            )
            for kind, delivery, minutes in hits
        ]
    )
    assert writer.flush(everything=True) == len(hits)


@pytest.fixture
def tracked(session: Session, settings: Settings, engine: Engine) -> Campaign:
    """Three sent through the outbox or SMTP (no provider event comes back); our own
    tracking saw Ann open and click an hour later and Bob open two hours later."""
    campaign = add_campaign(session)
    ann, bob, _cy = (
        add_delivery(session, campaign, add_subscriber(session, f"{n}@example.com"))
        for n in ("ann", "bob", "cy")
    )
    own_hits(
        engine,
        settings,
        (EventKind.OPENED, ann, 65),
        (EventKind.CLICKED, ann, 66),
        (EventKind.OPENED, bob, 130),
    )
    session.expire_all()
    return campaign


def test_our_own_tracking_is_no_provider_reporting_deliveries(
    session: Session, tracked: Campaign
) -> None:
    report = campaign_report(session, campaign_id=tracked.id)
    assert report.provider_events is False
    assert report.to_dict()["figures"]["delivered"] == {"count": 3, "rate": 1.0}
    assert report.to_dict()["figures"]["unique_opens"] == {"count": 2, "rate": 0.666667}


def test_with_our_own_tracking_the_timeline_draws_sent_and_our_opens_and_clicks(
    session: Session, tracked: Campaign
) -> None:
    """The reviewer's case: opens tracked by our pixel made the chart's Delivered line
    flat at 0 (no provider "delivered" event ever comes) while the cards said 3."""
    timeline = campaign_timeline(session, campaign_id=tracked.id)
    assert timeline.provider_events is False
    assert timeline.buckets == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert timeline.series == {
        "sent": [3, 0, 0],
        "bounces": [0, 0, 0],
        "opens": [0, 1, 1],
        "clicks": [0, 1, 0],
        "unsubscribes": [0, 0, 0],
    }


def test_a_sendgrid_campaign_with_our_own_tracking_draws_sendgrids_deliveries(
    session: Session, settings: Settings, engine: Engine, tracked: Campaign
) -> None:
    ann = session.exec(
        select(Delivery).where(Delivery.campaign_id == tracked.id).order_by(Delivery.id)
    ).first()
    assert ann is not None
    apply(session, settings, sg_event("delivered", ann, "ann@example.com", at=later(1)))
    timeline = campaign_timeline(session, campaign_id=tracked.id)
    assert timeline.provider_events is True
    assert timeline.series["delivered"] == [1, 0, 0]
    assert timeline.series["opens"] == [0, 1, 1]


def test_without_any_tracking_the_timeline_draws_no_opens_or_clicks(session: Session) -> None:
    """Nothing could count them: no line at a misleading 0."""
    campaign = add_campaign(session)
    add_delivery(session, campaign, add_subscriber(session, "a@example.com"))
    timeline = campaign_timeline(session, campaign_id=campaign.id)
    assert timeline.series == {"sent": [1], "bounces": [0], "unsubscribes": [0]}


# ---------------------------------------------------------------- list growth

S = SubscriberStatus


def _change(
    session: Session,
    who: Subscriber,
    at: datetime,
    from_status: str | None,
    to_status: str,
    reason: str = "test",
) -> None:
    session.add(
        ConsentEvent(
            subscriber_id=who.id,
            at=at,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            source="form",
        )
    )
    session.commit()


def test_growth_per_week_counts_signups_unsubscribes_and_active(session: Session) -> None:
    monday = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)  # ISO week 46
    a = add_subscriber(session, "a@example.com", status=S.ACTIVE)
    b = add_subscriber(session, "b@example.com", status=S.UNSUBSCRIBED)
    c = add_subscriber(session, "c@example.com", status=S.BOUNCED)
    d = add_subscriber(session, "d@example.com", status=S.PENDING)
    _change(session, a, monday - timedelta(weeks=5), None, "pending")
    _change(session, a, monday - timedelta(weeks=5), "pending", "active")  # before the window
    _change(session, b, monday, None, "pending")
    _change(session, b, monday + timedelta(hours=1), "pending", "active")
    _change(session, c, monday + timedelta(days=2), None, "active", "import")
    _change(session, c, monday + timedelta(days=2), "active", "active", "topics changed")
    _change(session, b, monday + timedelta(weeks=1), "active", "unsubscribed")
    _change(session, d, monday + timedelta(weeks=1), None, "pending")  # never confirmed
    _change(session, c, monday + timedelta(weeks=2, days=6), "active", "bounced")
    growth = list_growth(session, weeks=4, now=monday + timedelta(weeks=2, days=6))
    assert growth_dicts(growth) == [
        {"week": "2026-W45", "start": "2026-11-02", "active": 1, "signups": 0, "unsubscribes": 0},
        {"week": "2026-W46", "start": "2026-11-09", "active": 3, "signups": 2, "unsubscribes": 0},
        {"week": "2026-W47", "start": "2026-11-16", "active": 2, "signups": 0, "unsubscribes": 1},
        {"week": "2026-W48", "start": "2026-11-23", "active": 1, "signups": 0, "unsubscribes": 0},
    ]


def test_growth_of_an_empty_list_is_zero_every_week(session: Session) -> None:
    growth = list_growth(session, weeks=2, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert [(g.week, g.active, g.signups) for g in growth] == [
        ("2025-W52", 0, 0),
        ("2026-W01", 0, 0),
    ]


def test_people_loaded_without_history_count_as_active_all_along(session: Session) -> None:
    for n in "abc":
        add_subscriber(session, f"{n}@example.com", status=S.ACTIVE)
    growth = list_growth(session, weeks=2, now=datetime(2026, 11, 25, tzinfo=UTC))
    assert [g.active for g in growth] == [3, 3]


# ---------------------------------------------------------------- human and machine clicks

LINKS = ("https://example.com/stretches", "https://example.com/cramps")


@pytest.fixture
def scanned(session: Session, settings: Settings) -> Campaign:
    """Four delivered: a scanner follows every link of Ann's and Bob's mail, then Ann
    clicks one link twice herself; Cat only opens; Dan does nothing (issue 15, point 2)."""
    campaign = add_campaign(session, subject="Sciatica at the desk")
    ann, bob, cat, _dan = (
        add_delivery(session, campaign, add_subscriber(session, f"{n}@example.com"))
        for n in ("ann", "bob", "cat", "dan")
    )
    for delivery in (ann, bob):
        for url in LINKS:
            engagement(session, settings, delivery, "clicked", machine=True, url=url)
    for minutes in (5, 9):
        engagement(session, settings, ann, "clicked", at=later(minutes), url=LINKS[0])
    engagement(session, settings, cat, "opened", at=later(3))
    return campaign


def test_human_and_machine_clicks_are_figures_side_by_side(
    session: Session, scanned: Campaign
) -> None:
    figures = campaign_report(session, campaign_id=scanned.id).to_dict()["figures"]
    assert figures["delivered"] == {"count": 4, "rate": 1.0}
    assert figures["unique_clicks"] == {"count": 1, "rate": 0.25}
    assert figures["machine_clicks"] == {"count": 2, "rate": 0.5}
    assert figures["unique_opens"] == {"count": 1, "rate": 0.25}
    assert figures["machine_opens"] == {"count": 0, "rate": 0.0}


def test_the_timeline_counts_only_human_clicks(session: Session, scanned: Campaign) -> None:
    assert sum(campaign_timeline(session, campaign_id=scanned.id).series["clicks"]) == 2


def test_a_campaign_only_scanners_clicked_counts_them_from_the_ledger(session: Session) -> None:
    """No event, but the ledger counts a scanner's click: the figures are known, not n/a."""
    campaign = add_campaign(session)
    delivery = add_delivery(session, campaign, add_subscriber(session, "a@example.com"))
    delivery.machine_click_count = 3
    session.add(delivery)
    session.commit()
    figures = campaign_report(session, campaign_id=campaign.id).to_dict()["figures"]
    assert figures["machine_clicks"] == {"count": 1, "rate": 1.0}
    assert figures["unique_clicks"] == {"count": 0, "rate": 0.0}


def test_without_engagement_data_machine_clicks_are_not_available(session: Session) -> None:
    campaign = add_campaign(session)
    add_delivery(session, campaign, add_subscriber(session, "a@example.com"))
    report = campaign_report(session, campaign_id=campaign.id)
    assert (report.figure("machine_clicks").count, report.figure("machine_clicks").rate) == (
        NA,
        None,
    )
