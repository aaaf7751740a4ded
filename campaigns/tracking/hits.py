"""Clicks and opens of our own links: checked on the request, written in bulk behind it.

Why an in-process buffer rather than a row per request: a redirect must answer in a few
milliseconds while a whole list may click within minutes of a send, and a database write
per click (a transaction, on SQLite a file lock) would both slow the answer and queue the
clicks behind each other. So a request only checks its token against two small caches
(the campaign's link table, which never changes once sent, and the reader's link key,
kept for ``KEY_SECONDS``) and appends a :class:`Hit`; a background thread hands the
buffer every ``tracking_flush_seconds`` (sooner at ``tracking_flush_events`` hits) to
the writer (``hit_writer.HitWriter``: judged, then written through the same bulk path as
provider events), which by default runs in a process of its own (``hit_process``,
``NEWSLETTER_TRACKING_WRITER=process``) so its Python never holds this process's GIL
while redirects wait; ``thread`` writes from the background thread itself.
:meth:`Recorder.close` writes what is left when the app shuts down. The cost: a process
killed outright (SIGKILL, power) loses at most the last seconds of clicks; the readers
still got their redirects.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.tracking import classify
from campaigns.tracking.events import EventKind
from campaigns.tracking.hit_process import MAX_FAILED_STARTS, WriterProcess
from campaigns.tracking.hit_writer import MAX_HELD, PROVIDER, USER_AGENT_MAX, Hit, HitWriter
from campaigns.tracking.link_keys import LinkKeyReader
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

log = logging.getLogger(__name__)

__all__ = ["PERSONAL_FIELDS", "PROVIDER", "USER_AGENT_MAX", "Hit", "Recorder"]

PERSONAL_FIELDS = ("user_agent",)  # what erasure scrubs from their payload (no IP is kept)
KEY_SECONDS = 300.0  # how long a reader's link key is trusted from the cache
MAX_KEYS = 100_000
HANDOVER_SECONDS = 0.1  # how often hits go to a writer process (it writes on its own timer)


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
        self._key_reader = LinkKeyReader(engine)  # a reader's first click reads its key
        self._lock = threading.Lock()
        self._buffer: list[Hit] = []
        self._writer: HitWriter | WriterProcess | None = None  # made on first use
        self._writer_lock = threading.Lock()  # one hand-over or flush at a time
        self._dropped = 0  # hits the full buffer pushed out since the last warning
        self._warned_at = -30.0
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
        key = self._key_reader.read(subscriber_id)
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
            if len(self._buffer) > MAX_HELD:
                self._dropped += len(self._buffer) - MAX_HELD
                del self._buffer[: len(self._buffer) - MAX_HELD]
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
            # To a writer process, often and small: each hand-over holds the GIL while it
            # pickles (about 2 µs a hit), so a second's 1,000 hits at once would stall
            # the event loop for milliseconds; a tenth's 100 for a fraction of one.
            process = isinstance(self._writer, WriterProcess)
            self._wake.wait(HANDOVER_SECONDS if process else self.settings.tracking_flush_seconds)
            self._wake.clear()
            try:
                self.flush(handover_only=True)
            except Exception as err:  # the thread must live on; the hits were kept
                self._warn(f"handing clicks and opens to the writer failed: {err}")
            if self._dropped:
                with self._lock:
                    dropped, self._dropped = self._dropped, 0
                self._warn(f"{dropped} clicks and opens dropped: the buffer was full")

    def _warn(self, message: str) -> None:
        """One line, at most every 30 s: a writer that is away must not flood the log."""
        now = time.monotonic()
        if now - self._warned_at >= 30:
            self._warned_at = now
            log.warning("tracking: %s", message.splitlines()[0] if message else "")

    def flush(self, *, everything: bool = False, handover_only: bool = False) -> int:
        """Hand the buffer to the writer and write what is ready (``everything``: all of
        it); returns how many were written. ``handover_only``: a writer process writes on
        its own timer, so the background thread only hands over (returns 0).

        Raises DatabaseError (or what the database raised) when writing failed; the
        hits are kept for the next flush.
        """
        with self._writer_lock:
            writer = self._writer_in_use()
            with self._lock:
                batch, self._buffer = self._buffer, []
            if batch:
                try:
                    writer.add(batch)
                except OSError:  # no writer process could take them: keep them
                    with self._lock:
                        self._buffer[:0] = batch
                    self._give_up_on(writer)
                    raise
                self._give_up_on(writer)
            if handover_only and isinstance(writer, WriterProcess):
                return 0
            return writer.flush(everything=everything)

    def start_writer(self) -> None:
        """Start the writer process now rather than on the first hand-over (app start-up):
        its imports then do not compete with the first clicks after a send. A failure is
        logged; the first hand-over tries again."""
        with self._writer_lock:
            writer = self._writer_in_use()
            if isinstance(writer, WriterProcess):
                try:
                    writer.start()
                except OSError as err:
                    log.warning("tracking: %s; trying again with the first click", err)

    def writer_pid(self) -> int | None:
        """The writer process's pid (None: none running, or writing in this process)."""
        with self._writer_lock:
            return self._writer.pid if isinstance(self._writer, WriterProcess) else None

    def close(self) -> None:
        """Stop the writer and write every hit still in the buffer (app shutdown)."""
        self._stop.set()
        self._wake.set()
        self._key_reader.close()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._writer is None and not self._buffer:
            return
        try:
            self.flush(everything=True, handover_only=True)
        except OSError:  # no writer process: this process writes what is left
            with self._writer_lock:
                self._writer = HitWriter(self.engine, self.settings, now=self.now)
        with self._writer_lock:
            if isinstance(self._writer, WriterProcess):
                self._writer.close()
            else:
                self._writer_in_use().add(self._take_buffer())
                self._writer_in_use().flush(everything=True)

    def _take_buffer(self) -> list[Hit]:
        with self._lock:
            batch, self._buffer = self._buffer, []
        return batch

    def _writer_in_use(self) -> HitWriter | WriterProcess:
        if self._writer is None:
            in_memory = self.settings.database_url.startswith("sqlite") and (
                ":memory:" in self.settings.database_url
                or self.settings.database_url == "sqlite://"
            )
            if self.settings.tracking_writer == "process" and not in_memory:
                self._writer = WriterProcess(self.settings)
            else:
                self._writer = HitWriter(self.engine, self.settings, now=self.now)
        return self._writer

    def _give_up_on(self, writer: HitWriter | WriterProcess) -> None:
        """After MAX_FAILED_STARTS writer processes died young, write from this process."""
        if isinstance(writer, WriterProcess) and writer.failed_starts >= MAX_FAILED_STARTS:
            log.error(
                "tracking: the click writer process keeps dying at start; writing clicks "
                "from the web process instead (redirects may slow under load)"
            )
            self._writer = HitWriter(self.engine, self.settings, now=self.now)
