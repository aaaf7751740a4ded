"""How an issue did and how the list grows: figures a marketer can read.

Campaign figures come from the delivery ledger (one row per recipient, updated by
tracking), so they are counts of people, not of events: a reader who opens five times is
one unique open. Machine opens (Apple Mail Privacy Protection) and machine clicks (link
scanners, issue 15 point 2) are shown apart and never count as opens or clicks. List
growth is rebuilt from the consent history, the only record of when someone joined or
left.

Unsubscribes through a newsletter's own link (its token carries the campaign id, see
subscribers.tokens) are recorded in the consent history with ``detail.campaign_id``; a
campaign's unsubscribes are the people the provider reported plus those, each once.
The figures are the same for every provider (issue 15, point 7; see
campaigns/reports/sources.py): delivered is sent less bounced and rejected; opens and
clicks are "n/a" only while nothing could have counted them, never a misleading 0.
Rates of engagement, complaints and unsubscribes are fractions of delivered; bounces
and rejections are fractions of sent (a bounced message was never delivered). When no
event came back (``provider_events`` False) the timeline shows what was sent per hour.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

import sqlalchemy as sa
from sqlmodel import Session, col, select

from campaigns import subject_tests
from campaigns.actions import get_campaign
from campaigns.models import Delivery, DeliveryStatus, TrackingEvent
from campaigns.reports.sources import (
    NA,
    delivered_count,
    has_engagement_data,
    has_provider_events,
    json_count,
    link_unsubscribe_times,
    link_unsubscribes_only,
    sent_per_bucket,
)
from campaigns.tracking.events import EventKind
from newsletter.clock import as_utc, utcnow
from subscribers.models import ConsentEvent, Subscriber, SubscriberStatus

# Mailbox providers' limits (Gmail/Yahoo bulk sender rules; common ESP guidance). Compared
# as exact fractions: a rounded rate would warn at 1000 in 1,000,001 and miss 2.00001 %.
COMPLAINT_RATE_LIMIT = Fraction(1, 1000)  # warn at or above 0.1 %
BOUNCE_RATE_LIMIT = Fraction(2, 100)  # warn above 2 %


@dataclass(frozen=True)
class Figure:
    """One line of the report: a count and, where it makes sense, a rate over ``of``."""

    name: str
    label: str
    count: int
    rate: float | None = None
    of: str | None = None


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    subject: str
    week: str | None
    status: str
    figures: list[Figure]
    warnings: list[str] = field(default_factory=list)
    provider_events: bool = True  # False: outbox/SMTP, nothing reports deliveries back
    # Issue 16: the subject test's variants, human figures, z-test and winner, if any.
    subject_test: dict[str, object] | None = None

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)

    def to_dict(self) -> dict[str, object]:
        return {
            "campaign_id": self.campaign_id,
            "subject": self.subject,
            "week": self.week,
            "status": self.status,
            "figures": {
                f.name: {"count": json_count(f.count), "rate": f.rate} for f in self.figures
            },
            "warnings": list(self.warnings),
            "provider_events": self.provider_events,
        } | ({"subject_test": self.subject_test} if self.subject_test is not None else {})


def _rate(count: int, of: int) -> float:
    return round(count / of, 6) if of else 0.0


def campaign_report(session: Session, *, campaign_id: int) -> CampaignReport:
    """All figures of one campaign with rates and the warnings a sender must heed."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    d = Delivery
    positive = lambda column: sa.func.sum(sa.case((column, 1), else_=0))  # noqa: E731
    row = session.exec(
        select(  # type: ignore[call-overload]
            sa.func.count(),
            positive(col(d.status) == DeliveryStatus.SENT),
            positive(col(d.bounce) == "hard"),
            positive(col(d.bounce) == "soft"),
            positive(col(d.complained)),
            positive(col(d.unsubscribed)),
            positive(col(d.open_count) > 0),
            positive(col(d.machine_open_count) > 0),
            positive(col(d.click_count) > 0),
            positive(col(d.machine_click_count) > 0),
        ).where(col(d.campaign_id) == campaign_id)
    ).one()
    (
        recipients,
        sent,
        hard,
        soft,
        complaints,
        unsubs,
        opens,
        machine_opens,
        clicks,
        machine_clicks,
    ) = (int(v or 0) for v in row)
    # Messages the provider refused to send; the figure keeps its published name, "dropped".
    rejected = int(
        session.exec(
            select(sa.func.count(sa.distinct(TrackingEvent.delivery_id))).where(
                col(TrackingEvent.campaign_id) == campaign_id,
                col(TrackingEvent.kind) == EventKind.REJECTED,
            )
        ).one()
    )
    events = has_provider_events(session, campaign_id)
    unsubs += link_unsubscribes_only(session, campaign_id)
    bounces = hard + soft
    delivered = delivered_count(sent=sent, bounces=bounces, rejected=rejected)
    base, base_name = delivered, "delivered"
    figures = [
        Figure("recipients", "Recipients", recipients),
        Figure("sent", "Sent", sent, _rate(sent, recipients), "recipients"),
        Figure("delivered", "Delivered", delivered, _rate(delivered, sent), "sent"),
        Figure("dropped", "Rejected by the provider", rejected, _rate(rejected, sent), "sent"),
        Figure("bounces", "Bounces", bounces, _rate(bounces, sent), "sent"),
        Figure("hard_bounces", "Hard bounces", hard, _rate(hard, sent), "sent"),
        Figure("soft_bounces", "Soft bounces", soft, _rate(soft, sent), "sent"),
        Figure("complaints", "Spam complaints", complaints, _rate(complaints, base), base_name),
        Figure("unsubscribes", "Unsubscribes", unsubs, _rate(unsubs, base), base_name),
        Figure(
            "unique_opens", "Unique opens (people)", opens, _rate(opens, delivered), "delivered"
        ),
        Figure(
            "machine_opens",
            "Machine opens (privacy proxies)",
            machine_opens,
            _rate(machine_opens, delivered),
            "delivered",
        ),
        Figure(
            "unique_clicks", "Unique clicks (people)", clicks, _rate(clicks, delivered), "delivered"
        ),
        Figure(
            "machine_clicks",
            "Machine clicks (link scanners)",
            machine_clicks,
            _rate(machine_clicks, delivered),
            "delivered",
        ),
    ]
    if not has_engagement_data(session, campaign_id):
        figures = [_unknown(f) if f.name in EVENT_FIGURES else f for f in figures]
    return CampaignReport(
        campaign_id=campaign_id,
        subject=campaign.subject,
        week=campaign.week,
        status=campaign.status,
        figures=figures,
        warnings=rate_warnings(
            complaints=complaints, delivered=delivered, bounces=bounces, sent=sent
        ),
        provider_events=events,
        subject_test=subject_tests.describe(session, campaign_id=campaign_id),
    )


# Figures only events can give (a provider's, or our own open and click tracking).
EVENT_FIGURES = frozenset({"unique_opens", "machine_opens", "unique_clicks", "machine_clicks"})


def _unknown(figure: Figure) -> Figure:
    return Figure(figure.name, figure.label, NA, None, figure.of)


def rate_warnings(*, complaints: int, delivered: int, bounces: int, sent: int) -> list[str]:
    """What a sender must heed before the next issue; empty when all is well."""
    warnings = []
    if complaints and delivered and Fraction(complaints, delivered) >= COMPLAINT_RATE_LIMIT:
        warnings.append(
            f"complaint rate {_rate(complaints, delivered):.2%} is at or above "
            f"{float(COMPLAINT_RATE_LIMIT):.1%}: "
            "mailbox providers start filtering or blocking at this level"
        )
    if bounces and sent and Fraction(bounces, sent) > BOUNCE_RATE_LIMIT:
        warnings.append(
            f"bounce rate {_rate(bounces, sent):.2%} is above {float(BOUNCE_RATE_LIMIT):.0%}: "
            "clean the list before the next send"
        )
    return warnings


def report_csv(report: CampaignReport) -> str:
    """The same figures as the table, one per row (rates as fractions, empty when none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["campaign_id", "figure", "label", "count", "rate", "of"])
    for f in report.figures:
        rate = "" if f.rate is None else f"{f.rate:.6f}"
        writer.writerow([report.campaign_id, f.name, f.label, f.count, rate, f.of or ""])
    return buffer.getvalue()


# ---------------------------------------------------------------- timeline of a campaign

TIMELINE_SERIES: dict[str, tuple[EventKind, ...]] = {
    "delivered": (EventKind.DELIVERED,),
    "opens": (EventKind.OPENED,),  # human opens only, see campaign_timeline
    "clicks": (EventKind.CLICKED,),
    "bounces": (EventKind.BOUNCED, EventKind.REJECTED),
    "complaints": (EventKind.COMPLAINED,),
    "unsubscribes": (EventKind.UNSUBSCRIBED,),
}


# Without a provider's delivery events: what our own records can tell, hour by hour.
# Bounces come back for SMTP (its replies, the bounce mailbox); opens and clicks from our
# own tracking, drawn only when something could count them (never a misleading 0).
OWN_SERIES = ("bounces", "opens", "clicks")


@dataclass(frozen=True)
class Timeline:
    """Events per hour since the first one: ``series[name][i]`` belongs to ``buckets[i]``.

    Without provider events (``provider_events`` False) the series are "sent" (messages
    handed to the outbox or SMTP server), "bounces", "opens" and "clicks" when our own
    tracking could count them, and "unsubscribes" (through the issue's link)."""

    campaign_id: int
    buckets: list[datetime]
    series: dict[str, list[int]]
    provider_events: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "campaign_id": self.campaign_id,
            "buckets": [b.isoformat() for b in self.buckets],
            "series": self.series,
            "provider_events": self.provider_events,
        }


def campaign_timeline(
    session: Session, *, campaign_id: int, bucket: timedelta = timedelta(hours=1)
) -> Timeline:
    """Deliveries and engagement over time, for a chart; machine opens are left out.
    Link unsubscribes (consent history) count with the provider's; without provider
    events, sent per bucket stands in for deliveries (sent is what delivered is made
    of, the report's rule) and our own bounces, opens and clicks are drawn."""
    get_campaign(session, campaign_id=campaign_id)  # NotFound, in the one wording
    events = has_provider_events(session, campaign_id)
    counted: list[tuple[datetime, str, int]] = [
        (at, "unsubscribes", 1) for at in link_unsubscribe_times(session, campaign_id)
    ]
    if events:
        names = list(TIMELINE_SERIES)
        counted += _event_times(session, campaign_id, names)
    else:
        engagement = has_engagement_data(session, campaign_id)
        own = [n for n in OWN_SERIES if engagement or n == "bounces"]
        names = ["sent", *own, "unsubscribes"]
        counted += _event_times(session, campaign_id, own)
        counted += [
            (at, "sent", n) for at, n in sent_per_bucket(session, campaign_id, bucket).items()
        ]
    if not counted:
        return Timeline(campaign_id, [], {name: [] for name in names}, events)
    step = bucket.total_seconds()
    start = datetime.fromtimestamp(min(at.timestamp() for at, _, _ in counted) // step * step, UTC)
    size = int((max(at for at, _, _ in counted) - start).total_seconds() // step) + 1
    series = {name: [0] * size for name in names}
    for at, name, n in counted:
        series[name][int((at - start).total_seconds() // step)] += n
    return Timeline(campaign_id, [start + i * bucket for i in range(size)], series, events)


def _event_times(
    session: Session, campaign_id: int, names: list[str]
) -> list[tuple[datetime, str, int]]:
    """(time, series, 1) of each human event the timeline series ``names`` count."""
    kinds = [k for name in names for k in TIMELINE_SERIES[name]]
    if not kinds:
        return []
    rows = session.exec(
        select(TrackingEvent.occurred_at, TrackingEvent.kind).where(
            col(TrackingEvent.campaign_id) == campaign_id,
            col(TrackingEvent.kind).in_(kinds),
            col(TrackingEvent.machine).is_(False),
        )
    ).all()
    series_of = {k: name for name, group in TIMELINE_SERIES.items() for k in group}
    return [(as_utc(at), series_of[EventKind(kind)], 1) for at, kind in rows]


# ---------------------------------------------------------------- list growth per week


@dataclass(frozen=True)
class GrowthWeek:
    week: str  # ISO week, "2026-W48"
    start: date  # its Monday
    active: int  # active subscribers at the end of the week
    signups: int  # people who became active (confirmed or came back) during the week
    unsubscribes: int


def list_growth(
    session: Session, *, weeks: int = 12, now: datetime | None = None
) -> list[GrowthWeek]:
    """The last ``weeks`` ISO weeks up to the current one, oldest first.

    Sign-ups and unsubscribes are counted from the consent history. The active count is
    anchored on today's real count and walked back through the history, so people added
    without a history row (a bulk load) never make the curve negative.
    """
    moment = as_utc(now or utcnow())
    today = moment.date()
    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=weeks - 1)
    active = SubscriberStatus.ACTIVE.value
    active_now = session.exec(
        select(sa.func.count()).select_from(Subscriber).where(col(Subscriber.status) == active)
    ).one()
    changes = session.exec(
        select(ConsentEvent.at, ConsentEvent.from_status, ConsentEvent.to_status)
        .where(
            sa.or_(
                col(ConsentEvent.from_status).is_(None),
                col(ConsentEvent.from_status) != col(ConsentEvent.to_status),
            )
        )
        .where(col(ConsentEvent.at) >= datetime.combine(first_monday, time(), UTC))
    ).all()
    per_week: dict[date, Counter[str]] = {}
    for at, from_status, to_status in changes:
        when = as_utc(at)
        if when > moment:
            continue
        day = when.date()
        counts = per_week.setdefault(day - timedelta(days=day.weekday()), Counter())
        counts["delta"] += int(to_status == active) - int(from_status == active)
        counts["signups"] += int(to_status == active)
        counts["unsubscribes"] += int(to_status == SubscriberStatus.UNSUBSCRIBED.value)
    result = []
    running = active_now  # at the end of the current week, walking backwards
    for monday in reversed(list(_mondays(first_monday, this_monday))):
        counts = per_week.get(monday, Counter())
        iso = monday.isocalendar()
        result.append(
            GrowthWeek(
                week=f"{iso.year}-W{iso.week:02d}",
                start=monday,
                active=max(running, 0),
                signups=counts["signups"],
                unsubscribes=counts["unsubscribes"],
            )
        )
        running -= counts["delta"]
    return result[::-1]


def _mondays(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(weeks=1)


def growth_dicts(growth: list[GrowthWeek]) -> list[dict[str, object]]:
    return [{**asdict(g), "start": g.start.isoformat()} for g in growth]
