"""Issue 16's scheduler jobs for the later parts of a send: a subject test's winner, a
resend to those who did not open, and local-time waves whose instant has come.

Kept apart from campaigns.jobs so that module stays short; campaigns.jobs runs these by
name (its ``RUNNERS``) like its own, between the same two log lines.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from campaigns import resends, subject_tests
from campaigns.delivery import waves
from newsletter import db, job_runs
from newsletter.clock import as_utc
from newsletter.job_runs import RunNote
from newsletter.settings import Settings

ACTOR = "scheduler"  # the same actor as campaigns.jobs: the scheduler


def _engine(settings: Settings) -> Engine:
    return db.get_engine(settings.database_url)


def subject_test_winners(settings: Settings, now: datetime, *, instance: str = ACTOR) -> RunNote:
    """Choose the winner of every subject test whose wait is over; the campaign goes back
    to 'sending' and the next dispatch sends the winner to the rest."""
    engine = _engine(settings)
    with job_runs.recording(engine, job=job_runs.SUBJECT_TESTS, instance=instance, now=now) as note:
        with db.session_scope(engine) as session:
            chosen = subject_tests.decide_due(session, now=as_utc(now), actor=ACTOR)
        if not chosen:
            note.outcome = job_runs.IDLE
        note.detail = "; ".join(f"campaign {cid}: variant {label} won" for cid, label in chosen)
    return note


def due_resends(settings: Settings, now: datetime, *, instance: str = ACTOR) -> RunNote:
    """Turn due resends into campaigns scheduled now (the next dispatch sends them)."""
    engine = _engine(settings)
    with job_runs.recording(engine, job=job_runs.RESENDS, instance=instance, now=now) as note:
        with db.session_scope(engine) as session:
            made = resends.trigger_due(session, now=as_utc(now), actor=ACTOR)
        if not made:
            note.outcome = job_runs.IDLE
        note.detail = "; ".join(
            f"campaign {cid}: resend is campaign {new} to {n} who did not open"
            for cid, new, n in made
        )
    return note


def release_waves(settings: Settings, now: datetime, *, instance: str = ACTOR) -> RunNote:
    """Queue the readers of every local-time wave whose instant has come, for campaigns
    that are sending (campaigns.delivery.waves); the next dispatch sends them."""
    engine = _engine(settings)
    with job_runs.recording(engine, job=job_runs.RELEASE_WAVES, instance=instance, now=now) as note:
        with db.session_scope(engine) as session:
            due = waves.campaigns_with_due_waves(session, now=as_utc(now))
            lines = []
            for campaign_id in due:
                released = waves.release_due(
                    session, settings=settings, campaign_id=campaign_id, now=as_utc(now)
                )
                lines.append(f"campaign {campaign_id}: released {released} wave(s)")
        if not due:
            note.outcome = job_runs.IDLE
        note.detail = "; ".join(lines)
    return note
