"""Which delivery and which person each provider event is about, a chunk of events at a time.

The rules, as they read for one event:

1. The delivery: by our delivery id echoed back, unless the echoed campaign or subscriber
   id disagrees with that row; else by our campaign and subscriber ids; else by the
   provider's message id (a request's id -> its ``delivery_batch`` rows -> the one
   delivery of that request whose address is the event's).
2. The recipient address must agree with the delivery's subscriber, so ids echoed from
   another installation sharing the provider account never touch the wrong person.
3. The person: the delivery's (None once erased); without a delivery, by our subscriber
   id when the address agrees, else by the address. Events without a delivery (a bounced
   confirmation email, say) still count: a hard bounce or a complaint is about the
   address, whatever message caused it.

:class:`Matcher` applies them to a whole chunk with a few set-based queries (deliveries by
id, by campaign and subscriber, by message id; subscribers by id and by address) instead
of several queries per event: a webhook request may carry 100,000 events.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.models import Delivery, DeliveryBatch
from campaigns.tracking.events import NormalisedEvent
from campaigns.tracking.rowsets import among
from subscribers.addresses import normalise_for_hash
from subscribers.models import Subscriber

log = logging.getLogger("campaigns.tracking.effects")

_delivery = Delivery.__table__  # type: ignore[attr-defined]
_batch = DeliveryBatch.__table__  # type: ignore[attr-defined]
_subscriber = Subscriber.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Match:
    """What an event is about; all None when it matches nothing of ours."""

    delivery_id: int | None = None
    campaign_id: int | None = None
    subscriber_id: int | None = None  # the person; None with a delivery whose person is erased

    @property
    def unmatched(self) -> bool:
        return self.delivery_id is None and self.subscriber_id is None


@dataclass(frozen=True, slots=True)
class _Row:
    """A delivery, with its subscriber's address (None: no such subscriber any more)."""

    id: int
    campaign_id: int
    subscriber_id: int | None
    email: str | None


NOTHING = Match()


class Matcher:
    """Matches chunks of events of one request; remembers normalised addresses meanwhile."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self._normal: dict[str, str] = {}

    def normal(self, email: str) -> str:
        """``normalise_for_hash``, once per distinct address (it validates: ~16 µs)."""
        found = self._normal.get(email)
        if found is None:
            found = self._normal[email] = normalise_for_hash(email)
        return found

    def match(self, events: Sequence[NormalisedEvent]) -> list[Match]:
        """One :class:`Match` per event, in order."""
        candidates = self._candidates(events)
        people = self._people(events, candidates)
        return [self._decide(e, row, people) for e, row in zip(events, candidates, strict=True)]

    # ------------------------------------------------------------ deliveries

    def _candidates(self, events: Sequence[NormalisedEvent]) -> list[_Row | None]:
        """Rule 1, then rule 2: the delivery of each event, or None."""
        by_id = self._by_ids({e.delivery_id for e in events if e.delivery_id is not None})
        pairs = {
            (e.campaign_id, e.subscriber_id)
            for e in events
            if e.delivery_id is None and e.campaign_id is not None and e.subscriber_id is not None
        }
        by_pair = self._by_pairs(pairs)  # type: ignore[arg-type]
        by_message = self._by_message_ids(
            {
                e.message_id
                for e in events
                if e.delivery_id is None and (e.campaign_id is None or e.subscriber_id is None)
                if e.message_id
            }
        )
        found: list[_Row | None] = []
        for event in events:
            row = self._candidate(event, by_id, by_pair, by_message)
            if row is not None and not self._same_address(event, row.email):
                log.warning(
                    "tracking: event %s names delivery %s but another address",
                    event.event_id,
                    row.id,
                )
                row = None
            found.append(row)
        return found

    def _candidate(
        self,
        event: NormalisedEvent,
        by_id: dict[int, _Row],
        by_pair: dict[tuple[int, int], _Row],
        by_message: dict[str, list[_Row]],
    ) -> _Row | None:
        if event.delivery_id is not None:
            row = by_id.get(event.delivery_id)
            if row is not None and (
                (event.campaign_id is not None and row.campaign_id != event.campaign_id)
                or (event.subscriber_id is not None and row.subscriber_id != event.subscriber_id)
            ):
                return None
            return row
        if event.campaign_id is not None and event.subscriber_id is not None:
            return by_pair.get((event.campaign_id, event.subscriber_id))
        if event.message_id:
            rows = by_message.get(event.message_id, [])
            if event.email:
                address = self.normal(event.email)
                rows = [r for r in rows if r.email == address]
            return rows[0] if len(rows) == 1 else None
        return None

    def _same_address(self, event: NormalisedEvent, subscriber_email: str | None) -> bool:
        """Rule 2; a delivery without a (living) subscriber has no address to disagree with.

        The same string agrees without normalising (which validates: ~16 µs an address).
        """
        if event.email is None or subscriber_email is None or subscriber_email == event.email:
            return True
        return subscriber_email == self.normal(event.email)

    def _select(self) -> Any:
        return sa.select(
            _delivery.c.id, _delivery.c.campaign_id, _delivery.c.subscriber_id, _subscriber.c.email
        ).select_from(
            _delivery.outerjoin(_subscriber, _subscriber.c.id == _delivery.c.subscriber_id)
        )

    def _by_ids(self, ids: set[int]) -> dict[int, _Row]:
        if not ids:
            return {}
        rows = self.session.execute(self._select().where(among(_delivery.c.id, ids, self.postgres)))
        return {r.id: _Row(*r) for r in rows}

    def _by_pairs(self, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], _Row]:
        """Deliveries by (campaign, subscriber): one query per campaign named."""
        by_campaign: dict[int, set[int]] = defaultdict(set)
        for campaign_id, subscriber_id in pairs:
            by_campaign[campaign_id].add(subscriber_id)
        found: dict[tuple[int, int], _Row] = {}
        for campaign_id, subscriber_ids in by_campaign.items():
            query = self._select().where(
                _delivery.c.campaign_id == campaign_id,
                among(_delivery.c.subscriber_id, subscriber_ids, self.postgres),
            )
            for r in self.session.execute(query):
                found.setdefault((r.campaign_id, r.subscriber_id), _Row(*r))
        return found

    def _by_message_ids(self, message_ids: set[str]) -> dict[str, list[_Row]]:
        """Every delivery of each request a message id names (SendGrid: up to 1000 each).

        A request's ``delivery_batch`` row names its campaign and delivery id range (the
        message id column of ``delivery`` has no index: see migration 0003).
        """
        if not message_ids:
            return {}
        d, b = _delivery, _batch
        query = (
            sa.select(
                b.c.message_id, d.c.id, d.c.campaign_id, d.c.subscriber_id, _subscriber.c.email
            )
            .select_from(
                b.join(
                    d,
                    sa.and_(
                        d.c.campaign_id == b.c.campaign_id,
                        d.c.id.between(b.c.first_delivery_id, b.c.last_delivery_id),
                        d.c.provider_message_id == b.c.message_id,
                    ),
                ).outerjoin(_subscriber, _subscriber.c.id == d.c.subscriber_id)
            )
            .where(among(b.c.message_id, message_ids, self.postgres))
        )
        found: dict[str, dict[int, _Row]] = defaultdict(dict)
        for message_id, *row in self.session.execute(query):
            found[message_id][row[0]] = _Row(*row)
        return {message_id: list(rows.values()) for message_id, rows in found.items()}

    # ------------------------------------------------------------ people

    def _people(
        self, events: Sequence[NormalisedEvent], candidates: Sequence[_Row | None]
    ) -> _People:
        """Subscribers that events without a delivery name, by id and by address."""
        loose = [e for e, row in zip(events, candidates, strict=True) if row is None]
        by_id = self._subscribers(
            _subscriber.c.id, {e.subscriber_id for e in loose if e.subscriber_id is not None}
        )
        addresses = {self.normal(e.email) for e in loose if e.email}
        by_email = {email: sid for sid, email in self._subscribers(_subscriber.c.email, addresses)}
        return _People(dict(by_id), by_email)

    def _subscribers(self, column: Any, values: set[Any]) -> list[tuple[int, str]]:
        if not values:
            return []
        query = sa.select(_subscriber.c.id, _subscriber.c.email).where(
            among(column, values, self.postgres)
        )
        return [(sid, email) for sid, email in self.session.execute(query)]

    def _decide(self, event: NormalisedEvent, row: _Row | None, people: _People) -> Match:
        """Rule 3: the person, given the event's delivery (or none)."""
        if row is not None:
            person = row.subscriber_id if row.email is not None else None
            return Match(row.id, row.campaign_id, person)
        if event.subscriber_id is not None:
            email = people.by_id.get(event.subscriber_id)
            if email is not None and self._same_address(event, email):
                return Match(subscriber_id=event.subscriber_id)
        if event.email:
            person = people.by_email.get(self.normal(event.email))
            if person is not None:
                return Match(subscriber_id=person)
        return NOTHING


@dataclass(frozen=True)
class _People:
    by_id: dict[int, str]  # subscriber id -> address
    by_email: dict[str, int]  # address -> subscriber id
