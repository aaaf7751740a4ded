"""Import snippets from Markdown files (YAML front matter) and RSS 2.0 / Atom feeds.

The normal path is the customer's blog feed, imported weekly, so an import must be
idempotent (upsert on the canonical URL) and forgiving: a bad entry is reported with
its position and skipped, the good ones are kept. Feed HTML is reduced to plain text
with nh3 (never by regex) and every link is made absolute.
"""

from __future__ import annotations

import codecs
import html
import re
import urllib.error
import urllib.request
from calendar import timegm
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import frontmatter
import nh3
import yaml
from markdown_it import MarkdownIt
from sqlmodel import Session

from campaigns.content.snippets import (
    UpsertOutcome,
    canonical_url,
    collapse_whitespace,
    upsert_snippet,
)
from newsletter.clock import as_utc
from newsletter.errors import ImportProblem, InvalidInput
from newsletter.settings import Settings
from newsletter.text import decode_text, utf16_encoding

MARKDOWN_SUFFIXES = (".md", ".markdown")
FETCH_TIMEOUT_SECONDS = 30
FETCH_MAX_BYTES = 10 * 1024 * 1024
USER_AGENT = "newsletter-pipeline/0.1 (+snippet import)"
# Block elements become line breaks before all tags go, so "a</p><p>b" reads "a b".
# fmt: off
_BLOCK_TAGS = {
    "p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "tr", "td", "th", "section", "article", "figure", "figcaption", "pre",
}
# fmt: on


@dataclass
class ImportReport:
    """Counts per outcome; ``problems`` are the skipped entries, each with where it was."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)
    snippet_ids: list[int] = field(default_factory=list)

    def count(self, outcome: UpsertOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "problems": list(self.problems),
            "snippet_ids": list(self.snippet_ids),
        }


def html_to_text(markup: str) -> str:
    """Readable plain text from untrusted HTML: tags and scripts gone, entities decoded."""
    if not markup:
        return ""
    blocks = nh3.clean(markup, tags=_BLOCK_TAGS, attributes={}, strip_comments=True)
    # After nh3 the remaining tags are canonical and attribute-free (<p>, </p>, <br>):
    # each becomes a space, then a second pass with no tags at all drops anything left.
    for tag in _BLOCK_TAGS:
        blocks = blocks.replace(f"<{tag}>", " ").replace(f"</{tag}>", " ")
    text = nh3.clean(blocks, tags=set(), strip_comments=True)
    return collapse_whitespace(html.unescape(text))


def import_snippets(session: Session, *, settings: Settings, source: str) -> ImportReport:
    """Import from a Markdown file or folder, or a feed file or http(s) URL.

    One bad entry is a line in ``report.problems`` and the rest are kept; a source that
    cannot be read at all (no such file, not a feed, HTTP error) raises InvalidInput.
    The caller commits.
    """
    report = ImportReport()
    if urlsplit(source).scheme.lower() in ("http", "https"):
        data, final_url = fetch_url(source)
        _import_feed(
            session, settings=settings, data=data, name=source, base=final_url, report=report
        )
        return report
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
    else:
        _import_feed(
            session,
            settings=settings,
            data=path.read_bytes(),
            name=path.name,
            base=None,
            report=report,
        )
    return report


def fetch_url(url: str) -> tuple[bytes, str]:
    """The feed's bytes and its final URL (after redirects: the base for relative links)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            data = response.read(FETCH_MAX_BYTES + 1)
            final = response.geturl()
    except urllib.error.HTTPError as err:
        raise InvalidInput(f"cannot fetch the feed: HTTP {err.code}", where=url) from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise InvalidInput(f"cannot fetch the feed: {reason}", where=url) from err
    if len(data) > FETCH_MAX_BYTES:
        raise InvalidInput(f"the feed is larger than {FETCH_MAX_BYTES} bytes", where=url)
    return data, final


# ---------------------------------------------------------------- Markdown

_markdown = MarkdownIt("commonmark")


def _import_markdown(
    session: Session, *, settings: Settings, path: Path, name: str, report: ImportReport
) -> None:
    try:
        values = _markdown_snippet(path, name)
        _save(session, settings=settings, values=values, where=f"{name}:1", report=report)
    except ImportProblem as problem:
        report.problems.append(str(problem))


def _markdown_snippet(path: Path, name: str) -> dict[str, Any]:
    try:
        text = decode_text(path.read_bytes(), source=name)
    except OSError as err:
        raise ImportProblem(f"cannot read: {err.strerror or err}", where=name) from err
    except InvalidInput as err:  # UTF-16, not text, not UTF-8: say which, not "no front matter"
        raise ImportProblem(err.reason, where=name) from err
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        # The YAML starts on line 2, after the opening '---'.
        line = mark.line + 2 if mark is not None else 1
        reason = collapse_whitespace(getattr(err, "problem", None) or str(err))
        raise ImportProblem(
            f"front matter is not valid YAML: {reason}", where=f"{name}:{line}"
        ) from err
    meta = post.metadata
    if not meta:
        raise ImportProblem(
            "front matter missing (start the file with a '---' block)", where=f"{name}:1"
        )
    where = f"{name}:1"
    title = _text_field(meta, "title", where)
    url = meta.get("url") or meta.get("canonical_url") or meta.get("link")
    if not url:
        raise ImportProblem("front matter: missing 'url'", where=where)
    summary = meta.get("summary")
    if summary is None or not str(summary).strip():
        summary = html_to_text(_markdown.render(post.content))
    if not str(summary).strip():
        raise ImportProblem("no summary: add 'summary' to the front matter or a body", where=where)
    image = _opt_str(meta.get("image") or meta.get("image_url"))
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in tags.split(",")]
    if not isinstance(tags, list):
        raise ImportProblem("front matter: 'tags' must be a list", where=where)
    return {
        "title": title,
        "summary": html_to_text(str(summary)),
        "url": str(url),
        # A site-relative image ("/images/x.jpg") belongs to the article's site.
        "image_url": _absolute(image, str(url)) if image else None,
        "image_alt": _opt_str(meta.get("image_alt")),
        "category": _opt_str(meta.get("category")) or "general",
        "tags": [str(t) for t in tags],
        "author": _opt_str(meta.get("author")),
        "published_at": _front_matter_date(meta, where),
        "source": f"markdown:{name}",
        "pinned": bool(meta.get("pinned", False)),
    }


def _text_field(meta: dict[str, Any], key: str, where: str) -> str:
    value = meta.get(key)
    if value is None or not str(value).strip():
        raise ImportProblem(f"front matter: missing {key!r}", where=where)
    return collapse_whitespace(str(value))


def _opt_str(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _front_matter_date(meta: dict[str, Any], where: str) -> datetime:
    value = meta.get("published") or meta.get("date")
    if value is None:
        raise ImportProblem("front matter: missing 'published' (a date)", where=where)
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as err:
        raise ImportProblem(
            f"front matter: 'published' {value!r} is not an ISO date", where=where
        ) from err
    return as_utc(parsed)


# ---------------------------------------------------------------- feeds


def _import_feed(
    session: Session,
    *,
    settings: Settings,
    data: bytes,
    name: str,
    base: str | None,
    report: ImportReport,
) -> None:
    # No content-location for feedparser: it would resolve relative links against the
    # feed's URL before we see them, so the same feed imported from a file and from its
    # URL (or via a feed proxy) would give different, duplicate snippets.
    parsed = feedparser.parse(feed_bytes(data, name=name))
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        raise InvalidInput(
            "not an RSS or Atom feed" + (f" ({reason})" if reason else ""), where=name
        )
    # Relative entry links resolve against the site's <link>, else the feed's own URL.
    site = _absolute(parsed.feed.get("link") or "", base or "")
    base_url = site if urlsplit(site).scheme in ("http", "https") else (base or "")
    seen: dict[str, int] = {}
    for position, entry in enumerate(parsed.entries, start=1):
        where = f"{name}: entry {position}"
        try:
            values = _feed_snippet(entry, base_url=base_url, feed_name=name, where=where)
            link = _dedupe_key(values["url"])
            if link in seen:
                raise ImportProblem(f"same link as entry {seen[link]}; skipped", where=where)
            seen[link] = position
            _save(session, settings=settings, values=values, where=where, report=report)
        except ImportProblem as problem:
            report.problems.append(str(problem))


_XML_ENCODING = re.compile(rb"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")


def feed_bytes(data: bytes, *, name: str) -> bytes:
    """A feed's bytes as feedparser reads them best; InvalidInput for BOM-less UTF-16.

    feedparser honours the XML declaration's encoding (a windows-1252 feed stays one), so
    bytes are only touched when a byte-order mark says more: a UTF-8 BOM is dropped, and
    UTF-16 with a BOM becomes UTF-8 with its declaration saying so (feedparser trusts a
    declared "UTF-8" over the BOM and fails). XML 1.0, appendix F.
    """
    encoding = utf16_encoding(data)
    if encoding is None:
        return data.removeprefix(codecs.BOM_UTF8)
    text = decode_text(data, source=name)  # raises, naming UTF-16, when there is no BOM
    return _XML_ENCODING.sub(rb'\1"utf-8"', text.encode("utf-8"), count=1)


def _dedupe_key(url: str) -> str:
    try:
        return canonical_url(url)
    except InvalidInput:
        return url  # refused later, with its reason


def _absolute(url: str, base_url: str) -> str:
    url = url.strip()
    if urlsplit(url).scheme:
        return url
    return urljoin(base_url, url) if base_url else url


def _feed_snippet(entry: Any, *, base_url: str, feed_name: str, where: str) -> dict[str, Any]:
    title = html_to_text(entry.get("title", ""))
    if not title:
        raise ImportProblem("missing title", where=where)
    link = entry.get("link") or ""
    if not link.strip():
        raise ImportProblem("missing link", where=where)
    link = _absolute(link, base_url)
    if urlsplit(link).scheme not in ("http", "https"):
        raise ImportProblem(
            f"link {link!r} is not an http(s) URL and there is no base URL to resolve it against",
            where=where,
        )
    body = entry.get("summary") or ""
    if not body and entry.get("content"):
        body = entry["content"][0].get("value", "")
    summary = html_to_text(body)
    if not summary:
        raise ImportProblem("missing summary", where=where)
    image_url, image_alt = _feed_image(entry)
    terms = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
    return {
        "title": title,
        "summary": summary,
        "url": link,
        "image_url": _absolute(image_url, base_url) if image_url else None,
        "image_alt": image_alt or (title if image_url else None),
        "category": html_to_text(terms[0]) if terms else "general",
        "tags": [html_to_text(t) for t in terms],
        "author": html_to_text(entry.get("author", "")) or None,
        "published_at": _entry_date(entry),
        "source": f"feed:{feed_name}",
    }


def _feed_image(entry: Any) -> tuple[str | None, str | None]:
    for media in entry.get("media_content") or []:
        if media.get("url") and media.get("medium", "image") == "image":
            return media["url"], None
    for thumb in entry.get("media_thumbnail") or []:
        if thumb.get("url"):
            return thumb["url"], None
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return link.get("href"), None
    return None, None


def _entry_date(entry: Any) -> datetime | None:
    """The entry's date; None (no date) makes it new as of its first import."""
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp is None:
        return None
    return datetime.fromtimestamp(timegm(stamp), tz=UTC)


def _save(
    session: Session,
    *,
    settings: Settings,
    values: dict[str, Any],
    where: str,
    report: ImportReport,
) -> None:
    # Validation runs before anything is written, so a refused entry leaves no trace.
    try:
        snippet, outcome = upsert_snippet(
            session, settings=settings, data=values, keep_pinned="pinned" not in values
        )
    except ImportProblem:
        raise
    except InvalidInput as err:
        field_name = f"{err.field}: " if err.field else ""
        raise ImportProblem(f"{field_name}{err.reason}", where=where) from err
    report.count(outcome)
    assert snippet.id is not None
    report.snippet_ids.append(snippet.id)
