"""Judging and writing our clicks and opens, in bulk: the half of tracking off the request.

A :class:`HitWriter` holds the hits handed to it (:meth:`add`), and :meth:`flush` writes
those that are ready through the same bulk path as provider events
(``effects.apply_events``: stored once by event id, counters folded per delivery).

Clicks wait until ``tracking_burst_seconds`` old, so a scanner's burst over every link of
a message is whole when it is judged (``classify.burst_clicks``); clicks already written
stay in ``_recent`` for two windows for the same reason. Opens are judged against when
their message was sent (the prefetch rule, ``classify.open_machine``).

It runs in the web process's writer thread or, by default, in a process of its own
(``campaigns.tracking.hit_process``), so a flush's Python never holds the serving
process's GIL while redirects wait for it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Delivery
from campaigns.tracking import classify
from campaigns.tracking.effects import apply_events
from campaigns.tracking.events import EventKind, NormalisedEvent
from campaigns.tracking.links import stored_links
from newsletter.clock import utcnow
from newsletter.settings import Settings

PROVIDER = "newsletter"  # tracking_event.provider of our own events
USER_AGENT_MAX = 300  # characters of a User-Agent kept, cut as a hit is made: the buffer is bounded
MAX_HELD = 200_000  # hits kept while the database is away; the oldest go first
_delivery = Delivery.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Hit:
    """One request to /r/ or /o/ with a valid token."""

    kind: EventKind
    campaign_id: int
    subscriber_id: int
    position: int | None  # the link's number (clicks)
    url: str | None
    at: datetime
    method: str
    user_agent: str | None
    ip: str | None
    machine: str | None  # rules 1-2 (classify.request_machine), decided on arrival

    def as_tuple(self) -> tuple[object, ...]:
        """The fields in order: what crosses the pipe to the writer process (a plain
        tuple pickles in a fraction of a dataclass's time)."""
        return (
            self.kind, self.campaign_id, self.subscriber_id, self.position, self.url, self.at,
            self.method, self.user_agent, self.ip, self.machine,
        )  # fmt: skip


class HitWriter:
    """Holds hits until they may be judged, then writes them in one transaction a flush.

    Not thread-safe: one thread (the writer thread, or the writer process's loop) owns it.
    """

    def __init__(
        self, engine: Engine, settings: Settings, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.now = now
        self._held: list[Hit] = []
        self._recent: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)
        self._link_counts: dict[int, int] = {}

    def add(self, hits: Sequence[Hit]) -> None:
        self._held.extend(hits)
        if len(self._held) > MAX_HELD:
            del self._held[: len(self._held) - MAX_HELD]

    def held(self) -> int:
        return len(self._held)

    def flush(self, *, everything: bool = False) -> int:
        """Write the hits that are ready (``everything``: all of them); returns how many.

        Raises what the database raises; the hits are then held again for the next flush.
        """
        now = self.now()
        cutoff = now - timedelta(seconds=self.settings.tracking_burst_seconds)
        ready: list[Hit] = []
        waiting: list[Hit] = []
        for h in self._held:
            go = everything or h.kind is EventKind.OPENED or h.at <= cutoff
            (ready if go else waiting).append(h)
        if not ready:
            return 0
        self._held = waiting
        try:
            with Session(self.engine) as session:
                events = self._events(session, ready, waiting)
                apply_events(session, settings=self.settings, events=events)
                session.commit()
        except Exception:
            self._held[:0] = ready
            raise
        self._remember(ready, now)
        return len(ready)

    # ------------------------------------------------------------ judging

    def _events(
        self, session: Session, hits: Sequence[Hit], waiting: Sequence[Hit]
    ) -> list[NormalisedEvent]:
        bursts = self._bursts(session, hits, waiting)
        sent = self._sent_at(session, [h for h in hits if h.kind is EventKind.OPENED])
        events = []
        for i, hit in enumerate(hits):
            reason = hit.machine
            if hit.kind is EventKind.OPENED and reason is None:
                reason = classify.open_machine(
                    method=hit.method,
                    user_agent=hit.user_agent,
                    ip=hit.ip,
                    at=hit.at,
                    sent_at=sent.get((hit.campaign_id, hit.subscriber_id)),
                    prefetch_seconds=self.settings.tracking_prefetch_seconds,
                )
            elif reason is None and i in bursts:
                reason = "clicks on every link within seconds"
            events.append(_event(hit, reason))
        return events

    def _bursts(self, session: Session, hits: Sequence[Hit], waiting: Sequence[Hit]) -> set[int]:
        """Indexes into ``hits`` of clicks that are part of a burst (classify rule 5)."""
        groups: dict[tuple[int, int], list[tuple[datetime, int, int]]] = defaultdict(list)
        for i, hit in enumerate(hits):
            if hit.kind is EventKind.CLICKED and hit.position is not None:
                groups[(hit.campaign_id, hit.subscriber_id)].append((hit.at, hit.position, i))
        for hit in waiting:
            pair = (hit.campaign_id, hit.subscriber_id)
            if hit.kind is EventKind.CLICKED and pair in groups and hit.position is not None:
                groups[pair].append((hit.at, hit.position, -1))
        machine: set[int] = set()
        for pair, clicks in groups.items():
            clicks += [(at, pos, -1) for at, pos in self._recent.get(pair, ())]
            found = classify.burst_clicks(
                [(at, pos) for at, pos, _ in clicks],
                link_count=self._link_count(session, pair[0]),
                window_seconds=self.settings.tracking_burst_seconds,
            )
            machine.update(clicks[j][2] for j in found if clicks[j][2] >= 0)
        return machine

    def _link_count(self, session: Session, campaign_id: int) -> int:
        """How many links the campaign's table has (it never changes once sent)."""
        count = self._link_counts.get(campaign_id)
        if count is None:
            count = self._link_counts[campaign_id] = len(stored_links(session, campaign_id))
        return count

    def _remember(self, hits: Sequence[Hit], now: datetime) -> None:
        """Keep written clicks for two burst windows, so a burst is judged whole."""
        keep = now - timedelta(seconds=2 * self.settings.tracking_burst_seconds)
        for hit in hits:
            if hit.kind is EventKind.CLICKED and hit.position is not None:
                self._recent[(hit.campaign_id, hit.subscriber_id)].append((hit.at, hit.position))
        for pair in list(self._recent):
            fresh = [c for c in self._recent[pair] if c[0] >= keep]
            if fresh:
                self._recent[pair] = fresh
            else:
                del self._recent[pair]

    def _sent_at(
        self, session: Session, opens: Sequence[Hit]
    ) -> dict[tuple[int, int], datetime | None]:
        """When each opened message was sent (for the prefetch rule), by (campaign, reader)."""
        if not opens:
            return {}
        pairs = {(h.campaign_id, h.subscriber_id) for h in opens}
        rows = session.execute(
            sa.select(_delivery.c.campaign_id, _delivery.c.subscriber_id, _delivery.c.sent_at)
            .where(_delivery.c.campaign_id.in_({c for c, _ in pairs}))
            .where(_delivery.c.subscriber_id.in_({s for _, s in pairs}))
        ).all()
        return {(c, s): at for c, s, at in rows}


def _event(hit: Hit, machine: str | None) -> NormalisedEvent:
    click = hit.kind is EventKind.CLICKED
    return NormalisedEvent(
        provider=PROVIDER,
        kind=hit.kind,
        raw_event="click" if click else "open",
        event_id=f"nl-{uuid.uuid4().hex}",
        occurred_at=hit.at,
        campaign_id=hit.campaign_id,
        subscriber_id=hit.subscriber_id,
        machine=machine is not None,
        url=hit.url,
        payload={
            # The link's destination, for the report's top links (issue 15, point 2).
            **({"url": hit.url} if click else {}),
            "link": hit.position,
            "method": hit.method,
            "user_agent": (hit.user_agent or "")[:USER_AGENT_MAX],
            "machine": machine,
        },
    )
