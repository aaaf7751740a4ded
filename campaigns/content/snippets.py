"""The snippet library: add, change, remove and list the articles an issue is built from.

Snippets are keyed by their canonical URL, so an article can never be in the library
twice; importers upsert through :func:`upsert_snippet`. A summary is plain text, trimmed
at a word boundary so a card never ends mid-word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from sqlmodel import Session, col, select

from campaigns.content.web_version import site_url
from campaigns.models import (
    Campaign,
    CampaignSnippet,
    CampaignStatus,
    Snippet,
    SnippetCreate,
    SnippetPublic,
)
from newsletter.clock import as_utc, utcnow
from newsletter.errors import InvalidInput, NotFound, StateError
from newsletter.hostnames import ascii_hostname, has_unsafe_characters
from newsletter.mail import ANY_CASE_HOLE
from newsletter.settings import Settings

TITLE_MAX = 300
ALT_MAX = 500
URL_MAX = 2000
# Where the web app serves our own sample images (content/images); a snippet's image may
# be a path on our site ("/static/content/images/x.jpg"), resolved against
# NEWSLETTER_BASE_URL whenever it is rendered, so a new port or host never breaks it.
SITE_IMAGES_PATH = "/static/content/images/"
ELLIPSIS = "…"
_SPACE = re.compile(r"\s+")
_NON_SLUG = re.compile(r"[^a-z0-9]+")
# Fields a re-import compares; ``pinned`` is a marketer's choice a feed never overrides.
COMPARED_FIELDS = (
    "title",
    "summary",
    "image_url",
    "image_alt",
    "category",
    "tags",
    "author",
    "published_at",
    "source",
)


class UpsertOutcome(StrEnum):
    """What an import did with one snippet (the counts of an ImportReport)."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def collapse_whitespace(text: str) -> str:
    """Runs of whitespace (newlines too) as one space, none at either end."""
    return _SPACE.sub(" ", text).strip()


def trim_text(text: str, max_chars: int) -> str:
    """Whitespace collapsed and cut at a word boundary, ending in an ellipsis if cut."""
    text = collapse_whitespace(text)
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - len(ELLIPSIS) + 1]
    space = cut.rfind(" ")
    # One giant word: cut inside it rather than return nothing.
    cut = cut[:space] if space > 0 else cut[: max_chars - len(ELLIPSIS)]
    return cut.rstrip(" ,;:.\u00b7-\u2013\u2014") + ELLIPSIS  # no dangling separator


def trim_summary(text: str, *, settings: Settings) -> str:
    """A card's summary: at most ``summary_max_chars`` characters, cut at a word."""
    return trim_text(text, settings.summary_max_chars)


def category_slug(value: str | None) -> str:
    """'Back Pain' -> 'back-pain': the key subscribers' topic choices match on."""
    slug = _NON_SLUG.sub("-", (value or "").lower()).strip("-")[:100]
    return slug or "general"


def canonical_url(url: str, *, field_name: str = "url") -> str:
    """An absolute http(s) URL, normalised so re-imports match: lower-case scheme and host,
    no fragment, no ``utm_*`` tracking parameters."""
    text = (url or "").strip()
    parts = _split(text, field_name)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{text!r} is not an absolute http(s) URL", field=field_name)
    _refuse_placeholder(text, field_name)  # as typed: the query's encoding would hide one
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.lower().startswith("utm_")
        ]
    )
    result = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))
    _refuse_placeholder(result, field_name)  # as stored: lower case made "[%NAME%]" live
    if len(result) > URL_MAX:
        raise InvalidInput(f"longer than {URL_MAX} characters", field=field_name)
    return result


def _split(text: str, field_name: str) -> SplitResult:
    """``urlsplit``, whose ValueError (an unclosed "[" in the host) is one line too: a
    review found one such feed link ending the whole import."""
    try:
        return urlsplit(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a valid URL", field=field_name) from None


def _refuse_placeholder(url: str, field_name: str) -> None:
    """A snippet's link is the article's: one naming a per-reader placeholder would be
    filled with each reader's link or name on the way to that site (rendering also
    makes any such text inert: ``newsletter.mail.inert_url``)."""
    found = ANY_CASE_HOLE.search(url)
    if found:
        raise InvalidInput(
            f"{url!r} holds {found.group()}, which is filled per reader; "
            "write it percent-encoded if the site needs it",
            field=field_name,
        )


def optional_http_url(url: str | None, *, field_name: str) -> str | None:
    """An optional link (e.g. an image): absolute http(s) or nothing; never kept otherwise.

    Its host must be a valid host name or IP address (:mod:`newsletter.hostnames`) and
    the URL holds no whitespace or control character: an image's origin goes into the
    archive page's Content-Security-Policy. Raises InvalidInput naming ``field_name``.
    """
    if url is None or not url.strip():
        return None
    text = url.strip()
    if has_unsafe_characters(text):
        raise InvalidInput("a URL may not hold spaces or control characters", field=field_name)
    parts = _split(text, field_name)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{text!r} is not an absolute http(s) URL", field=field_name)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if ascii_hostname(parts.hostname) is None or not port_ok:
        raise InvalidInput(f"{text!r} has no valid host name or port", field=field_name)
    _refuse_placeholder(text, field_name)
    if len(text) > URL_MAX:
        raise InvalidInput(f"longer than {URL_MAX} characters", field=field_name)
    return text


def is_site_path(url: str) -> bool:
    """``/x/y.jpg``: a path on our own site (``//host/...`` is another site, not a path)."""
    return url.startswith("/") and not url.startswith("//")


def optional_image_url(url: str | None, *, field_name: str) -> str | None:
    """An optional image: an absolute http(s) URL (:func:`optional_http_url`) or a path on
    our site (:func:`is_site_path`), kept as a path; raises InvalidInput naming the field."""
    text = (url or "").strip()
    if not is_site_path(text):
        return optional_http_url(url, field_name=field_name)
    if has_unsafe_characters(text):
        raise InvalidInput("a URL may not hold spaces or control characters", field=field_name)
    _refuse_placeholder(text, field_name)
    if len(text) > URL_MAX:
        raise InvalidInput(f"longer than {URL_MAX} characters", field=field_name)
    return text


def loadable_url(settings: Settings, url: str) -> str:
    """``url`` as a reader's client can load it: a path on our site becomes an address on
    NEWSLETTER_BASE_URL (web_version.site_url); anything else is returned as is."""
    return site_url(settings, url) if is_site_path(url) else url


SnippetInput = SnippetCreate | Mapping[str, Any]


def _as_create(data: SnippetInput) -> SnippetCreate:
    """A SnippetCreate from a model or a mapping; over-long text is trimmed first, not refused."""
    if isinstance(data, SnippetCreate):
        return data
    values = {k: v for k, v in data.items() if not (k == "published_at" and v is None)}
    for name, limit in (("title", TITLE_MAX), ("image_alt", ALT_MAX), ("author", 200)):
        if isinstance(values.get(name), str):
            values[name] = trim_text(values[name], limit)
    if isinstance(values.get("category"), str):
        values["category"] = values["category"][:100]
    try:
        return SnippetCreate.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidInput(first["msg"], field=name) from err


def clean_snippet(raw: SnippetInput, *, settings: Settings) -> SnippetCreate:
    """Validate and normalise one snippet; raises InvalidInput naming the field."""
    data = _as_create(raw)
    title = trim_text(data.title, TITLE_MAX)
    if not title:
        raise InvalidInput("is empty", field="title")
    summary = trim_summary(data.summary, settings=settings)
    if not summary:
        raise InvalidInput("is empty", field="summary")
    image_url = optional_image_url(data.image_url, field_name="image_url")
    image_alt = trim_text(data.image_alt, ALT_MAX) if data.image_alt else None
    category = category_slug(data.category)
    tags = sorted({collapse_whitespace(t).lower()[:100] for t in data.tags if t and t.strip()})
    author = trim_text(data.author, 200) if data.author else None
    return SnippetCreate(
        title=title,
        summary=summary,
        url=canonical_url(data.url),
        image_url=image_url,
        image_alt=image_alt,
        category=category,
        tags=tags,
        author=author or None,
        published_at=as_utc(data.published_at),
        source=(data.source or "manual")[:500],
        pinned=bool(data.pinned),
    )


def find_by_url(session: Session, *, url: str) -> Snippet | None:
    """The snippet with this canonical URL (see :func:`canonical_url`), if any."""
    return session.exec(select(Snippet).where(Snippet.url == url)).first()


def add_snippet(session: Session, *, settings: Settings, data: SnippetInput) -> Snippet:
    """Add one snippet by hand; an article already in the library is an error, not a copy."""
    clean = clean_snippet(data, settings=settings)
    existing = find_by_url(session, url=clean.url)
    if existing is not None:
        raise InvalidInput(f"snippet {existing.id} already has this URL", field="url")
    snippet = Snippet.model_validate(clean)
    session.add(snippet)
    session.flush()
    return snippet


def _comparable(name: str, value: Any) -> Any:
    if name == "published_at" and isinstance(value, datetime):
        return value.replace(microsecond=0)
    if name == "tags":
        return sorted(value or [])
    return value


def upsert_snippet(
    session: Session, *, settings: Settings, data: SnippetInput, keep_pinned: bool = True
) -> tuple[Snippet, UpsertOutcome]:
    """Create, update or leave alone the snippet with this canonical URL (idempotent).

    A mapping without ``published_at`` (a feed entry with no date) is dated now when new
    and keeps its first date on every later import.
    """
    undated = not isinstance(data, SnippetCreate) and data.get("published_at") is None
    clean = clean_snippet(data, settings=settings)
    existing = find_by_url(session, url=clean.url)
    if existing is None:
        snippet = Snippet.model_validate(clean)
        session.add(snippet)
        session.flush()
        return snippet, UpsertOutcome.CREATED
    fields = COMPARED_FIELDS if keep_pinned else (*COMPARED_FIELDS, "pinned")
    if undated:
        fields = tuple(f for f in fields if f != "published_at")
    changed = False
    for name in fields:
        new = getattr(clean, name)
        if _comparable(name, getattr(existing, name)) != _comparable(name, new):
            setattr(existing, name, new)
            changed = True
    if not changed:
        return existing, UpsertOutcome.UNCHANGED
    existing.updated_at = utcnow()
    session.add(existing)
    session.flush()
    return existing, UpsertOutcome.UPDATED


def get_snippet(session: Session, *, snippet_id: int) -> Snippet:
    """The snippet, or NotFound."""
    snippet = session.get(Snippet, snippet_id)
    if snippet is None:
        raise NotFound(f"no snippet with id {snippet_id}")
    return snippet


def update_snippet(
    session: Session, *, settings: Settings, snippet_id: int, changes: Mapping[str, Any]
) -> Snippet:
    """Change some fields of a snippet, validated like a new one."""
    snippet = get_snippet(session, snippet_id=snippet_id)
    unknown = set(changes) - set(SnippetCreate.model_fields)
    if unknown:
        raise InvalidInput("unknown field", field=sorted(unknown)[0])
    merged = {**snippet.model_dump(include=set(SnippetCreate.model_fields)), **changes}
    clean = clean_snippet(merged, settings=settings)
    if clean.url != snippet.url:
        other = find_by_url(session, url=clean.url)
        if other is not None:
            raise InvalidInput(f"snippet {other.id} already has this URL", field="url")
    for name, value in clean.model_dump().items():
        setattr(snippet, name, value)
    snippet.updated_at = utcnow()
    session.add(snippet)
    session.flush()
    return snippet


def delete_snippet(session: Session, *, snippet_id: int) -> None:
    """Remove a snippet no campaign uses; a sent one stays as the record of what went out."""
    snippet = get_snippet(session, snippet_id=snippet_id)
    used = session.exec(
        select(CampaignSnippet.campaign_id).where(CampaignSnippet.snippet_id == snippet_id)
    ).first()
    if used is not None:
        raise StateError(f"snippet {snippet_id} is part of campaign {used}; it cannot be deleted")
    session.delete(snippet)
    session.flush()


@dataclass(frozen=True)
class CampaignUse:
    campaign_id: int
    week: str | None
    status: str
    resent: bool


@dataclass
class SnippetListing:
    """A snippet and every campaign it is in (``sent``: one of them went out)."""

    snippet: Snippet
    used_in: list[CampaignUse] = field(default_factory=list)

    @property
    def sent(self) -> bool:
        return any(u.status == CampaignStatus.SENT for u in self.used_in)

    def to_dict(self) -> dict[str, Any]:
        data = SnippetPublic.model_validate(self.snippet).model_dump(mode="json")
        data["sent"] = self.sent
        data["campaigns"] = [
            {"id": u.campaign_id, "week": u.week, "status": u.status, "resent": u.resent}
            for u in self.used_in
        ]
        return data


def list_snippets(session: Session) -> list[SnippetListing]:
    """Every snippet, freshest first, with the campaigns that used it."""
    snippets = session.exec(
        select(Snippet).order_by(col(Snippet.published_at).desc(), col(Snippet.id).desc())
    ).all()
    uses = session.exec(
        select(CampaignSnippet, Campaign)
        .join(Campaign, col(Campaign.id) == col(CampaignSnippet.campaign_id))
        .order_by(col(Campaign.id))
    ).all()
    by_snippet: dict[int, list[CampaignUse]] = {}
    for link, campaign in uses:
        assert campaign.id is not None
        by_snippet.setdefault(link.snippet_id, []).append(
            CampaignUse(campaign.id, campaign.week, campaign.status, link.resent)
        )
    return [SnippetListing(s, by_snippet.get(s.id or 0, [])) for s in snippets]


def parse_published(value: str | None) -> datetime:
    """An ISO date or datetime from a user; naive means UTC; none means now."""
    if value is None or not str(value).strip():
        return utcnow()
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as err:
        raise InvalidInput(f"{value!r} is not an ISO date", field="published") from err
    return as_utc(parsed)
