"""The scheduler's job bodies as plain functions of (settings, now).

The clock is a parameter so tests can drive a whole month, a DST change or an outage
without sleeping. Every job is idempotent: the weekly issue is unique per ISO week and the
delivery ledger sends each reader once, so a job that runs twice (a restart, a misfire, a
take-over by a standby) does no harm. :func:`run` runs one by name between two
structured log lines (``event``, ``job``, ``outcome``...); :func:`missed` records a run
that came too late to make up for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import actions, weekly_plan, workflow
from campaigns.content.assembly import AssembledIssue, assemble_week
from campaigns.content.preflight import require_preflight
from campaigns.delivery import waves
from campaigns.delivery.deferred_sends import retry_due
from campaigns.delivery.sending import send_campaign
from campaigns.follow_up_jobs import due_resends, release_waves, subject_test_winners
from campaigns.models import CampaignStatus
from campaigns.outgoing_webhooks import deliver as deliver_webhooks
from campaigns.tracking.bounces import fetch_bounces
from campaigns.webhook_delivery import due_count
from newsletter import db, job_runs, metrics, webhook_outbox
from newsletter.clock import as_utc
from newsletter.errors import ContentError, NewsletterError, StateError
from newsletter.job_runs import RunNote
from newsletter.settings import Settings
from subscribers.housekeeping import expire_pending

log = logging.getLogger("newsletter.jobs")
S = CampaignStatus
ACTOR = "scheduler"
INTERRUPTED = "interrupted"


def _engine(settings: Settings) -> Engine:
    return db.get_engine(settings.database_url)


def weekly_assembly(
    settings: Settings,
    now: datetime,
    *,
    fired_at: datetime | None = None,
    instance: str = ACTOR,
) -> RunNote:
    """Assemble the issue for the first send slot at or after ``fired_at`` (default ``now``).

    ``fired_at`` is the cron time this run belongs to: a run that comes late after an
    outage still builds that week's issue (scheduled in the past, so it goes out at once)
    rather than next week's. Too few snippets skip the week; an issue that fails
    preflight stays a draft with the reasons in ``campaign.error``.
    """
    engine = _engine(settings)
    with job_runs.recording(
        engine, job=job_runs.WEEKLY_ASSEMBLY, instance=instance, now=now
    ) as note:
        slot = weekly_plan.next_send_at(settings, after=as_utc(fired_at or now))
        day = weekly_plan.to_local(slot, settings).date()
        try:
            with db.session_scope(engine) as session:
                issue = assemble_week(session, settings=settings, day=day, actor=ACTOR)
                note.outcome, note.detail = _schedule_issue(session, settings, issue, slot)
        except ContentError as err:
            note.outcome = job_runs.SKIPPED
            note.detail = f"{weekly_plan.iso_week(day)}: no issue this week: {err}"
    return note


def _schedule_issue(
    session: Session, settings: Settings, issue: AssembledIssue, slot: datetime
) -> tuple[str, str]:
    """A new issue that passes preflight is scheduled for ``slot`` (or awaits approval);
    the run's outcome and detail."""
    campaign = issue.campaign
    local = weekly_plan.format_local(slot, settings)
    if not issue.created:
        return job_runs.OK, (
            f"{campaign.week}: already assembled as campaign {campaign.id} ({campaign.status})"
        )
    try:
        require_preflight(session, settings=settings, campaign=campaign)
    except ContentError as err:
        campaign.error = str(err)
        session.add(campaign)
        return job_runs.FAILED, f"{campaign.week}: campaign {campaign.id} left as a draft: {err}"
    if settings.require_approval:
        return job_runs.OK, (
            f"{campaign.week}: campaign {campaign.id} is a draft awaiting approval for {local}"
        )
    workflow.transition(
        session,
        campaign=campaign,
        to=S.SCHEDULED,
        actor=ACTOR,
        reason=f"weekly issue {campaign.week} for {local}",
    )
    campaign.scheduled_at = slot
    session.add(campaign)
    return job_runs.OK, f"{campaign.week}: campaign {campaign.id} scheduled for {local}"


def dispatch(
    settings: Settings,
    now: datetime,
    *,
    instance: str = ACTOR,
    should_stop: Callable[[], bool] | None = None,
) -> RunNote:
    """Start campaigns that are due and resume those left in 'sending'.

    ``should_stop`` is asked after every batch: the batch in flight is recorded, then
    the send stops and stays 'sending', to be resumed by the next dispatch.
    """
    engine = _engine(settings)
    with job_runs.recording(engine, job=job_runs.DISPATCH, instance=instance, now=now) as note:
        with db.session_scope(engine) as session:
            ids = [c.id for c in actions.sending_campaigns(session)]
            # Issue 16: a campaign between its local-time waves waits for the next one.
            ids = [i for i in ids if i and not waves.waiting(session, campaign_id=i, now=now)]
            ids += [c.id for c in actions.due_campaigns(session, now=as_utc(now))]
        if not ids:
            note.outcome = job_runs.IDLE
            return note
        lines: list[str] = []
        failed = False
        for campaign_id in ids:
            assert campaign_id is not None
            if should_stop is not None and should_stop():
                note.outcome = INTERRUPTED
                lines.append("stopped before the next campaign")
                break
            try:
                if settings.sender == "queue":  # issue 17: the workers send it
                    lines.append(_hand_over(engine, settings, campaign_id, as_utc(now)))
                    continue
                with db.session_scope(engine) as session:
                    report = send_campaign(
                        session,
                        settings=settings,
                        campaign_id=campaign_id,
                        should_stop=should_stop,
                        actor=ACTOR,
                        now=as_utc(now),
                    )
                if report.stopped == "stop requested":
                    note.outcome = INTERRUPTED
                lines.append(
                    f"campaign {campaign_id}: {report.status}, sent {report.sent}, "
                    f"skipped {report.skipped}, failed {report.failed}"
                    + (f" ({report.stopped})" if report.stopped else "")
                )
                if note.outcome == INTERRUPTED:
                    break
            except StateError as err:  # paused/cancelled meanwhile, or another sender
                lines.append(f"campaign {campaign_id}: not sent now: {err}")
            except ContentError as err:
                failed = True
                lines.append(f"campaign {campaign_id}: {_unschedule(engine, campaign_id, err)}")
            except NewsletterError as err:
                failed = True
                lines.append(f"campaign {campaign_id}: {err}")
        if failed and note.outcome == job_runs.OK:
            note.outcome = job_runs.FAILED
        note.detail = "; ".join(lines)
    return note


def _hand_over(engine: Engine, settings: Settings, campaign_id: int, now: datetime) -> str:
    """Queue mode: prepare the campaign and queue its blocks for ``newsletter worker``."""
    from campaigns.delivery.workers.handover import hand_over  # procrastinate: queue only

    with db.session_scope(engine) as session:
        handed = hand_over(
            session, settings=settings, campaign_id=campaign_id, actor=ACTOR, now=now
        )
    return (
        f"campaign {campaign_id}: {handed.status}, handed to the workers: {handed.deferred} "
        f"blocks queued, {handed.pending} under way, {handed.queued} recipients queued"
    )


def _unschedule(engine: Engine, campaign_id: int, err: ContentError) -> str:
    """A due campaign that cannot go out goes back to draft, with the reason, for a fix."""
    with db.session_scope(engine) as session:
        campaign = actions.get_campaign(session, campaign_id=campaign_id)
        campaign.error = str(err)
        if campaign.status == S.SCHEDULED:
            workflow.transition(
                session, campaign=campaign, to=S.DRAFT, actor=ACTOR, reason=str(err)[:500]
            )
            return f"back to draft: {err}"
        session.add(campaign)
    return str(err)


def missed(
    settings: Settings,
    scheduled: datetime,
    *,
    job: str,
    instance: str = ACTOR,
    now: datetime | None = None,
) -> RunNote:
    """A run that came too late to make up for: a warning, and a ``skipped`` run."""
    engine = _engine(settings)
    with job_runs.recording(engine, job=job, instance=instance, now=now) as note:
        note.outcome = job_runs.SKIPPED
        note.detail = (
            f"missed the run due {weekly_plan.format_local(scheduled, settings)}: more than "
            f"{settings.misfire_grace_seconds} s late (NEWSLETTER_MISFIRE_GRACE_SECONDS), "
            "so it was not run"
        )
    _event(
        "missed: later than the grace time, not run",
        logging.WARNING,
        job=job,
        instance=instance,
        scheduled_at=as_utc(scheduled),
        detail=note.detail,
    )
    return note


def housekeeping(settings: Settings, now: datetime, *, instance: str = ACTOR) -> RunNote:
    """Expire unconfirmed sign-ups, prune old job runs and old outgoing webhook messages."""
    engine = _engine(settings)
    with job_runs.recording(engine, job=job_runs.HOUSEKEEPING, instance=instance, now=now) as note:
        with db.session_scope(engine) as session:
            expired = expire_pending(session, settings=settings, now=as_utc(now))
            hooks = webhook_outbox.prune(
                session, now=as_utc(now), retention_days=settings.webhook_retention_days
            )
        pruned = job_runs.prune(
            engine, now=as_utc(now), retention_days=settings.job_run_retention_days
        )
        note.detail = f"expired {expired} pending sign-ups, pruned {pruned} job runs" + (
            f" and {hooks} old webhook messages" if hooks else ""
        )
    return note


def bounces_wanted(settings: Settings) -> bool:
    """Whether the bounces job has anything to do: SMTP deferrals, or a bounce mailbox."""
    return settings.provider == "smtp" or bool(settings.bounce_imap_url)


def bounces(settings: Settings, now: datetime, *, instance: str = ACTOR) -> RunNote:
    """Issue 15: send due deferrals again (SMTP) and read the bounce mailbox, if set.

    A mailbox that cannot be read fails the run (recorded, logged); the next run tries again.
    """
    engine = _engine(settings)
    with job_runs.recording(engine, job=job_runs.BOUNCES, instance=instance, now=now) as note:
        lines = []
        if settings.provider == "smtp":
            with db.session_scope(engine) as session:
                retried = retry_due(session, settings=settings, now=as_utc(now))
            lines.append(
                f"deferred: tried {retried.tried}, sent {retried.sent}, "
                f"put off again {retried.deferred}"
            )
        if settings.bounce_imap_url:
            with db.session_scope(engine) as session:
                read = fetch_bounces(session, settings=settings)
            lines.append(
                f"mailbox: {read.messages} messages, {read.bounces} new bounces, "
                f"{read.not_bounces} left"
            )
        if not lines:
            note.outcome = job_runs.IDLE
        note.detail = "; ".join(lines) or "no SMTP provider and no bounce mailbox"
    return note


RUNNERS: dict[str, Callable[..., RunNote]] = {
    job_runs.WEEKLY_ASSEMBLY: weekly_assembly,
    job_runs.DISPATCH: dispatch,
    job_runs.HOUSEKEEPING: housekeeping,
    job_runs.SUBJECT_TESTS: subject_test_winners,
    job_runs.RESENDS: due_resends,
    job_runs.RELEASE_WAVES: release_waves,
    job_runs.BOUNCES: bounces,
}


def run(
    job: str,
    settings: Settings,
    now: datetime,
    *,
    instance: str = ACTOR,
    fired_at: datetime | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunNote | None:
    """Run the job named ``job`` between two log lines; an expected error is logged
    (and recorded by the job) rather than raised, so the scheduler keeps going."""
    extra: dict[str, Any] = {}
    if job == job_runs.WEEKLY_ASSEMBLY:
        extra["fired_at"] = fired_at
    elif job == job_runs.DISPATCH:
        extra["should_stop"] = should_stop
    started = time.monotonic()
    _event("job started", job=job, instance=instance)
    try:
        note = RUNNERS[job](settings, now, instance=instance, **extra)
    except Exception as err:
        _event("job failed", logging.ERROR, job=job, instance=instance, error=str(err))
        metrics.job_run(job, job_runs.FAILED)
        if not isinstance(err, NewsletterError):
            raise
        return None
    metrics.job_run(job, note.outcome)
    _event(
        "job finished",
        job=job,
        instance=instance,
        outcome=note.outcome,
        detail=note.detail,
        seconds=round(time.monotonic() - started, 3),
    )
    return note


def _event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """A structured log line: ``fields`` become JSON keys under the scheduler's logging."""
    log.log(level, msg, extra={"fields": {"event": msg, **fields}})


# ---------------------------------------------------------------- outgoing webhooks (issue 16)


def webhook_delivery(settings: Settings, now: datetime, *, instance: str = ACTOR) -> RunNote | None:
    """Deliver the outgoing webhooks due at ``now``. It runs every few seconds, so a run
    with nothing due is neither recorded nor logged (None); one with work is both."""
    engine = _engine(settings)
    if due_count(engine, now=as_utc(now)) == 0:
        return None
    started = time.monotonic()
    with job_runs.recording(
        engine, job=job_runs.WEBHOOK_DELIVERY, instance=instance, now=now
    ) as note:
        report = deliver_webhooks(engine, settings=settings, now=as_utc(now))
        note.detail = (
            f"delivered {report.delivered}, to retry {report.retrying}, failed {report.failed}"
            + (f"; disabled endpoints {report.disabled}" if report.disabled else "")
        )
        if report.failed:
            note.outcome = job_runs.FAILED
    metrics.job_run(job_runs.WEBHOOK_DELIVERY, note.outcome)
    _event(
        "job finished",
        job=job_runs.WEBHOOK_DELIVERY,
        instance=instance,
        outcome=note.outcome,
        detail=note.detail,
        seconds=round(time.monotonic() - started, 3),
    )
    return note
