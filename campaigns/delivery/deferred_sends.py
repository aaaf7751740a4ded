"""Send again the recipients whose deferral is due (``deferrals``), campaign by campaign.

Only campaigns that finished (``sent``): while one is still sending, paused or failed,
its deferred recipients wait for it. Each campaign is retried under its send lease (no
second sender meanwhile): the due rows go back to ``queued`` with their next try pushed
one step on (so a retry that dies is picked up again later, never lost), and the ledger's
reader sends them as the send loop does, through the suppression guard again (who has
unsubscribed or bounced since is skipped). Outcomes are recorded by the send loop's own
``outcomes.record_outcome``: sent, bounced, failed, or put off once more. A provider
error ends the campaign's retry for this time; its rows wait for the next sweep.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.delivery import send_lease
from campaigns.delivery.deferrals import next_try
from campaigns.delivery.ledger_batches import LedgerReader
from campaigns.delivery.outcomes import record_outcome
from campaigns.delivery.providers.base import Provider, bulk_content
from campaigns.delivery.providers.factory import make_sending_provider
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryDeferral, DeliveryStatus
from newsletter.clock import utcnow
from newsletter.errors import ProviderError, StateError
from newsletter.settings import Settings

__all__ = ["RetryReport", "retry_due"]

log = logging.getLogger(__name__)
_delivery = Delivery.__table__  # type: ignore[attr-defined]
_deferral = DeliveryDeferral.__table__  # type: ignore[attr-defined]
_WAITING = (DeliveryStatus.DEFERRED.value, DeliveryStatus.QUEUED.value)


@dataclass
class RetryReport:
    """What one sweep did, over every campaign it touched."""

    campaigns: int = 0
    tried: int = 0
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    deferred: int = 0  # put off once more
    skipped: int = 0  # suppressed or gone since
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def retry_due(
    session: Session,
    *,
    settings: Settings,
    now: datetime | None = None,
    provider: Provider | None = None,
) -> RetryReport:
    """Send the due deferred recipients of every finished campaign; commits as it goes."""
    now = now or utcnow()
    due = session.scalars(
        sa.select(_deferral.c.campaign_id)
        .join(Campaign.__table__, Campaign.id == _deferral.c.campaign_id)  # type: ignore[attr-defined]
        .where(_deferral.c.due_at <= now, Campaign.status == CampaignStatus.SENT.value)
        .distinct()
    ).all()
    session.commit()
    report = RetryReport()
    if not due:
        return report
    own = provider is None
    if provider is None:
        provider = make_sending_provider(settings)
    try:
        for campaign_id in due:
            _retry_campaign(session, settings, campaign_id, provider, now, report)
    finally:
        if own:
            provider.close()
    return report


def _retry_campaign(
    session: Session,
    settings: Settings,
    campaign_id: int,
    provider: Provider,
    now: datetime,
    report: RetryReport,
) -> None:
    holder = send_lease.new_holder()
    try:
        send_lease.claim(
            session, campaign_id=campaign_id, holder=holder, seconds=settings.lease_seconds
        )
        session.commit()
    except StateError as err:  # someone sends it right now: next sweep
        session.rollback()
        report.errors.append(str(err))
        return
    report.campaigns += 1
    try:
        _claim_due(session, settings, campaign_id, now)
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        content = bulk_content(settings, campaign)
        links = RecipientLinks(settings)
        reader = LedgerReader(
            session, campaign_id=campaign_id, links=links, batch_size=provider.batch_size
        )
        while (batch := reader.next_batch()) is not None:
            report.tried += len(batch)
            try:
                result = provider.send_batch(content, batch)
            except ProviderError as err:
                report.errors.append(f"campaign {campaign_id}: {err}")
                break
            tally = record_outcome(
                session, settings, campaign_id=campaign_id, job=batch, result=result
            )
            report.sent += tally.sent
            report.bounced += tally.bounced
            report.failed += tally.failed - tally.bounced
            report.deferred += tally.deferred
            session.commit()
        report.skipped += reader.take_skipped()
        _tidy(session, campaign_id)
    finally:
        session.rollback()
        send_lease.release(session, campaign_id=campaign_id, holder=holder)
        session.commit()


def _claim_due(session: Session, settings: Settings, campaign_id: int, now: datetime) -> None:
    """Due rows back to ``queued``; their next try one step on, in case this one dies."""
    due = sa.select(_deferral.c.delivery_id).where(
        _deferral.c.campaign_id == campaign_id, _deferral.c.due_at <= now
    )
    session.execute(
        sa.update(_delivery)
        .where(_delivery.c.id.in_(due), _delivery.c.status.in_(_WAITING))
        .values(status=DeliveryStatus.QUEUED.value)
    )
    session.execute(
        sa.update(_deferral)
        .where(_deferral.c.campaign_id == campaign_id, _deferral.c.due_at <= now)
        .values(due_at=next_try(settings, 1, now))
    )
    session.commit()


def _tidy(session: Session, campaign_id: int) -> None:
    """Rows still queued (not taken) wait again; settled rows lose their deferral."""
    waiting = sa.select(_deferral.c.delivery_id).where(_deferral.c.campaign_id == campaign_id)
    session.execute(
        sa.update(_delivery)
        .where(_delivery.c.id.in_(waiting), _delivery.c.status == DeliveryStatus.QUEUED.value)
        .values(status=DeliveryStatus.DEFERRED.value)
    )
    settled = sa.select(_delivery.c.id).where(
        _delivery.c.campaign_id == campaign_id, _delivery.c.status.not_in(_WAITING)
    )
    session.execute(
        sa.delete(_deferral).where(
            _deferral.c.campaign_id == campaign_id, _deferral.c.delivery_id.in_(settled)
        )
    )
    session.commit()
