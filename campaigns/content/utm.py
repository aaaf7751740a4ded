"""UTM tags on article links, so the site's own analytics knows a visit came from the issue.

The three parameters Google Analytics reads (``utm_source``, ``utm_medium``,
``utm_campaign``; support.google.com/analytics/answer/10917952) are added to a link's
query unless it already has them: a parameter the author set wins, and the rest of the
query is kept byte for byte in its order (no re-encoding, no duplicates). With
``NEWSLETTER_UTM_ONLY_DOMAINS`` set, only links to those hosts (or their subdomains) are
tagged: another site's analytics is not ours to fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from newsletter.settings import Settings

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")


@dataclass(frozen=True)
class UtmTags:
    """The tags of one campaign and the hosts they apply to (empty: every http(s) link)."""

    source: str
    medium: str
    campaign: str
    only_domains: tuple[str, ...] = ()

    @classmethod
    def for_campaign(cls, settings: Settings, *, week: str | None, campaign_id: int) -> UtmTags:
        """The settings' tags; ``utm_campaign`` defaults to the ISO week ("2026-W48") of a
        weekly issue, else ``campaign-<id>``."""
        name = settings.utm_campaign or week or f"campaign-{campaign_id}"
        return cls(settings.utm_source, settings.utm_medium, name, tuple(settings.utm_only_domains))

    def applies_to(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if not self.only_domains:
            return True
        return any(host == d or host.endswith("." + d) for d in self.only_domains)

    def tag(self, url: str) -> str:
        """``url`` with the missing UTM parameters appended; other links unchanged."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return url
        if not self.applies_to(parts.hostname):
            return url
        present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
        values = dict(zip(UTM_KEYS, (self.source, self.medium, self.campaign), strict=True))
        extra = [f"{k}={quote(v, safe='')}" for k, v in values.items() if k not in present]
        if not extra:
            return url
        query = "&".join([parts.query, *extra] if parts.query else extra)
        return urlunsplit(parts._replace(query=query))


def tag_all(tags: UtmTags | None, urls: Sequence[str]) -> list[str]:
    """Each URL tagged (``tags`` None: UTM off, unchanged)."""
    return [tags.tag(u) if tags else u for u in urls]
