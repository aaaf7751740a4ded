"""What the console's dashboard and report pages show (issue 14), one call per page.

- :func:`dashboard`: the next scheduled issue (its time in the list's time zone), the
  last sent issue's figures, the list's growth, and what needs a marketer's attention:
  a draft whose preflight failed, a paused or failed campaign, no active scheduler (or
  a scheduler job whose last run failed), and the rate warnings of the last issue.
- :func:`campaign_page`: a campaign's figures (``figures.campaign_report``) and its
  most clicked links, by people (a link scanner's clicks are counted beside them).
- :func:`campaign_chart_png` and :func:`growth_chart_png`: the reports' PNG charts
  (``charts``) as bytes, for the pages' ``<img>``.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from campaigns import views, weekly_plan
from campaigns.models import Campaign, CampaignStatus, TrackingEvent
from campaigns.reports.charts import campaign_chart, growth_chart
from campaigns.reports.figures import (
    CampaignReport,
    GrowthWeek,
    campaign_report,
    campaign_timeline,
    list_growth,
)
from campaigns.tracking.events import EventKind
from newsletter import job_runs
from newsletter.settings import Settings

S = CampaignStatus
GROWTH_WEEKS = 12
STARTED = (S.SENDING, S.PAUSED, S.SENT, S.CANCELLED, S.FAILED)
CLICKS_READ_AT_MOST = 200_000  # click events read for the top links of one campaign


@dataclass(frozen=True)
class Attention:
    """Something to act on: what, and where to look (a console path or None)."""

    text: str
    href: str | None = None


@dataclass(frozen=True)
class Dashboard:
    next_issue: views.CampaignView | None
    last_issue: CampaignReport | None
    growth: list[GrowthWeek]
    warnings: list[Attention] = field(default_factory=list)
    # With nothing scheduled, the newest draft: where this week's issue is being made.
    draft: views.CampaignView | None = None


@dataclass(frozen=True)
class LinkClicks:
    url: str
    clicks: int  # every human click event
    people: int  # distinct subscribers who clicked (human clicks only)
    machine_clicks: int = 0  # clicks by link scanners (``machine``), never in ``clicks``


@dataclass(frozen=True)
class ReportPage:
    report: CampaignReport
    top_links: list[LinkClicks]


def _next_issue(session: Session, settings: Settings) -> views.CampaignView | None:
    campaign = session.exec(
        select(Campaign)
        .where(Campaign.status == S.SCHEDULED)
        .order_by(col(Campaign.scheduled_at), col(Campaign.id))
        .limit(1)
    ).first()
    return views.view(campaign, settings=settings) if campaign else None


def _newest_draft(session: Session, settings: Settings) -> views.CampaignView | None:
    campaign = session.exec(
        select(Campaign)
        .where(Campaign.status == S.DRAFT)
        .order_by(col(Campaign.id).desc())
        .limit(1)
    ).first()
    return views.view(campaign, settings=settings) if campaign else None


def _last_issue(session: Session) -> Campaign | None:
    return session.exec(
        select(Campaign)
        .where(col(Campaign.status).in_([S.SENT, S.SENDING]))
        .order_by(col(Campaign.started_at).desc(), col(Campaign.id).desc())
        .limit(1)
    ).first()


def _campaign_warnings(session: Session) -> list[Attention]:
    watched = session.exec(
        select(Campaign)
        .where(
            (col(Campaign.status).in_([S.PAUSED, S.FAILED]))
            | ((Campaign.status == S.DRAFT) & col(Campaign.error).is_not(None))
        )
        .order_by(col(Campaign.id).desc())
        .limit(20)
    ).all()
    warnings = []
    for c in watched:
        href = f"/admin/campaigns/{c.id}"
        if c.status == S.DRAFT:
            text = f"Campaign {c.id} “{c.subject}” failed preflight: {c.error}"
        elif c.status == S.PAUSED:
            text = f"Campaign {c.id} “{c.subject}” is paused"
        else:
            text = f"Campaign {c.id} “{c.subject}” failed: {c.error or 'see its log'}"
        warnings.append(Attention(text, href))
    return warnings


def _scheduler_warnings(session: Session) -> list[Attention]:
    state = job_runs.status(session.get_bind())  # type: ignore[arg-type]
    warnings = []
    if state.active_instance is None:
        warnings.append(
            Attention(
                "No scheduler is running: scheduled issues will not be sent "
                "(start it with 'newsletter scheduler run')"
            )
        )
    for job in state.failed_jobs():
        warnings.append(
            Attention(f"The scheduler's last '{job.job}' run failed: {job.last_detail}")
        )
    return warnings


def dashboard(session: Session, *, settings: Settings) -> Dashboard:
    """Everything the dashboard shows, read in one go."""
    last = _last_issue(session)
    last_report = campaign_report(session, campaign_id=last.id) if last and last.id else None
    warnings = _campaign_warnings(session) + _scheduler_warnings(session)
    if last_report is not None:
        href = f"/admin/reports/{last_report.campaign_id}"
        warnings += [Attention(f"Last issue: {w}", href) for w in last_report.warnings]
    next_issue = _next_issue(session, settings)
    return Dashboard(
        next_issue=next_issue,
        last_issue=last_report,
        growth=list_growth(session, weeks=GROWTH_WEEKS),
        warnings=warnings,
        draft=None if next_issue else _newest_draft(session, settings),
    )


def reportable(
    session: Session, *, settings: Settings, limit: int = 100
) -> list[views.CampaignView]:
    """Campaigns that have started sending, newest first: the ones with a report."""
    rows = session.exec(
        select(Campaign)
        .where(col(Campaign.status).in_(STARTED), col(Campaign.started_at).is_not(None))
        .order_by(col(Campaign.started_at).desc(), col(Campaign.id).desc())
        .limit(limit)
    ).all()
    return [views.view(c, settings=settings) for c in rows]


def top_links(session: Session, *, campaign_id: int, limit: int = 10) -> list[LinkClicks]:
    """The links people clicked most in a campaign, from the click events (their ``url``:
    SendGrid Event Webhook, our own redirects); ties in the order first clicked. A link
    scanner's clicks (``machine``, campaigns.tracking.classify) are counted apart and
    never rank a link: a link only scanners clicked is not listed (issue 15, point 2)."""
    rows = session.exec(
        select(TrackingEvent.payload, TrackingEvent.subscriber_id, TrackingEvent.machine)
        .where(
            TrackingEvent.campaign_id == campaign_id,
            TrackingEvent.kind == EventKind.CLICKED.value,
        )
        .order_by(col(TrackingEvent.occurred_at), col(TrackingEvent.id))
        .limit(CLICKS_READ_AT_MOST)
    ).all()
    clicks: Counter[str] = Counter()
    machine_clicks: Counter[str] = Counter()
    people: dict[str, set[int]] = {}
    for payload, subscriber_id, machine in rows:
        url = (payload or {}).get("url")
        if not isinstance(url, str) or not url:
            continue
        if machine:
            machine_clicks[url] += 1
            continue
        clicks[url] += 1
        if subscriber_id is not None:
            people.setdefault(url, set()).add(subscriber_id)
    return [
        LinkClicks(
            url=url,
            clicks=count,
            people=len(people.get(url, ())),
            machine_clicks=machine_clicks[url],
        )
        for url, count in clicks.most_common(limit)
    ]


def campaign_page(session: Session, *, campaign_id: int) -> ReportPage:
    """A campaign's report and top links; NotFound for an unknown campaign."""
    report = campaign_report(session, campaign_id=campaign_id)
    return ReportPage(report=report, top_links=top_links(session, campaign_id=campaign_id))


def campaign_chart_png(session: Session, *, settings: Settings, campaign_id: int) -> bytes:
    """The campaign's timeline chart (1000x500 px PNG), its hours in the list's time zone
    (NEWSLETTER_TIMEZONE) as every other time in the console; NotFound for an unknown one."""
    report = campaign_report(session, campaign_id=campaign_id)
    timeline = campaign_timeline(session, campaign_id=campaign_id)
    buffer = io.BytesIO()
    title = f"Campaign {campaign_id}: {report.subject}"
    campaign_chart(timeline, buffer, title=title, zone=weekly_plan.zone(settings))
    return buffer.getvalue()


def growth_chart_png(session: Session, *, weeks: int = GROWTH_WEEKS) -> bytes:
    """The list-growth chart of the last ``weeks`` weeks (1000x500 px PNG)."""
    buffer = io.BytesIO()
    growth_chart(list_growth(session, weeks=weeks), buffer)
    return buffer.getvalue()
