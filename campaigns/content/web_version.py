"""An issue's web version: the compiled campaign HTML with nobody's personal parts.

The email carries a "View this issue in your browser" link to ``/archive/<slug>`` (issue
15). The page is the very HTML that was sent (``campaign.html``, rendered once by
:mod:`campaigns.content.rendering`), with the per-recipient placeholders filled for no
one: the unnamed greeting ("Hello,"), no name, and in place of the per-reader
unsubscribe and preferences links (signed tokens) a link to the sign-up form and one
to the archive. The stored HTML never held a token, so none can leak.
"""

from __future__ import annotations

import re
import unicodedata
from html import escape

from campaigns.models import Campaign
from newsletter.mail import (
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    personal_values,
    personalise,
    placeholder,
)
from newsletter.settings import Settings

ARCHIVE_PATH = "/archive/"
FEED_PATH = "/archive/feed.atom"
SIGNUP_PATH = "/subscribe"
SLUG_WORDS_MAX = 60  # characters of the subject kept in the slug
# How the email's footer says why the reader gets it (rendering.footer_reason): a web page
# read by people who never subscribed drops that paragraph.
FOOTER_REASON_START = "You are receiving this email because"
_FOOTER_REASON = re.compile(r"<p\b[^>]*>\s*" + re.escape(FOOTER_REASON_START) + r"[^<]*</p>")


def slug(campaign: Campaign) -> str:
    """``"<id>-<subject in ASCII words>"``, e.g. ``"12-five-stretches-for-sciatica"``.

    The id makes it unique and is what the page is found by; the words are for people
    and search engines (a changed subject redirects to the new slug).
    """
    ascii_text = unicodedata.normalize("NFKD", campaign.subject).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(words) > SLUG_WORDS_MAX:  # cut at a word's end, never inside one
        cut = words[: SLUG_WORDS_MAX + 1].rfind("-")
        words = words[: cut if cut > 0 else SLUG_WORDS_MAX].rstrip("-")
    return f"{campaign.id}-{words}" if words else str(campaign.id)


def campaign_id_of(slug_text: str) -> int | None:
    """The campaign id a slug starts with; None when it starts with no positive id."""
    found = re.fullmatch(r"([1-9][0-9]{0,9})(?:-[a-z0-9-]*)?", slug_text)
    return int(found.group(1)) if found else None


def site_url(settings: Settings, path: str) -> str:
    """An absolute URL on the configured ``base_url`` (never the request's Host)."""
    return settings.base_url.rstrip("/") + path


def issue_url(settings: Settings, campaign: Campaign) -> str:
    """Where the issue's web version lives: ``<base_url>/archive/<slug>``."""
    return site_url(settings, ARCHIVE_PATH + slug(campaign))


def is_web_version(settings: Settings, url: str) -> bool:
    """Whether ``url`` is an issue's own page in our archive: it opens only once sending
    begins, so preflight does not fetch it (it would be a 404 before the send)."""
    return url.startswith(site_url(settings, ARCHIVE_PATH))


def _anchor(href: str, *, any_origin: bool = False) -> re.Pattern[str]:
    """An ``<a>`` element whose href is exactly ``href`` (as our templates write it), or
    with ``any_origin`` one that ends with it (sent before ``base_url`` changed)."""
    start = r'[^"]*' if any_origin else ""
    return re.compile(r'<a\b[^>]*\bhref="' + start + re.escape(href) + r'"[^>]*>.*?</a>', re.S)


def web_html(settings: Settings, campaign: Campaign) -> str:
    """The campaign's stored HTML as the public sees it; "" when it was never rendered.

    Per-reader links become: unsubscribe -> "Subscribe to <newsletter>" (the sign-up
    form), preferences -> "Past issues"; the "view in browser" link -> "All past issues".
    The footer's "You are receiving this email because..." is left out: not on a web page.
    """
    html = campaign.html or ""
    signup = site_url(settings, SIGNUP_PATH)
    archive = site_url(settings, ARCHIVE_PATH)
    link = '<a href="{}" style="color:#1f2933;text-decoration:underline;">{}</a>'
    replacements = (
        (
            placeholder(UNSUBSCRIBE_URL),
            link.format(signup, f"Subscribe to {escape(settings.newsletter_name)}"),
        ),
        (placeholder(PREFERENCES_URL), link.format(archive, "Past issues")),
    )
    for href, anchor in replacements:
        html = _anchor(href).sub(lambda _m, a=anchor: a, html)
    own = _anchor(ARCHIVE_PATH + slug(campaign), any_origin=True)
    html = own.sub(lambda _m: link.format(archive, "All past issues"), html)
    html = _FOOTER_REASON.sub("", html)
    values = {key: signup for key in (UNSUBSCRIBE_URL, PREFERENCES_URL)}
    values.update(personal_values(None))
    html = personalise(html, values)
    return html
