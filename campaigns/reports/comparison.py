"""How the last issues compare (issue 15, point 7): human open rate, click rate,
unsubscribes and bounces of each of the last N sent campaigns, for a table and a chart.

The figures are those of the campaign report (campaigns/reports/figures.py), read the
same way for every provider: one grouped query over the delivery ledger for all the
issues at once, the provider's rejections from the tracking events, and unsubscribes
through each issue's own link from the consent history.

Rates are fractions of delivered (sent less bounced and rejected,
:func:`campaigns.reports.sources.delivered_count`): ``human_open_rate`` counts people
who opened at least once as a person (machine opens, such as Apple Mail Privacy
Protection's prefetch, are apart), ``click_rate`` people who clicked as a person (a
link scanner's clicks, ``delivery.machine_click_count``, never count: issue 15 point 2),
``unsubscribe_rate`` people who left through the issue. ``bounce_rate`` alone is of
sent, since a bounced message was never delivered (the report's warning uses the same
base). Opens and clicks are None (n/a) for an issue nothing could count them for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, TrackingEvent
from campaigns.reports.sources import (
    delivered_count,
    has_engagement_data,
    link_unsubscribes_only,
)
from campaigns.tracking.events import EventKind
from newsletter.clock import as_utc
from newsletter.errors import InvalidInput

DEFAULT_ISSUES = 12
MAX_ISSUES = 104  # two years of weekly issues


@dataclass(frozen=True)
class IssueFigures:
    """One issue's line of the comparison (rates rounded to 6 places; None: n/a)."""

    campaign_id: int
    subject: str
    week: str | None
    sent_at: datetime | None
    sent: int
    delivered: int
    human_opens: int | None
    human_open_rate: float | None
    clicks: int | None
    click_rate: float | None
    unsubscribes: int
    unsubscribe_rate: float
    bounces: int
    bounce_rate: float

    @property
    def label(self) -> str:
        """Short x-axis label: the ISO week, else the date sending began, else the id."""
        if self.week:
            return self.week
        return f"{self.sent_at:%Y-%m-%d}" if self.sent_at else f"#{self.campaign_id}"


@dataclass(frozen=True)
class Comparison:
    """The last issues, oldest first (the order a chart reads)."""

    issues: list[IssueFigures]

    def to_dict(self) -> dict[str, object]:
        return {
            "issues": [
                {**asdict(i), "sent_at": i.sent_at.isoformat() if i.sent_at else None}
                for i in self.issues
            ],
            "rates_of": {
                "human_open_rate": "delivered",
                "click_rate": "delivered",
                "unsubscribe_rate": "delivered",
                "bounce_rate": "sent",
            },
        }


def _rate(count: int, of: int) -> float:
    return round(count / of, 6) if of else 0.0


def _ledger_counts(session: Session, ids: list[int]) -> dict[int, tuple[int, ...]]:
    """campaign id -> (sent, bounces, unsubscribed, human openers, clickers)."""
    d = Delivery
    positive = lambda column: sa.func.sum(sa.case((column, 1), else_=0))  # noqa: E731
    rows = session.exec(
        select(  # type: ignore[call-overload]
            d.campaign_id,
            positive(col(d.status) == DeliveryStatus.SENT),
            positive(col(d.bounce).is_not(None)),
            positive(col(d.unsubscribed)),
            positive(col(d.open_count) > 0),
            positive(col(d.click_count) > 0),
        )
        .where(col(d.campaign_id).in_(ids))
        .group_by(col(d.campaign_id))
    ).all()
    return {int(cid): tuple(int(v or 0) for v in values) for cid, *values in rows}


def _rejections(session: Session, ids: list[int]) -> dict[int, int]:
    rows = session.exec(
        select(TrackingEvent.campaign_id, sa.func.count(sa.distinct(TrackingEvent.delivery_id)))
        .where(
            col(TrackingEvent.campaign_id).in_(ids),
            col(TrackingEvent.kind) == EventKind.REJECTED,
        )
        .group_by(col(TrackingEvent.campaign_id))
    ).all()
    return {int(cid): int(n) for cid, n in rows}


def compare_issues(session: Session, *, last: int = DEFAULT_ISSUES) -> Comparison:
    """The last ``last`` sent campaigns (by when sending began), oldest first.

    Raises InvalidInput (field "last") outside 1..:data:`MAX_ISSUES`.
    """
    if not 1 <= last <= MAX_ISSUES:
        raise InvalidInput(f"compare 1 to {MAX_ISSUES} issues, not {last}", field="last")
    began = sa.func.coalesce(col(Campaign.started_at), col(Campaign.finished_at))
    campaigns = session.exec(
        select(Campaign)
        .where(col(Campaign.status) == CampaignStatus.SENT.value)
        .order_by(began.desc(), col(Campaign.id).desc())
        .limit(last)
    ).all()
    ids = [c.id for c in campaigns if c.id is not None]
    counts = _ledger_counts(session, ids)
    rejected = _rejections(session, ids)
    issues = [
        _figures(session, c, counts.get(c.id, (0, 0, 0, 0, 0)), rejected.get(c.id, 0))
        for c in reversed(campaigns)
        if c.id is not None
    ]
    return Comparison(issues)


def _figures(
    session: Session, campaign: Campaign, counts: tuple[int, ...], rejected: int
) -> IssueFigures:
    assert campaign.id is not None
    sent, bounces, unsubscribed, openers, clickers = counts
    delivered = delivered_count(sent=sent, bounces=bounces, rejected=rejected)
    unsubscribes = unsubscribed + link_unsubscribes_only(session, campaign.id)
    known = has_engagement_data(session, campaign.id)
    began = campaign.started_at or campaign.finished_at
    return IssueFigures(
        campaign_id=campaign.id,
        subject=campaign.subject,
        week=campaign.week,
        sent_at=as_utc(began) if began else None,
        sent=sent,
        delivered=delivered,
        human_opens=openers if known else None,
        human_open_rate=_rate(openers, delivered) if known else None,
        clicks=clickers if known else None,
        click_rate=_rate(clickers, delivered) if known else None,
        unsubscribes=unsubscribes,
        unsubscribe_rate=_rate(unsubscribes, delivered),
        bounces=bounces,
        bounce_rate=_rate(bounces, sent),
    )
