"""Our click and open tracking links: the campaign's link table, signed reader tokens.

A campaign is *compiled* for sending once (:func:`compile_links`): its article links
(the URLs of its snippets, wherever they appear as an ``href`` or on a line of the text
part) get their UTM tags (``campaigns.content.utm``) and a number, stored in
``campaign_link``, and become ``{base}/r/[%track%]/{n}``; the HTML gets the pixel
``<img src="{base}/o/[%track%]">`` before ``</body>``. So a reader's copy differs from the
next one's by a single short value, the token (``newsletter.mail.TRACK``), which
:class:`TrackingValues` makes; a reader who asked not to be tracked gets the compiled
*plain* variant instead (tagged links, no pixel, no hole).

The token names the campaign and the reader and is signed once per reader, whatever the
number of links (one ``hmac.digest`` call, about 1 µs): ``{campaign}.{subscriber}.{mac}``
with ``mac`` the first 12 bytes (96 bits) of HMAC-SHA256 over ``campaign.subscriber.link_key``
under a key derived from the secret for this purpose alone (RFC 2104; truncation as
RFC 2104 section 5 allows), base64url without padding: 16 characters. The subscriber's
``link_key`` makes a token point at one person only (a new key, or erasure, kills it).
The link number is outside the MAC on purpose: a changed number reaches another link of
the *same* campaign for the same reader, never a URL from anywhere else, so there is no
open redirect, and the tracked links of a 10-link issue cost one MAC, not ten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from binascii import b2a_base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.content.utm import UtmTags, tag_all
from campaigns.models import (
    Campaign,
    CampaignLink,
    CampaignSnippet,
    CampaignTrackingOff,
    Snippet,
)
from newsletter.mail import TRACK, placeholder
from newsletter.settings import Settings

PURPOSE = b"newsletter.track"
MAC_BYTES = 12
_link = CampaignLink.__table__  # type: ignore[attr-defined]
_BODY_END = re.compile(r"</body>", re.IGNORECASE)


def tracking_keys(settings: Settings) -> list[bytes]:
    """The purpose-bound keys, current first (old secret keys still verify)."""
    return [hmac.digest(k.encode(), PURPOSE, "sha256") for k in settings.secret_keys]


def mac(key: bytes, campaign_id: int, subscriber_id: int, link_key: str) -> str:
    """The token's signature: 16 base64url characters."""
    digest = hmac.digest(
        key, b"%d.%d.%s" % (campaign_id, subscriber_id, link_key.encode()), "sha256"
    )
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode()


def make_token(key: bytes, campaign_id: int, subscriber_id: int, link_key: str) -> str:
    return f"{campaign_id}.{subscriber_id}.{mac(key, campaign_id, subscriber_id, link_key)}"


@dataclass(frozen=True, slots=True)
class TokenParts:
    campaign_id: int
    subscriber_id: int
    mac: str


def parse_token(token: str) -> TokenParts | None:
    """The parts of a well-formed token, or None (never an exception: it came from a URL)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    if len(parts[2]) != 16 or len(parts[0]) > 18 or len(parts[1]) > 18:
        return None
    return TokenParts(int(parts[0]), int(parts[1]), parts[2])


def verify(keys: Sequence[bytes], parts: TokenParts, link_key: str) -> bool:
    """Whether ``parts`` were signed with one of ``keys`` for this link key (constant time)."""
    return any(
        hmac.compare_digest(mac(k, parts.campaign_id, parts.subscriber_id, link_key), parts.mac)
        for k in keys
    )


# ---------------------------------------------------------------- compiling a campaign


@dataclass(frozen=True)
class CompiledLinks:
    """A campaign's content as sent: tracked (with ``[%track%]`` holes) when ``tracked``;
    ``plain_*`` always has the tagged links and no pixel (readers not to be tracked)."""

    html: str
    text: str
    plain_html: str
    plain_text: str
    urls: tuple[str, ...]  # position n -> the URL as sent (UTM tags added)
    tracked: bool


def tracking_on(session: Session, settings: Settings, campaign_id: int) -> bool:
    """Both switches: ``NEWSLETTER_TRACKING`` and the campaign's own (``campaigns track``)."""
    return settings.tracking and session.get(CampaignTrackingOff, campaign_id) is None


def article_urls(session: Session, campaign_id: int) -> list[str]:
    """The campaign's article links in issue order, each once."""
    rows = session.execute(
        sa.select(Snippet.url)  # type: ignore[call-overload]
        .join(CampaignSnippet, CampaignSnippet.snippet_id == Snippet.id)
        .where(CampaignSnippet.campaign_id == campaign_id)
        .order_by(CampaignSnippet.position)
    ).scalars()
    return list(dict.fromkeys(rows))


def stored_links(session: Session, campaign_id: int) -> list[str]:
    """``campaign_link`` of one campaign, by position."""
    return list(
        session.execute(
            sa.select(_link.c.url)
            .where(_link.c.campaign_id == campaign_id)
            .order_by(_link.c.position)
        ).scalars()
    )


def compile_links(
    session: Session, *, settings: Settings, campaign: Campaign, tracked: bool | None = None
) -> CompiledLinks:
    """The campaign's stored HTML and text with UTM-tagged links, holes where tracked.

    ``tracked`` None: as the switches say (:func:`tracking_on`); a test send passes False.
    Tracked, the link table is written the first time and read afterwards, so a resumed
    send numbers the links as the first run did (flushes; the caller commits).
    """
    assert campaign.id is not None
    html, text = campaign.html or "", campaign.text or ""
    tracked = tracking_on(session, settings, campaign.id) if tracked is None else tracked
    originals = article_urls(session, campaign.id)
    tags = (
        UtmTags.for_campaign(settings, week=campaign.week, campaign_id=campaign.id)
        if settings.utm
        else None
    )
    sent = tag_all(tags, originals)
    if tracked:
        stored = stored_links(session, campaign.id)
        if len(stored) == len(sent):
            sent = stored
        else:
            session.execute(sa.delete(_link).where(_link.c.campaign_id == campaign.id))
            session.execute(
                sa.insert(_link),
                [{"campaign_id": campaign.id, "position": n, "url": u} for n, u in enumerate(sent)],
            )
            session.flush()
    position = {url: n for n, url in enumerate(originals)}
    base = settings.base_url.rstrip("/")
    hole = placeholder(TRACK)
    plain = _rewrite(html, text, position, lambda n: sent[n])
    if not tracked:
        return CompiledLinks(*plain, *plain, tuple(sent), False)
    html, text = _rewrite(html, text, position, lambda n: f"{base}/r/{hole}/{n}")
    pixel = (
        f'<img src="{base}/o/{hole}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    html, found = _BODY_END.subn(lambda m: pixel + m.group(0), html, count=1)
    if not found:
        html += pixel
    return CompiledLinks(html, text, *plain, tuple(sent), True)


def _rewrite(
    html: str, text: str, position: dict[str, int], link: Callable[[int], str]
) -> tuple[str, str]:
    """Each article URL (``position``: URL -> number) replaced by ``link(number)``: in the
    HTML as the exact ``href="..."`` attribute our templates render (the URL escaped, as
    Jinja2's autoescape and MJML write it: we never parse HTML by regex), in the text
    where it stands alone between whitespace."""
    for url, n in sorted(position.items(), key=lambda item: -len(item[0])):
        html = html.replace(f'href="{escape(url)}"', f'href="{escape(link(n))}"')
        text = re.sub(rf"(?<!\S){re.escape(url)}(?!\S)", lambda _m, n=n: link(n), text)
    return html, text


# ---------------------------------------------------------------- per reader


class TrackingValues:
    """The ``track`` hole's value for each reader of one campaign (the send loop's hot path).

    The same tokens as :func:`make_token` (a test pins it), with HMAC's keyed SHA-256
    states made once and copied per reader (RFC 2104: H(K^opad, H(K^ipad, m))), as
    ``recipient_links`` does for its SHA-1 tokens: about a third of ``hmac.digest``'s cost.
    """

    def __init__(self, settings: Settings, *, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        key = tracking_keys(settings)[0].ljust(64, b"\0")  # SHA-256 block: 64 bytes
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))
        self._head = b"%d." % campaign_id

    def token_bytes(self, subscriber_id: int, link_key: str) -> bytes:
        """The reader's token, as :func:`make_token` makes it, in ASCII bytes."""
        ids = self._head + b"%d" % subscriber_id
        inner = self._inner.copy()
        inner.update(ids + b"." + link_key.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        mac = b2a_base64(outer.digest()[:MAC_BYTES], newline=False).translate(_URLSAFE)
        return ids + b"." + mac


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_URLSAFE = bytes.maketrans(b"+/", b"-_")
