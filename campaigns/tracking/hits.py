"""Clicks and opens of our own links: checked on the request, written in bulk behind it.

Why an in-process buffer rather than a row per request: a redirect must answer in a few
milliseconds while a whole list may click within minutes of a send, and a database write
per click (a transaction, on SQLite a file lock) would both slow the answer and queue the
clicks behind each other. So a request only checks its token against two small caches
(the campaign's link table, which never changes once sent, and the reader's link key,
kept for ``KEY_SECONDS``) and appends a :class:`Hit`; a background thread writes the
buffer every ``tracking_flush_seconds`` (sooner at ``tracking_flush_events`` hits)
through the same bulk path as provider events (``effects.apply_events``: stored once by
event id, counters folded per delivery), and :meth:`Recorder.close` writes what is left
when the app shuts down. The cost: a process killed outright (SIGKILL, power) loses at
most the last second of clicks; the readers still got their redirects.

Clicks wait in the buffer until ``tracking_burst_seconds`` old, so a scanner's burst
over every link of a message is whole when it is judged (``classify.burst_clicks``);
clicks already written stay in ``_recent`` a while longer for the same reason.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
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
from campaigns.tracking.links import (
    TokenParts,
    parse_token,
    stored_links,
    tracking_keys,
    verify,
)
from newsletter.clock import utcnow
from newsletter.errors import LinkNotFound
from newsletter.settings import Settings
from subscribers.models import Subscriber

log = logging.getLogger(__name__)

PROVIDER = "newsletter"  # tracking_event.provider of our own events
PERSONAL_FIELDS = ("user_agent",)  # what erasure scrubs from their payload (no IP is kept)
USER_AGENT_MAX = 300  # characters of a User-Agent kept, cut as a hit is made: the buffer is bounded
KEY_SECONDS = 300.0  # how long a reader's link key is trusted from the cache
MAX_KEYS = 100_000
MAX_BUFFER = 200_000  # hits kept while the database is away; the oldest go first
_delivery = Delivery.__table__  # type: ignore[attr-defined]
_subscriber = Subscriber.__table__  # type: ignore[attr-defined]


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


class Recorder:
    """Checks tracking tokens and writes the hits in bulk; one per app (thread-safe)."""

    def __init__(
        self, engine: Engine, settings: Settings, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.now = now
        self._keys: list[bytes] | None = None  # derived on first use: needs the secret key
        self._links: dict[int, tuple[str, ...]] = {}
        self._link_keys: OrderedDict[int, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._buffer: list[Hit] = []
        self._recent: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ requests

    def click(
        self, token: str, position: int, *, method: str, user_agent: str | None, ip: str | None
    ) -> str:
        """The URL the reader's link ``position`` goes to, the click recorded.

        Raises LinkNotFound for a malformed, tampered or foreign token and for a position
        that is not one of that campaign's links: nothing outside the campaign is reached.
        """
        parts = parse_token(token)
        links = self._campaign_links(parts.campaign_id) if parts else ()
        if parts is None or not 0 <= position < len(links) or not self._verified(parts):
            raise LinkNotFound("this link is not one of ours, or it was changed on the way")
        url = links[position]
        self._add(EventKind.CLICKED, parts, position, url, method, user_agent, ip)
        return url

    def can_answer_now(self, token: str) -> bool:
        """Whether :meth:`click_now` would answer ``token`` from the caches (and its URLs
        are plain ASCII, as an HTTP header carries them)."""
        parts = parse_token(token)
        if parts is None:
            return False
        links = self._links.get(parts.campaign_id)
        cached = self._link_keys.get(parts.subscriber_id)
        return (
            links is not None
            and all(u.isascii() for u in links)
            and cached is not None
            and cached[1] > time.monotonic()
        )

    def click_now(
        self, token: str, position: int, *, method: str, user_agent: str | None, ip: str | None
    ) -> str | None:
        """:meth:`click` when both caches know the answer, never touching the database (the
        web door calls it on its event loop); None when :meth:`click` must run instead."""
        parts = parse_token(token)
        if parts is None:
            raise LinkNotFound("this link is not one of ours, or it was changed on the way")
        links = self._links.get(parts.campaign_id)
        cached = self._link_keys.get(parts.subscriber_id)
        if links is None or cached is None or cached[1] <= time.monotonic():
            return None
        return self.click(token, position, method=method, user_agent=user_agent, ip=ip)

    def open(self, token: str, *, method: str, user_agent: str | None, ip: str | None) -> bool:
        """Record an open of the pixel; False (nothing recorded) for a token that fails."""
        parts = parse_token(token)
        if parts is None or not self._verified(parts):
            return False
        self._add(EventKind.OPENED, parts, None, None, method, user_agent, ip)
        return True

    def _campaign_links(self, campaign_id: int) -> tuple[str, ...]:
        links = self._links.get(campaign_id)
        if links is None:
            with Session(self.engine) as session:
                links = tuple(stored_links(session, campaign_id))
            if links:  # a campaign's table never changes once written; unknown ids not kept
                self._links[campaign_id] = links
        return links

    def _verified(self, parts: TokenParts) -> bool:
        link_key = self._link_key(parts.subscriber_id)
        if self._keys is None:
            self._keys = tracking_keys(self.settings)
        return link_key is not None and verify(self._keys, parts, link_key)

    def _link_key(self, subscriber_id: int) -> str | None:
        cached = self._link_keys.get(subscriber_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with Session(self.engine) as session:
            key = session.execute(
                sa.select(_subscriber.c.link_key).where(_subscriber.c.id == subscriber_id)
            ).scalar_one_or_none()
        if key is None:
            with self._lock:
                self._link_keys.pop(subscriber_id, None)
            return None
        with self._lock:  # request threads share the cache
            self._link_keys[subscriber_id] = (key, time.monotonic() + KEY_SECONDS)
            self._link_keys.move_to_end(subscriber_id)
            while len(self._link_keys) > MAX_KEYS:
                self._link_keys.popitem(last=False)
        return key

    def _add(
        self,
        kind: EventKind,
        parts: TokenParts,
        position: int | None,
        url: str | None,
        method: str,
        user_agent: str | None,
        ip: str | None,
    ) -> None:
        machine = classify.request_machine(method, user_agent)
        hit = Hit(
            kind, parts.campaign_id, parts.subscriber_id, position, url, self.now(), method,
            user_agent[:USER_AGENT_MAX] if user_agent else user_agent, ip, machine,
        )  # fmt: skip
        with self._lock:
            self._buffer.append(hit)
            if len(self._buffer) > MAX_BUFFER:
                del self._buffer[: len(self._buffer) - MAX_BUFFER]
            full = len(self._buffer) >= self.settings.tracking_flush_events
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="tracking-flush", daemon=True
                )
                self._thread.start()
        if full:
            self._wake.set()

    # ------------------------------------------------------------ writing

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.tracking_flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the thread must live on; the hits were put back
                log.exception("tracking: writing clicks and opens failed; retrying")

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def flush(self, *, everything: bool = False) -> int:
        """Write the hits that are ready (``everything``: all of them); returns how many."""
        now = self.now()
        cutoff = now - timedelta(seconds=self.settings.tracking_burst_seconds)
        with self._lock:
            ready: list[Hit] = []
            held: list[Hit] = []
            for h in self._buffer:
                go = everything or h.kind is EventKind.OPENED or h.at <= cutoff
                (ready if go else held).append(h)
            if not ready:
                return 0
            self._buffer = held
            waiting = [h for h in held if h.kind is EventKind.CLICKED]
        try:
            with Session(self.engine) as session:
                events = self._events(session, ready, waiting)
                apply_events(session, settings=self.settings, events=events)
                session.commit()
        except Exception:
            with self._lock:
                self._buffer[:0] = ready
            raise
        self._remember(ready, now)
        return len(ready)

    def close(self) -> None:
        """Stop the writer and write every hit still in the buffer (app shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush(everything=True)

    # ------------------------------------------------------------ judging

    def _events(
        self, session: Session, hits: Sequence[Hit], waiting: Sequence[Hit]
    ) -> list[NormalisedEvent]:
        bursts = self._bursts(hits, waiting)
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

    def _bursts(self, hits: Sequence[Hit], waiting: Sequence[Hit]) -> set[int]:
        """Indexes into ``hits`` of clicks that are part of a burst (classify rule 5)."""
        groups: dict[tuple[int, int], list[tuple[datetime, int, int]]] = defaultdict(list)
        for i, hit in enumerate(hits):
            if hit.kind is EventKind.CLICKED and hit.position is not None:
                groups[(hit.campaign_id, hit.subscriber_id)].append((hit.at, hit.position, i))
        for hit in waiting:
            pair = (hit.campaign_id, hit.subscriber_id)
            if pair in groups and hit.position is not None:
                groups[pair].append((hit.at, hit.position, -1))
        machine: set[int] = set()
        for pair, clicks in groups.items():
            clicks += [(at, pos, -1) for at, pos in self._recent.get(pair, ())]
            found = classify.burst_clicks(
                [(at, pos) for at, pos, _ in clicks],
                link_count=len(self._links.get(pair[0], ())),
                window_seconds=self.settings.tracking_burst_seconds,
            )
            machine.update(clicks[j][2] for j in found if clicks[j][2] >= 0)
        return machine

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
