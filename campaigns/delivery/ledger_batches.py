"""The ledger's batches: read queued rows in keyset batches, write each outcome back, set-based.

The reader joins each queued delivery to its subscriber and re-checks, at send time,
what may have changed since queueing (unsubscribed, bounced, erased, suppressed,
paused, topics changed so that none is in this issue): such rows become ``skipped`` with
the reason in ``error``.

Writing back is the other half of the per-recipient cost, and reads the provider's typed
result (``providers.base.BatchResult``), never its shape. A batch one request took whole
is marked with one range update over its ids (see ``record_sent_range``); partial results
name their ids, as one array parameter on PostgreSQL (``= ANY(:ids)``: a thousand bound
parameters cost twice as much to plan); per-message ids go in one executemany. A message
id shared by a request also gets one ``delivery_batch`` row, which is how tracking finds
the rows of an event without our custom args: no index of ``delivery`` holds a column
written here, so on PostgreSQL the update is heap-only (HOT; migration 0003).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from campaigns.delivery.ledger import campaign_categories
from campaigns.delivery.providers.base import UNSIGNED, BatchResult, Recipient
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.models import Campaign, Delivery, DeliveryBatch, DeliveryStatus
from campaigns.tracking.rowsets import RowSet
from newsletter.clock import utcnow
from subscribers.models import Subscriber, SubscriberStatus, Suppression, TrackingOptOut

_delivery = Delivery.__table__
_batch = DeliveryBatch.__table__
_campaign = Campaign.__table__
_subscriber = Subscriber.__table__
_suppression = Suppression.__table__
_opt_out = TrackingOptOut.__table__
_QUEUED = DeliveryStatus.QUEUED.value


class LedgerReader:
    """Yields batches of sendable recipients of one campaign, in delivery id order."""

    def __init__(
        self,
        session: Session,
        *,
        campaign_id: int,
        links: RecipientLinks,
        batch_size: int,
        sign_links: bool = True,
    ) -> None:
        """``sign_links`` False: recipients come with ``values=UNSIGNED`` and their
        ``link_key``, for a provider that signs their links itself (``signs_links``)."""
        self.session = session
        self.sign_links = sign_links
        self.campaign_id = campaign_id
        self.links = links
        links.for_campaign(campaign_id)  # unsubscribe links name the issue they came in
        self.batch_size = batch_size
        self.last_id = 0
        self._skipped = 0
        # The same rule as queueing (subscribers.audience): chosen topics must meet the issue.
        self._categories = frozenset(campaign_categories(session, campaign_id=campaign_id))
        suppressed = sa.exists(
            sa.select(1).where(_suppression.c.email == _subscriber.c.email)
        ).label("suppressed")
        # Issue 15: a reader who asked not to be tracked gets plain links (no pixel).
        not_tracked = sa.exists(
            sa.select(1).where(_opt_out.c.subscriber_id == _delivery.c.subscriber_id)
        ).label("not_tracked")
        self._query = (
            sa.select(
                _delivery.c.id,
                _delivery.c.subscriber_id,
                _subscriber.c.email,
                _subscriber.c.name,
                _subscriber.c.link_key,
                _subscriber.c.status,
                _subscriber.c.paused_until,
                # As text: decoding a million '[]' through the JSON type costs seconds.
                sa.cast(_subscriber.c.topics, sa.Text),
                suppressed,
                not_tracked,
            )
            .select_from(
                _delivery.outerjoin(_subscriber, _subscriber.c.id == _delivery.c.subscriber_id)
            )
            .where(
                _delivery.c.campaign_id == campaign_id,
                _delivery.c.status == _QUEUED,
                _delivery.c.id > sa.bindparam("last_id"),
            )
            .order_by(_delivery.c.id)
            .limit(sa.bindparam("size", type_=sa.Integer))
        )

        self._status = sa.select(_campaign.c.status).where(_campaign.c.id == campaign_id)

    def take_skipped(self) -> int:
        count, self._skipped = self._skipped, 0
        return count

    def campaign_status(self) -> str:
        """The campaign's status now (asked after every batch: built once, Core only)."""
        return self.session.execute(self._status).scalar_one()

    def next_batch(self) -> list[Recipient] | None:
        """The next non-empty batch (skipped rows recorded and committed), or None at the end."""
        active = SubscriberStatus.ACTIVE.value
        while True:
            rows = self.session.execute(
                self._query, {"last_id": self.last_id, "size": self.batch_size}
            ).all()
            if not rows:
                self.session.commit()
                return None
            self.last_id = rows[-1][0]
            today: date = utcnow().date()
            self.links.new_batch()
            values = self.links.values if self.sign_links else None
            return_path = self.links.return_path if self.links.has_return_paths else None
            batch: list[Recipient] = []
            skipped: dict[str, list[int]] = defaultdict(list)
            categories = self._categories
            for (
                delivery_id,
                subscriber_id,
                email,
                name,
                key,
                status,
                paused_until,
                topics,
                supp,
                not_tracked,
            ) in rows:
                if subscriber_id is None or email is None:
                    skipped["subscriber erased"].append(delivery_id)
                elif status != active:
                    skipped[f"subscriber is {status}"].append(delivery_id)
                elif supp:
                    skipped["address is suppressed"].append(delivery_id)
                elif paused_until is not None and paused_until > today:
                    skipped["subscriber paused"].append(delivery_id)
                elif categories and topics and len(topics) > 2 and _none_chosen(topics, categories):
                    skipped["none of the subscriber's topics is in this issue"].append(delivery_id)
                else:
                    batch.append(
                        Recipient(  # positional: this runs once per recipient
                            delivery_id,
                            subscriber_id,
                            email,
                            name,
                            values(subscriber_id, name, key, not not_tracked)
                            if values
                            else UNSIGNED,
                            bool(not_tracked),  # plain
                            return_path and return_path(subscriber_id, key),
                            key,
                        )
                    )
            for reason, ids in skipped.items():
                self._skipped += _mark(self.session, ids, DeliveryStatus.SKIPPED, reason)
            self.session.commit()
            if batch:
                return batch


def _none_chosen(topics: str, categories: frozenset[str]) -> bool:
    """True when the subscriber chose topics and none of them is among ``categories``."""
    chosen = json.loads(topics)
    return bool(chosen) and categories.isdisjoint(chosen)


def _id_among(session: Session, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return _delivery.c.id == sa.any_(
            sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.Integer))
        )
    return _delivery.c.id.in_(ids)


def _mark(session: Session, ids: list[int], status: DeliveryStatus, error: str) -> int:
    if not ids:
        return 0
    return session.execute(
        sa.update(_delivery)
        .where(_id_among(session, ids), _delivery.c.status == _QUEUED)
        .values(status=status.value, error=error)
    ).rowcount


def record_sent_range(
    session: Session, *, campaign_id: int, first_id: int, last_id: int, message_id: str | None
) -> int:
    """Mark a whole batch sent: every queued row of the campaign with an id in the range.

    Exact only for a batch the provider accepted entirely, as the send loop uses it: a
    batch is the campaign's queued rows in id order between its first and last id, the
    rows in between that it left out are already ``skipped`` (or, for a retried remainder,
    ``sent`` / ``failed``), and no row goes back to ``queued``. New rows get larger ids.
    The caller commits.
    """
    now = utcnow()
    _record_batch(session, campaign_id, first_id, last_id, message_id, now)
    return session.execute(
        _SENT_RANGE,
        {
            "c": campaign_id,
            "first": first_id,
            "last": last_id,
            "mid": message_id or None,
            "now": now,
        },
    ).rowcount


# Built once: statement construction was a tenth of a millisecond a batch.
_SENT_RANGE = (
    sa.update(_delivery)
    .where(
        _delivery.c.campaign_id == sa.bindparam("c"),
        _delivery.c.status == _QUEUED,
        _delivery.c.id.between(sa.bindparam("first"), sa.bindparam("last")),
    )
    .values(
        status=DeliveryStatus.SENT.value,
        provider_message_id=sa.bindparam("mid"),
        sent_at=sa.bindparam("now"),
        error=None,
        attempts=_delivery.c.attempts + 1,
    )
)
_BATCH_ROW = sa.insert(_batch).values(
    campaign_id=sa.bindparam("c"),
    first_delivery_id=sa.bindparam("first"),
    last_delivery_id=sa.bindparam("last"),
    message_id=sa.bindparam("mid"),
    sent_at=sa.bindparam("now"),
)


def _record_batch(
    session: Session,
    campaign_id: int,
    first_id: int,
    last_id: int,
    message_id: str | None,
    now: datetime,
) -> None:
    """The request's message id -> its rows, for events that come back without our ids."""
    if message_id:
        session.execute(
            _BATCH_ROW,
            {"c": campaign_id, "first": first_id, "last": last_id, "mid": message_id, "now": now},
        )


def record_accepted(
    session: Session,
    *,
    campaign_id: int,
    job: Sequence[Recipient],
    result: BatchResult,
    ranged: bool = True,
) -> int:
    """Mark what the provider accepted of ``job`` sent; returns how many rows. The caller commits.

    Per-message ids (SMTP, the outbox) go on their rows in one executemany. A request's
    shared id (``result.request_ids``: SendGrid) also gets its ``delivery_batch`` row, and
    when one request took the whole job the rows are marked by one range update, unless
    ``ranged`` is False (the job's ids interleave with another job's queued rows).
    """
    whole, message_id = result.one_answer()
    if whole and result.request_ids and ranged and len(result.statuses) == len(job):
        # One request took the whole job: no pass over its thousand statuses.
        return record_sent_range(
            session,
            campaign_id=campaign_id,
            first_id=job[0].delivery_id,
            last_id=job[-1].delivery_id,
            message_id=message_id,
        )
    accepted = result.accepted
    if not accepted:
        return 0
    if not result.request_ids:
        return _record_messages(session, accepted)
    by_request: dict[str | None, list[int]] = defaultdict(list)
    for delivery_id, message_id in accepted.items():
        by_request[message_id].append(delivery_id)
    now = utcnow()
    sent = 0
    for message_id, ids in by_request.items():
        _record_batch(session, campaign_id, min(ids), max(ids), message_id, now)
        sent += session.execute(
            sa.update(_delivery)
            .where(_id_among(session, ids), _delivery.c.status == _QUEUED)
            .values(
                status=DeliveryStatus.SENT.value,
                provider_message_id=message_id,
                sent_at=now,
                error=None,
                attempts=_delivery.c.attempts + 1,
            )
        ).rowcount
    return sent


def _record_messages(session: Session, message_ids: dict[int, str | None]) -> int:
    """Rows sent with one message id each (SMTP, the outbox): one statement.

    The (id, message id) pairs travel as one JSON parameter (campaigns.tracking.rowsets)
    and one ``UPDATE ... FROM`` marks them: an executemany of 100 updates was, on
    PostgreSQL, 100 statements for the server and psycopg's per-statement work for us,
    on the critical path of every SMTP batch; on SQLite, SQLAlchemy's parameter
    processing per row.
    """
    rowset, statement = _messages_update(session.get_bind().dialect)
    rows = [{"id": d, "mid": m} for d, m in message_ids.items()]
    rowset.execute(session.connection(), statement.values(sent_at=utcnow()), rows)
    return len(message_ids)


_MESSAGES: dict[str, tuple[RowSet, Any]] = {}


def _messages_update(dialect: Dialect) -> tuple[RowSet, Any]:
    """The rowset and ``UPDATE delivery ... FROM`` it of :func:`_record_messages`, built
    once per dialect."""
    built = _MESSAGES.get(dialect.name)
    if built is None:
        rowset = RowSet(dialect, "sent", {"id": sa.Integer(), "mid": sa.String()})
        statement = (
            sa.update(_delivery)
            .where(_delivery.c.id == rowset.c.id, _delivery.c.status == _QUEUED)
            .values(
                status=DeliveryStatus.SENT.value,
                provider_message_id=rowset.c.mid,
                error=None,
                attempts=_delivery.c.attempts + 1,
            )
        )
        built = _MESSAGES[dialect.name] = (rowset, statement)
    return built


def record_failed(session: Session, *, errors: dict[int, str]) -> int:
    """Mark deliveries failed, delivery id -> reason (``BatchResult.rejected``); caller commits."""
    by_error: dict[str, list[int]] = defaultdict(list)
    for delivery_id, error in errors.items():
        by_error[error].append(delivery_id)
    return sum(
        _mark(session, ids, DeliveryStatus.FAILED, error[:2000]) for error, ids in by_error.items()
    )
