"""Subject tests: two or three subjects go to a sample, the winner goes to the rest.

The life of a test (``SubjectTest.phase``), driven by the ordinary send path:

1. ``create_test`` on a draft or scheduled campaign: the variants A, B (, C) are stored.
2. The campaign is sent as usual (``campaigns send`` or its schedule). Queueing puts only
   the sample in the ledger, grouped by variant, and each variant's content is compiled
   once; the send loop picks the content by the delivery's variant
   (``campaigns.delivery.variant_sends``, which also says how the sample is drawn).
3. When the sample is sent, the campaign is paused (``variant_sends.finish_run``) and the
   winner is due ``wait`` later: chosen by the scheduler (:func:`decide_due`) on human unique clicks
   or opens (``campaigns.reports.variants``), or by hand (:func:`choose_winner`).
4. The winner's subject goes to the rest: the campaign goes back to sending, the rest of
   the audience is queued (the ledger's unique (campaign, subscriber) keeps the sample
   out) and sent with the winner's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from campaigns.actions import get_campaign
from campaigns.delivery.variant_sends import (
    DECIDED,
    LABELS,
    READY,
    REST,
    WAITING,
    variant_rows,
)
from campaigns.delivery.waves import has_waves
from campaigns.models import Campaign, CampaignStatus
from campaigns.reports.variants import leader, variant_figures
from campaigns.variant_models import CampaignVariant, SubjectTest
from campaigns.workflow import transition
from newsletter import audit
from newsletter.clock import as_utc, utcnow
from newsletter.errors import HeaderInjection, InvalidInput, NotFound, StateError
from newsletter.headers import check_header_text, shown_alike

S = CampaignStatus
METRICS = ("clicks", "opens")
MAX_WAIT = timedelta(days=30)


# ---------------------------------------------------------------- setting a test up


def _check_line(name: str, value: str) -> None:
    try:
        check_header_text("Subject", value)
    except HeaderInjection:
        raise InvalidInput(
            f"the {name} contains a control character (a line break ends a header, "
            "RFC 5322 2.2); use plain text on one line",
            field=name,
        ) from None


def _variants(subjects: Sequence[str], preheaders: Sequence[str], default: str) -> list[tuple]:
    """[(label, subject, preheader)]; one preheader applies to all, or one per subject."""
    subjects = [s.strip() for s in subjects]
    if not 2 <= len(subjects) <= len(LABELS):
        raise InvalidInput("a subject test needs 2 or 3 subjects", field="subject")
    shown = {shown_alike(s) for s in subjects}  # "Same" and "same " are one to a reader
    if any(not s for s in subjects) or len(shown) != len(subjects):
        raise InvalidInput("the subjects must be different and not empty", field="subject")
    if len(preheaders) not in (0, 1, len(subjects)):
        raise InvalidInput("give one preheader, or one per subject", field="preheader")
    heads = list(preheaders) * len(subjects) if len(preheaders) == 1 else list(preheaders)
    heads = [h.strip() for h in heads] or [default] * len(subjects)
    for subject, head in zip(subjects, heads, strict=True):
        _check_line("subject", subject)
        _check_line("preheader", head)
        if len(subject) > 300 or len(head) > 300:
            raise InvalidInput("a subject or preheader has more than 300 characters")
    return list(zip(LABELS, subjects, heads, strict=False))


def create_test(
    session: Session,
    *,
    campaign_id: int,
    subjects: Sequence[str],
    preheaders: Sequence[str] = (),
    sample_percent: int = 20,
    wait: timedelta = timedelta(hours=4),
    metric: str = "clicks",
    actor: str,
) -> dict[str, object]:
    """Give a draft or scheduled campaign a subject test; the test as :func:`describe` shows it.

    Raises InvalidInput (2-3 different one-line subjects; sample 1-99 %; wait over 0 and
    at most 30 days; metric clicks or opens), NotFound, StateError (the campaign has
    begun sending or already has a test).
    """
    if not 1 <= sample_percent <= 99:
        raise InvalidInput("the sample is 1 to 99 % of the audience", field="sample")
    if not timedelta(0) < wait <= MAX_WAIT:
        raise InvalidInput("the wait is more than 0 and at most 30 days (720 hours)", field="wait")
    if metric not in METRICS:
        raise InvalidInput("the metric is clicks or opens", field="metric")
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    variants = _variants(subjects, preheaders, campaign.preheader)
    if campaign.status not in (S.DRAFT, S.SCHEDULED) or campaign.queued_at is not None:
        raise StateError(
            f"campaign {campaign_id} is {campaign.status}: a subject test is set up before "
            "sending begins"
        )
    if session.get(SubjectTest, campaign_id) is not None:
        raise StateError(f"campaign {campaign_id} already has a subject test")
    if has_waves(session, campaign_id=campaign_id):
        # The sample and the rest are queued by the test's phases, local-time waves by
        # zone: the two cannot both decide who is queued when.
        raise StateError(
            f"campaign {campaign_id} is sent at the readers' local time: a subject test needs "
            "one send time (schedule it at one time first)"
        )
    session.add(
        SubjectTest(
            campaign_id=campaign_id,
            sample_percent=sample_percent,
            wait_seconds=int(wait.total_seconds()),
            metric=metric,
            created_by=actor,
        )
    )
    for label, subject, head in variants:
        session.add(
            CampaignVariant(campaign_id=campaign_id, label=label, subject=subject, preheader=head)
        )
    session.flush()
    described = describe(session, campaign_id=campaign_id)
    assert described is not None
    # Issue 14's rule: every change from the console or the API is in the audit log.
    settings_after = {
        "subjects": {label: subject for label, subject, _head in variants},
        "sample_percent": sample_percent,
        "wait_seconds": int(wait.total_seconds()),
        "metric": metric,
    }
    audit.record(
        session, actor, "campaign.subject_test", "campaign", campaign_id, after=settings_after
    )
    return described


def remove_test(session: Session, *, campaign_id: int, actor: str) -> None:
    """Take a campaign's subject test away before its sample is sent: the campaign goes
    out with its own subject, as if the test had never been set.

    Raises NotFound (no campaign, no test), StateError (the sample has been queued: its
    readers have their variants, and the rest must get the winner).
    """
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    test = session.get(SubjectTest, campaign_id)
    if test is None:
        raise NotFound(f"campaign {campaign_id} has no subject test")
    if test.phase != READY or campaign.queued_at is not None:
        raise StateError(
            f"campaign {campaign_id}'s subject test has started (its sample is {test.phase}): "
            "it is decided by its winner now"
        )
    before = {v.label: v.subject for v in variant_rows(session, campaign_id)}
    session.execute(
        sa.delete(CampaignVariant).where(col(CampaignVariant.campaign_id) == campaign_id)
    )
    session.delete(test)
    session.flush()
    audit.record(
        session, actor, "campaign.subject_test_removed", "campaign", campaign_id,
        before={"subjects": before},
    )  # fmt: skip


# ---------------------------------------------------------------- the winner


def choose_winner(
    session: Session,
    *,
    campaign_id: int,
    label: str | None = None,
    actor: str,
    now: datetime | None = None,
) -> dict[str, object]:
    """Crown ``label``, or (None) the variant with the best human rate on the test's
    metric; the campaign goes back to sending for the rest. The test as described.

    Raises NotFound (no campaign or no test; no such variant), StateError (the sample
    is not sent yet, or a winner was already chosen).
    """
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    test = _test(session, campaign_id)
    variants = {v.label: v.subject for v in variant_rows(session, campaign_id)}
    if label is not None and label.upper() not in variants:
        raise NotFound(
            f"campaign {campaign_id} has no variant {label} (it has {', '.join(variants)})"
        )
    if test.phase != WAITING:
        raise StateError(_not_waiting(campaign_id, test))
    if label is None:
        rows = variant_figures(
            session, campaign_id=campaign_id, subjects=variants, metric=test.metric
        )
        label = leader(rows, test.metric).label
    label = label.upper()
    won = session.execute(  # compare-and-set: the scheduler and a person may race
        sa.update(SubjectTest)
        .where(col(SubjectTest.campaign_id) == campaign_id, col(SubjectTest.phase) == WAITING)
        .values(phase=DECIDED, winner=label, decided_at=now or utcnow(), decided_by=actor)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        raise StateError(f"campaign {campaign_id}: the winner was chosen meanwhile")
    session.expire(test)
    transition(
        session,
        campaign=campaign,
        to=S.SENDING,
        actor=actor,
        reason=f"subject test: {label} won ({variants[label]}); the rest gets it",
    )
    session.flush()
    described = describe(session, campaign_id=campaign_id)
    assert described is not None
    audit.record(
        session,
        actor,
        "campaign.subject_test_winner",
        "campaign",
        campaign_id,
        after={"winner": label},
    )
    return described


def _test(session: Session, campaign_id: int) -> SubjectTest:
    test = session.get(SubjectTest, campaign_id)
    if test is None:
        raise NotFound(f"campaign {campaign_id} has no subject test")
    return test


def _not_waiting(campaign_id: int, test: SubjectTest) -> str:
    if test.phase in (DECIDED, REST):
        return f"campaign {campaign_id}: variant {test.winner} already won"
    return f"campaign {campaign_id}: the sample is not sent yet; send the campaign first"


def decide_due(session: Session, *, now: datetime, actor: str) -> list[tuple[int, str]]:
    """Choose the winner of every paused test whose wait is over: [(campaign id, label)]."""
    due = session.exec(
        select(SubjectTest.campaign_id)
        .join(Campaign, col(Campaign.id) == SubjectTest.campaign_id)
        .where(
            SubjectTest.phase == WAITING,
            col(SubjectTest.decide_at) <= now,
            Campaign.status == S.PAUSED,
        )
        .order_by(col(SubjectTest.decide_at))
    ).all()
    chosen = []
    for campaign_id in due:
        try:
            described = choose_winner(session, campaign_id=campaign_id, actor=actor, now=now)
        except StateError:  # chosen by hand, resumed or cancelled meanwhile: not ours now
            session.rollback()
            continue
        session.commit()
        chosen.append((campaign_id, str(described["winner"])))
    return chosen


def show_test(session: Session, *, campaign_id: int) -> dict[str, object]:
    """The campaign's test as :func:`describe` gives it; NotFound without one."""
    get_campaign(session, campaign_id=campaign_id)
    described = describe(session, campaign_id=campaign_id)
    if described is None:
        raise NotFound(f"campaign {campaign_id} has no subject test")
    return described


def describe(session: Session, *, campaign_id: int) -> dict[str, object] | None:
    """The test for people and JSON: settings, phase, each variant's human figures with
    the z-test against the best other, and the winner; None without a test."""
    test = session.get(SubjectTest, campaign_id)
    if test is None:
        return None
    variants = {v.label: v.subject for v in variant_rows(session, campaign_id)}
    rows = variant_figures(session, campaign_id=campaign_id, subjects=variants, metric=test.metric)
    heads = {v.label: v.preheader for v in variant_rows(session, campaign_id)}
    return {
        "metric": test.metric,
        "sample_percent": test.sample_percent,
        "sample_size": test.sample_size,
        "wait_seconds": test.wait_seconds,
        "phase": test.phase,
        "sample_sent_at": _iso(test.sample_sent_at),
        "decide_at": _iso(test.decide_at),
        "winner": test.winner,
        "decided_at": _iso(test.decided_at),
        "decided_by": test.decided_by,
        "variants": [{**r.as_dict(), "preheader": heads[r.label]} for r in rows],
    }


def _iso(value: datetime | None) -> str | None:
    """UTC to the second, as people read it and JSON carries it."""
    return None if value is None else as_utc(value).isoformat(timespec="seconds")
