"""Import snippets from Markdown files (YAML front matter) and RSS 2.0 / Atom feeds.

The normal path is the customer's blog feed, imported weekly, so an import must be
idempotent (upsert on the canonical URL) and forgiving: a bad entry is reported with
its position and skipped, the good ones are kept. Feed HTML is reduced to plain text
with nh3 (never by regex) and every link is made absolute.

A feed is read entry by entry (:mod:`campaigns.content.feeds`), so its size costs time,
not memory; one fetched by URL is bounded in size, in time and in where it may connect
(:func:`fetch_feed`, :mod:`newsletter.net`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sqlmodel import Session

from campaigns.content.feeds import (
    FeedNotWellFormed,
    FeedStream,
    absolute_url,
    entry_values,
    needs_base,
    parse_whole,
)
from campaigns.content.import_report import ImportReport
from campaigns.content.markdown_snippets import read_markdown
from campaigns.content.snippets import (
    UpsertOutcome,
    canonical_url,
    upsert_snippet,
)
from campaigns.content.sources import keep_markdown
from newsletter.db import savepoint
from newsletter.errors import (
    FetchFailed,
    FetchTimedOut,
    FetchTooLarge,
    ImportProblem,
    InvalidInput,
)
from newsletter.net import open_url
from newsletter.settings import Settings

MARKDOWN_SUFFIXES = (".md", ".markdown")
USER_AGENT = "newsletter-pipeline/0.1 (+snippet import)"
FEED_TYPES = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
READ_CHUNK = 64 * 1024
Progress = Callable[[ImportReport], None]
__all__ = ["ImportReport", "fetch_feed", "import_snippets"]


def import_snippets(
    session: Session, *, settings: Settings, source: str, on_progress: Progress | None = None
) -> ImportReport:
    """Import from a Markdown file or folder, or a feed file or http(s) URL.

    ``on_progress`` is called with the report so far after every entry (a feed that
    is not well-formed XML is read twice: its counts start again at the second read).

    One bad entry is a line in ``report.problems`` and the rest are kept; a source that
    cannot be read at all (no such file, not a feed, HTTP error, over a fetch limit)
    raises InvalidInput (a FetchFailed for the fetch) and leaves no snippet behind.
    The caller commits.
    """
    if urlsplit(source).scheme.lower() in ("http", "https"):
        data, final_url = fetch_feed(source, settings=settings)
        return _import_feed(
            session,
            settings=settings,
            open_source=lambda: io.BytesIO(data),
            name=source,
            base=final_url,
            on_progress=on_progress,
        )
    report = ImportReport(on_change=on_progress)
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MARKDOWN_SUFFIXES
        )
        if not files:
            raise InvalidInput("no Markdown (.md) files in this folder", where=str(path))
        for file in files:
            _import_markdown(
                session,
                settings=settings,
                path=file,
                name=str(file.relative_to(path)),
                report=report,
            )
        return report
    if not path.is_file():
        raise InvalidInput("no such file or folder", where=str(path))
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        _import_markdown(session, settings=settings, path=path, name=path.name, report=report)
        return report
    return _import_feed(
        session,
        settings=settings,
        open_source=lambda: path.open("rb"),
        name=path.name,
        base=None,
        on_progress=on_progress,
    )


def fetch_feed(url: str, *, settings: Settings) -> tuple[bytes, str]:
    """The feed's bytes and its final URL (after redirects: the base for relative links).

    Bounded three ways (issue 12 point 8): at most ``feed_max_bytes`` (Content-Length
    first, then the bytes as they arrive), one deadline of ``fetch_deadline_seconds``
    for the whole fetch, and only addresses :mod:`newsletter.net`'s policy allows
    (``fetch_allow_private``). Raises InvalidInput for an HTTP error status, and the
    FetchFailed kinds otherwise, each one line naming the URL and the setting to change.
    """
    try:
        with open_url(
            url,
            deadline_seconds=settings.fetch_deadline_seconds,
            allow_private=settings.fetch_allow_private,
            user_agent=USER_AGENT,
            headers={"Accept": FEED_TYPES},
        ) as response:
            if not 200 <= response.status < 300:
                raise InvalidInput(f"cannot fetch the feed: HTTP {response.status}", where=url)
            return response.body(settings.feed_max_bytes), response.url
    except FetchFailed as err:
        hint = {
            FetchTooLarge: " (NEWSLETTER_FEED_MAX_BYTES)",
            FetchTimedOut: " (NEWSLETTER_FETCH_DEADLINE_SECONDS)",
        }.get(type(err), "")
        raise type(err)(f"cannot fetch the feed: {err.reason}{hint}", where=url) from err


# ---------------------------------------------------------------- Markdown


def _import_markdown(
    session: Session, *, settings: Settings, path: Path, name: str, report: ImportReport
) -> None:
    try:
        found = read_markdown(path, name)
        _save(session, settings=settings, values=found.values, where=found.where, report=report)
    except ImportProblem as problem:
        report.reject(problem)


# ---------------------------------------------------------------- feeds


def _import_feed(
    session: Session,
    *,
    settings: Settings,
    open_source: Callable[[], BinaryIO],
    name: str,
    base: str | None,
    on_progress: Progress | None,
) -> ImportReport:
    """Stream the feed into snippets; a feed that is not well-formed XML is read again,
    whole, by feedparser's forgiving parser, after what the stream saved is rolled back
    (a savepoint), so no entry is counted twice and a fault leaves nothing behind."""
    try:
        with savepoint(session), open_source() as source:
            entries = _FeedEntries(
                session, settings, name, base, ImportReport(on_change=on_progress)
            )
            return _stream_feed(source, name=name, entries=entries)
    except FeedNotWellFormed:
        pass
    with open_source() as source:
        parsed = parse_whole(source.read(), name=name)
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        raise InvalidInput(
            "not an RSS or Atom feed" + (f" ({reason})" if reason else ""), where=name
        )
    entries = _FeedEntries(session, settings, name, base, ImportReport(on_change=on_progress))
    for entry in parsed.entries:
        entries.add(entry, site=parsed.feed.get("link"))
    return entries.finish(site=parsed.feed.get("link"))


def _stream_feed(source: BinaryIO, *, name: str, entries: _FeedEntries) -> ImportReport:
    stream = FeedStream(name=name)
    while chunk := source.read(READ_CHUNK):
        for entry in stream.write(chunk):
            entries.add(entry, site=stream.link)
    for entry in stream.close():
        entries.add(entry, site=stream.link)
    if not stream.version and not entries.count:
        raise InvalidInput("not an RSS or Atom feed", where=name)
    return entries.finish(site=stream.link)


class _FeedEntries:
    """Entries to snippets, in document order, numbered from 1 as the feed has them.

    Relative links resolve against the site's ``<link>``, else the feed's own URL. The
    site's link usually comes before the entries (Atom's schema puts it there, RFC 4287
    4.1.1); an entry that needs it before it is known waits, with every entry after it
    (so the order, and which of two equal links is "the same as" the other, stay), until
    it appears or the feed ends. Only such entries are held; the rest are saved at once.
    """

    def __init__(
        self,
        session: Session,
        settings: Settings,
        name: str,
        base: str | None,
        report: ImportReport,
    ) -> None:
        self.session, self.settings, self.name, self.base = session, settings, name, base
        self.report = report
        self.count = 0
        self._seen: dict[str, int] = {}  # canonical link -> position, for duplicates
        self._waiting: list[tuple[int, Any]] = []

    def add(self, entry: Any, *, site: str | None) -> None:
        self.count += 1
        if site is not None and self._waiting:
            self._flush(site)
        if self._waiting or (site is None and needs_base(entry)):
            self._waiting.append((self.count, entry))
        else:
            self._save(self.count, entry, site)

    def finish(self, *, site: str | None) -> ImportReport:
        self._flush(site)
        return self.report

    def _flush(self, site: str | None) -> None:
        waiting, self._waiting = self._waiting, []
        for position, entry in waiting:
            self._save(position, entry, site)

    def _save(self, position: int, entry: Any, site: str | None) -> None:
        where = f"{self.name}: entry {position}"
        # Relative entry links resolve against the site's <link>, else the feed's own URL.
        site_url = absolute_url(site or "", self.base or "")
        base_url = site_url if urlsplit(site_url).scheme in ("http", "https") else self.base
        try:
            values = entry_values(entry, base_url=base_url or "", feed_name=self.name, where=where)
            link = _dedupe_key(values["url"])
            if link in self._seen:
                raise ImportProblem(f"same link as entry {self._seen[link]}; skipped", where=where)
            self._seen[link] = position
            _save(
                self.session, settings=self.settings, values=values, where=where, report=self.report
            )
        except ImportProblem as problem:
            self.report.reject(problem)


def _dedupe_key(url: str) -> str:
    try:
        return canonical_url(url)
    except InvalidInput:
        return url  # refused later, with its reason


def _save(
    session: Session,
    *,
    settings: Settings,
    values: dict[str, Any],
    where: str | Callable[[str | None], str],
    report: ImportReport,
) -> None:
    """Upsert one entry's values; ImportProblem at ``where`` (or ``where(field)``: the
    field's own line of a Markdown file) when they are refused."""
    # Validation runs before anything is written, so a refused entry leaves no trace.
    values = dict(values)
    markdown = values.pop("summary_markdown", None)
    try:
        snippet, outcome = upsert_snippet(
            session, settings=settings, data=values, keep_pinned="pinned" not in values
        )
    except ImportProblem:
        raise
    except InvalidInput as err:
        field_name = f"{err.field}: " if err.field else ""
        at = where(err.field) if callable(where) else where
        problem = ImportProblem(f"{field_name}{err.reason}", where=at)
        problem.field, problem.reason = err.field, err.reason  # for the console's table
        raise problem from err
    assert snippet.id is not None
    if markdown is not None or outcome is UpsertOutcome.UPDATED:  # a feed's summary is HTML
        keep_markdown(session, snippet_id=snippet.id, markdown=markdown)
    report.snippet_ids.append(snippet.id)
    report.count(outcome)
