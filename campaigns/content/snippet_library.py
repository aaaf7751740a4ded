"""The snippet library as marketers edit it: create, edit, retire, search and import.

The console, the API and the CLI call these; :mod:`campaigns.content.snippets` keeps the
rules of one snippet (canonical URL, trimming). Summaries are typed as Markdown and kept
as the plain text a card shows (so ``**bold**`` never reaches a list as asterisks), and the
Markdown itself is kept beside it (:mod:`campaigns.content.sources`) so the edit form shows
what was typed and the email keeps its paragraphs, lists and links
(:mod:`campaigns.content.summaries`); :func:`markdown_preview` shows how it reads. Every
change is written to the audit log with the actor the door passes in.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from sqlmodel import Session, col, delete, select

from campaigns.content import snippets, sources, summaries
from campaigns.content.import_report import EntryProblem
from campaigns.content.snippet_import import (
    MARKDOWN_SUFFIXES,
    ImportReport,
    Progress,
    import_snippets,
)
from campaigns.models import Campaign, CampaignSnippet, Snippet, SnippetPublic, SnippetRetirement
from newsletter import audit
from newsletter.errors import ImportProblem, InvalidInput, StateError
from newsletter.headers import check_url_text
from newsletter.settings import Settings

# What a preview may show of rendered Markdown (nh3 drops everything else, scripts too).
PREVIEW_TAGS = summaries.SUMMARY_TAGS
EDITABLE_FIELDS = (
    "title",
    "summary",
    "url",
    "image_url",
    "image_alt",
    "category",
    "published_at",
    "pinned",
)
MAX_UPLOAD_FILES = 200


def summary_text(markdown: str) -> str:
    """The plain text a card shows for a Markdown summary."""
    return summaries.flat_text(markdown)


def markdown_preview(markdown: str) -> str:
    """Safe HTML of a Markdown summary for a preview: the very HTML the email and the
    archive page show (:func:`campaigns.content.summaries.clean_html`)."""
    return summaries.clean_html(markdown)


def _public(snippet: Snippet) -> dict[str, Any]:
    return SnippetPublic.model_validate(snippet).model_dump(
        mode="json", include=set(EDITABLE_FIELDS)
    )


def _markdown_of(data: Mapping[str, Any]) -> str | None:
    """The summary's Markdown with LF line ends: a browser's textarea sends CRLF (HTML's
    form encoding), which would make an unchanged summary look changed."""
    markdown = str(data.get("summary") or "").replace("\r\n", "\n").replace("\r", "\n")
    return markdown if markdown.strip() else None


def summary_source(session: Session, *, snippet_id: int) -> str:
    """What the edit form shows in the summary box: the Markdown typed (or imported from
    a Markdown file), else the plain-text summary (feed entries, older snippets); NotFound."""
    snippet = snippets.get_snippet(session, snippet_id=snippet_id)
    markdown = sources.summary_markdown(session, snippet_id=snippet_id)
    return markdown if markdown is not None else snippet.summary


def _as_values(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput("unknown field", field=sorted(unknown)[0])
    values = dict(data)
    if "summary" in values:
        values["summary"] = summary_text(str(values["summary"] or ""))
    if "published_at" in values and not hasattr(values["published_at"], "tzinfo"):
        values["published_at"] = snippets.parse_published(values["published_at"])
    return values


def create_snippet(
    session: Session,
    *,
    settings: Settings,
    data: Mapping[str, Any],
    actor: str,
    source: str = "manual",
) -> LibraryEntry:
    """A new snippet from the fields of :data:`EDITABLE_FIELDS` (summary in Markdown).

    Raises InvalidInput naming the field (empty title or summary, a URL that is not
    absolute http(s), a URL already in the library).
    """
    values = _as_values(data)
    values.setdefault("published_at", None)
    snippet = snippets.add_snippet(
        session, settings=settings, data={**values, "source": source[:500]}
    )
    assert snippet.id is not None
    sources.keep_markdown(session, snippet_id=snippet.id, markdown=_markdown_of(data))
    audit.record(session, actor, "snippet.create", "snippet", snippet.id, after=_public(snippet))
    return entry(session, snippet_id=snippet.id or 0)


def edit_snippet(
    session: Session,
    *,
    settings: Settings,
    snippet_id: int,
    changes: Mapping[str, Any],
    actor: str,
) -> LibraryEntry:
    """Change some fields (summary in Markdown), validated like a new snippet; NotFound,
    InvalidInput. Campaigns not yet sending show the change at their next rendering."""
    before = _public(snippets.get_snippet(session, snippet_id=snippet_id))
    snippet = snippets.update_snippet(
        session, settings=settings, snippet_id=snippet_id, changes=_as_values(changes)
    )
    if "summary" in changes:
        sources.keep_markdown(session, snippet_id=snippet_id, markdown=_markdown_of(changes))
    after = _public(snippet)
    if after != before:
        audit.record(
            session, actor, "snippet.edit", "snippet", snippet_id, before=before, after=after
        )
    return entry(session, snippet_id=snippet_id)


def is_retired(session: Session, *, snippet_id: int) -> bool:
    return session.get(SnippetRetirement, snippet_id) is not None


def retire(session: Session, *, snippet_id: int, actor: str) -> LibraryEntry:
    """Take a snippet out of use: assembly never picks it again (issues that have it keep
    it). StateError when it is retired already, NotFound."""
    snippets.get_snippet(session, snippet_id=snippet_id)
    if is_retired(session, snippet_id=snippet_id):
        raise StateError(f"snippet {snippet_id} is retired already")
    session.add(SnippetRetirement(snippet_id=snippet_id, retired_by=actor[:100]))
    session.flush()
    audit.record(
        session,
        actor,
        "snippet.retire",
        "snippet",
        snippet_id,
        before={"retired": False},
        after={"retired": True},
    )
    return entry(session, snippet_id=snippet_id)


def unretire(session: Session, *, snippet_id: int, actor: str) -> LibraryEntry:
    """Put a retired snippet back in use; StateError when it is not retired, NotFound."""
    snippets.get_snippet(session, snippet_id=snippet_id)
    if not is_retired(session, snippet_id=snippet_id):
        raise StateError(f"snippet {snippet_id} is not retired")
    session.exec(delete(SnippetRetirement).where(col(SnippetRetirement.snippet_id) == snippet_id))
    session.flush()
    audit.record(
        session,
        actor,
        "snippet.unretire",
        "snippet",
        snippet_id,
        before={"retired": True},
        after={"retired": False},
    )
    return entry(session, snippet_id=snippet_id)


@dataclass(frozen=True)
class SnippetFilter:
    """What the library list shows: ``query`` in the title, summary or URL (any case);
    ``used``: in some live campaign or in none; ``retired`` False hides retired ones."""

    query: str = ""
    category: str | None = None
    used: bool | None = None
    pinned: bool | None = None
    retired: bool | None = False


@dataclass(frozen=True)
class LibraryEntry:
    listing: snippets.SnippetListing
    retired: bool

    @property
    def snippet(self) -> Snippet:
        return self.listing.snippet

    def to_dict(self) -> dict[str, Any]:
        return {**self.listing.to_dict(), "retired": self.retired}


def _keep(entry: LibraryEntry, wanted: SnippetFilter) -> bool:
    s = entry.snippet
    query = wanted.query.strip().lower()
    checks = (
        not query or any(query in (v or "").lower() for v in (s.title, s.summary, s.url)),
        wanted.category is None or s.category == wanted.category,
        wanted.used is None or bool(entry.listing.used_in) == wanted.used,
        wanted.pinned is None or s.pinned == wanted.pinned,
        wanted.retired is None or entry.retired == wanted.retired,
    )
    return all(checks)


def search_snippets(
    session: Session, *, wanted: SnippetFilter | None = None, limit: int = 500
) -> list[LibraryEntry]:
    """The snippets that pass ``wanted``, freshest first, at most ``limit``."""
    wanted = wanted or SnippetFilter()
    retired = set(session.exec(select(SnippetRetirement.snippet_id)).all())
    entries = (
        LibraryEntry(listing, listing.snippet.id in retired)
        for listing in snippets.list_snippets(session)
    )
    return [e for e in entries if _keep(e, wanted)][:limit]


def entry(session: Session, *, snippet_id: int) -> LibraryEntry:
    """One snippet with its campaigns and whether it is retired; NotFound."""
    snippet = snippets.get_snippet(session, snippet_id=snippet_id)
    uses = session.exec(
        select(CampaignSnippet, Campaign)
        .join(Campaign, col(Campaign.id) == col(CampaignSnippet.campaign_id))
        .where(CampaignSnippet.snippet_id == snippet_id)
        .order_by(col(Campaign.id))
    ).all()
    listing = snippets.SnippetListing(
        snippet,
        [snippets.CampaignUse(c.id or 0, c.week, c.status, link.resent) for link, c in uses],
    )
    return LibraryEntry(listing, is_retired(session, snippet_id=snippet_id))


def categories(session: Session) -> list[str]:
    """Every category slug in the library, sorted."""
    return sorted(set(session.exec(select(Snippet.category)).all()))


@dataclass(frozen=True)
class LibraryPage:
    entries: list[LibraryEntry]
    categories: list[str]


def library_page(session: Session, *, wanted: SnippetFilter) -> LibraryPage:
    """The console's list: the snippets that pass ``wanted`` and every category to filter by."""
    return LibraryPage(search_snippets(session, wanted=wanted), categories(session))


def _audit_import(session: Session, actor: str, source: str, report: ImportReport) -> None:
    audit.record(
        session,
        actor,
        "snippet.import",
        "snippet_import",
        None,
        after={"source": source, **report.to_dict()},
    )


def import_feed(
    session: Session,
    *,
    settings: Settings,
    url: str,
    actor: str,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import an RSS/Atom feed URL (campaigns.content.snippet_import): good entries kept,
    bad ones listed in ``report.problems``; FetchFailed or InvalidInput when the feed
    cannot be read at all. Only http(s) URLs: a door never names a server path.
    ``on_progress`` gets the report so far after each entry."""
    check_feed_url(url)
    report = import_snippets(
        session, settings=settings, source=url.strip(), on_progress=on_progress
    )
    _audit_import(session, actor, url.strip(), report)
    return report


def check_feed_url(url: str) -> None:
    """InvalidInput unless ``url`` is http(s): checked before a door starts an import."""
    if not url.strip().lower().startswith(("http://", "https://")):
        raise InvalidInput("give the feed's http(s) URL", field="url")
    check_url_text(url.strip())


def check_upload(files: list[tuple[str, bytes]]) -> None:
    """InvalidInput for no file or more than :data:`MAX_UPLOAD_FILES` at once."""
    if not files:
        raise InvalidInput("choose at least one Markdown (.md) file", field="files")
    if len(files) > MAX_UPLOAD_FILES:
        raise InvalidInput(f"at most {MAX_UPLOAD_FILES} files at once", field="files")


def import_markdown_files(
    session: Session,
    *,
    settings: Settings,
    files: list[tuple[str, bytes]],
    actor: str,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import uploaded Markdown files (name, bytes) like ``snippets import FOLDER``: each
    bad file is a line in ``report.problems`` naming it; a file not ending .md is one too.
    ``on_progress`` gets the report so far after each file (files not .md come first)."""
    check_upload(files)
    skipped = ImportReport(on_change=on_progress)
    with tempfile.TemporaryDirectory(prefix="snippet-upload-") as folder:
        written = 0
        for number, (raw_name, data) in enumerate(files, start=1):
            name = PurePath(raw_name.replace("\\", "/")).name or f"file-{number}"
            if not name.lower().endswith(MARKDOWN_SUFFIXES):
                skipped.reject(ImportProblem("not a Markdown file (.md)", where=name))
                continue
            (Path(folder) / f"{number:03d}-{name}").write_bytes(data)
            written += 1
        report = (
            import_snippets(session, settings=settings, source=folder, on_progress=_after(skipped))
            if written
            else ImportReport()
        )
    report.problems = skipped.problems + [_strip_number(p) for p in report.problems]
    report.rejected = skipped.rejected + [
        EntryProblem(_strip_number(r.source), r.at, r.field, r.reason) for r in report.rejected
    ]
    _audit_import(session, actor, f"{len(files)} uploaded file(s)", report)
    return report


def _after(skipped: ImportReport) -> Progress | None:
    """Progress of the files imported, counted after the ``skipped`` ones (not .md)."""
    follow = skipped.on_change
    if follow is None:
        return None

    def progress(report: ImportReport) -> None:
        follow(
            ImportReport(
                report.created,
                report.updated,
                report.unchanged,
                skipped.problems + report.problems,
            )
        )

    return progress


def _strip_number(problem: str) -> str:
    """'003-a.md:1: ...' -> 'a.md:1: ...': the name as the marketer uploaded it."""
    head, sep, rest = problem.partition("-")
    return rest if sep and head.isdigit() and len(head) == 3 else problem
