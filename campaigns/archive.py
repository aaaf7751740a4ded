"""The public archive of sent issues (issue 15, point 4): a listing, each issue's page, and
an Atom feed, so readers and search engines find past issues.

- Listed (page and feed): campaigns that were sent (``sent``) and not left out (no
  ``campaign_archive_exclusion`` row), newest first by the time sending began.
- An issue's page (:mod:`campaigns.content.web_version`) is reachable once sending has
  begun, since every copy carries a "view in browser" link to it; a campaign left out of
  the archive keeps its page for those readers, marked ``noindex`` and never listed.
- Every absolute URL comes from ``NEWSLETTER_BASE_URL``, never from the request's Host.
- The feed is Atom (RFC 4287) written with the standard library's ElementTree, which
  escapes every text and attribute: entry ids are tag URIs (RFC 4151) built from the
  base URL's host and the campaign id, so they survive a changed subject.
"""

from __future__ import annotations

import html as html_lib
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from campaigns import workflow
from campaigns.actions import get_campaign
from campaigns.content.web_version import (
    ARCHIVE_PATH,
    FEED_PATH,
    campaign_id_of,
    issue_url,
    site_url,
    slug,
    web_html,
)
from campaigns.models import Campaign, CampaignArchiveExclusion, CampaignStatus
from newsletter.clock import as_utc, utcnow
from newsletter.errors import PageNotFound
from newsletter.hostnames import ascii_hostname, has_unsafe_characters
from newsletter.settings import Settings
from newsletter.templating import Templates, brand_context

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
LIST_TEMPLATE = "web/archive.html.j2"
HEAD_TEMPLATE = "web/archive_issue_head.html.j2"
# Sending has begun: copies carrying the "view in browser" link are out.
STARTED = (CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.SENT)


@dataclass(frozen=True)
class ArchivedIssue:
    """One line of the archive: ``sent_at`` is when sending began (UTC)."""

    campaign_id: int
    slug: str
    url: str
    subject: str
    preheader: str
    sent_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class IssuePage:
    """An issue's web page; ``redirect_to`` set when the slug is not the current one.

    ``image_origins`` are the ``scheme://host`` of the issue's images, for the page's
    Content-Security-Policy ``img-src``."""

    html: str = ""
    image_origins: list[str] = field(default_factory=list)
    redirect_to: str | None = None


def _sent_at(campaign: Campaign) -> datetime:
    return as_utc(campaign.started_at or campaign.finished_at or campaign.created_at)


def _issue(settings: Settings, campaign: Campaign) -> ArchivedIssue:
    assert campaign.id is not None
    sent_at = _sent_at(campaign)
    return ArchivedIssue(
        campaign_id=campaign.id,
        slug=slug(campaign),
        url=issue_url(settings, campaign),
        subject=campaign.subject,
        preheader=campaign.preheader,
        sent_at=sent_at,
        updated_at=as_utc(campaign.finished_at) if campaign.finished_at else sent_at,
    )


def _listed() -> sa.ColumnElement[bool]:
    left_out = sa.exists().where(col(CampaignArchiveExclusion.campaign_id) == col(Campaign.id))
    return sa.and_(col(Campaign.status) == CampaignStatus.SENT.value, ~left_out)


def _left_out(session: Session, campaign_id: int) -> bool:
    return session.get(CampaignArchiveExclusion, campaign_id) is not None


def archived_issues(
    session: Session, *, settings: Settings, offset: int = 0, limit: int = 20
) -> list[ArchivedIssue]:
    """Listed issues, newest first (by when sending began, then id)."""
    newest = sa.func.coalesce(col(Campaign.started_at), col(Campaign.finished_at))
    rows = session.exec(
        select(Campaign)
        .where(_listed())
        .order_by(newest.desc(), col(Campaign.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [_issue(settings, c) for c in rows]


def archive_page(session: Session, *, settings: Settings, page: int = 1) -> str:
    """The HTML of ``/archive/?page=N`` (1-based); PageNotFound past the last page (page 1
    always exists, empty or not)."""
    size = settings.archive_page_size
    total = session.exec(select(sa.func.count()).select_from(Campaign).where(_listed())).one()
    pages = max(1, math.ceil(total / size))
    if page < 1 or page > pages:
        raise PageNotFound(f"the archive has no page {page}")
    issues = archived_issues(session, settings=settings, offset=(page - 1) * size, limit=size)
    canonical = site_url(settings, ARCHIVE_PATH + (f"?page={page}" if page > 1 else ""))
    return Templates(settings).render_page(
        LIST_TEMPLATE,
        {
            "brand": brand_context(settings),
            "title": "Past issues" + (f", page {page}" if page > 1 else ""),
            "description": f"Every past issue of {settings.newsletter_name}, newest first.",
            "canonical": canonical,
            "feed_url": site_url(settings, FEED_PATH),
            "signup_url": site_url(settings, "/subscribe"),
            "issues": issues,
            "page": page,
            "pages": pages,
            "previous_url": _page_url(page - 1) if page > 1 else None,
            "next_url": _page_url(page + 1) if page < pages else None,
        },
    )


def _page_url(page: int) -> str:
    return ARCHIVE_PATH if page == 1 else f"{ARCHIVE_PATH}?page={page}"


def issue_page(session: Session, *, settings: Settings, slug_text: str) -> IssuePage:
    """The web version of the issue ``slug_text`` names, with its head for search engines.

    PageNotFound for a slug naming no campaign, or one whose sending has not begun (a draft
    is nobody's business yet).
    """
    campaign_id = campaign_id_of(slug_text)
    campaign = session.get(Campaign, campaign_id) if campaign_id else None
    if campaign is None or CampaignStatus(campaign.status) not in STARTED or not campaign.html:
        raise PageNotFound(f"no published issue {slug_text!r}")
    if slug(campaign) != slug_text:
        return IssuePage(redirect_to=issue_url(settings, campaign))
    head = Templates(settings).render_page(
        HEAD_TEMPLATE,
        {
            "canonical": issue_url(settings, campaign),
            "description": campaign.preheader or campaign.subject,
            "feed_url": site_url(settings, FEED_PATH),
            "listed": not _left_out(session, campaign.id),
            "brand": brand_context(settings),
        },
    )
    html = web_html(settings, campaign)
    html = re.sub(r"</head>", lambda _m: head + "</head>", html, count=1, flags=re.I)
    return IssuePage(html=html, image_origins=_image_origins(html))


_IMG_SRC = re.compile(r"<img\b[^>]*?\bsrc=\"([^\"]*)\"", re.I)


def _image_origins(html: str) -> list[str]:
    """The distinct origins (``scheme://host[:port]``) of the page's http(s) images, for
    the page's ``img-src`` (CSP, W3C CSP Level 3 "host-source").

    Each is rebuilt from ``urlsplit`` (scheme, hostname, port), never copied: a source
    whose host is not a strict host name or IP address (:mod:`newsletter.hostnames`), or
    whose port is not a number, is dropped, so no image URL can add a source or directive.
    """
    origins = {_origin(html_lib.unescape(src)) for src in _IMG_SRC.findall(html)}
    return sorted(o for o in origins if o)


def _origin(src: str) -> str | None:
    if has_unsafe_characters(src):
        return None
    parts = urlsplit(src)
    scheme = parts.scheme.lower()
    host = ascii_hostname(parts.hostname)
    try:
        port = parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or host is None:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def atom_feed(session: Session, *, settings: Settings) -> bytes:
    """The newest ``archive_feed_entries`` listed issues as an Atom 1.0 document (UTF-8).

    Feed: id (the archive's URL), title, updated (the newest entry's, or now when there
    is none), author (the newsletter), links self and alternate. Each entry: id, title,
    updated, published, link alternate, summary (the preheader) and the web version's
    body as HTML content.
    """
    issues = archived_issues(session, settings=settings, limit=settings.archive_feed_entries)
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _text(feed, "id", site_url(settings, ARCHIVE_PATH))
    _text(feed, "title", settings.newsletter_name)
    _text(feed, "subtitle", f"Every past issue of {settings.newsletter_name}.")
    newest = max((i.updated_at for i in issues), default=utcnow())
    _text(feed, "updated", _rfc3339(newest))
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    _text(author, "name", settings.newsletter_name)
    _text(author, "uri", site_url(settings, "/"))
    _link(feed, site_url(settings, FEED_PATH), rel="self", type=ATOM_TYPE)
    _link(feed, site_url(settings, ARCHIVE_PATH), rel="alternate", type="text/html")
    host = urlsplit(settings.base_url).hostname or "localhost"
    for issue in issues:
        campaign = get_campaign(session, campaign_id=issue.campaign_id)
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        _text(entry, "id", f"tag:{host},{issue.sent_at:%Y-%m-%d}:campaign/{issue.campaign_id}")
        _text(entry, "title", issue.subject)
        _text(entry, "updated", _rfc3339(issue.updated_at))
        _text(entry, "published", _rfc3339(issue.sent_at))
        _link(entry, issue.url, rel="alternate", type="text/html")
        _text(entry, "summary", issue.preheader or issue.subject)
        _text(entry, "content", _body(web_html(settings, campaign))).set("type", "html")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
    element.text = text
    return element


def _link(parent: ET.Element, href: str, **attributes: str) -> None:
    ET.SubElement(parent, f"{{{ATOM_NS}}}link", {"href": href, **attributes})


def _rfc3339(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(html: str) -> str:
    found = re.search(r"<body\b[^>]*>(.*)</body>", html, re.S | re.I)
    return found.group(1).strip() if found else html


def set_archived(
    session: Session, *, campaign_id: int, included: bool | None, actor: str
) -> ArchivedState:
    """Include a campaign in the archive or leave it out (caller commits); logged with
    who. ``included`` None only tells where it stands. NotFound for an unknown campaign.
    Any status: a draft can be left out before it is sent."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=included is not None)
    exclusion = session.get(CampaignArchiveExclusion, campaign_id)
    if included is None or included == (exclusion is None):
        return ArchivedState(campaign_id, exclusion is None, changed=False)
    if included:
        session.delete(exclusion)
    else:
        session.add(CampaignArchiveExclusion(campaign_id=campaign_id, excluded_by=actor[:100]))
    reason = "included in the archive" if included else "left out of the archive"
    workflow.log_event(session, campaign=campaign, actor=actor, reason=reason)
    session.flush()
    return ArchivedState(campaign_id, included, changed=True)


@dataclass(frozen=True)
class ArchivedState:
    """Whether a campaign is in the public archive, and whether this call changed it."""

    campaign_id: int
    included: bool
    changed: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "campaign_id": self.campaign_id,
            "in_archive": self.included,
            "changed": self.changed,
        }
