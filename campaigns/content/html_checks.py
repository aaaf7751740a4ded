"""What a rendered email contains: its links, images, language and size; and where.

Preflight turns these facts into findings and preview into warnings. The HTML is parsed
with the standard library's parser (never regex), keeping each element's line in the
rendered HTML so a finding can point at it, or at the template line that wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote

import jinja2
from email_validator import EmailNotValidError, validate_email

from newsletter.mail import PLACEHOLDER_KEYS, placeholder
from newsletter.settings import Settings
from newsletter.templating import Templates

PLACEHOLDERS = frozenset(placeholder(k) for k in PLACEHOLDER_KEYS)


@dataclass(frozen=True)
class Link:
    href: str
    line: int


@dataclass(frozen=True)
class Image:
    src: str
    alt: str | None  # None: no alt attribute at all
    line: int


@dataclass
class HtmlAudit:
    """The facts of one rendered HTML part; ``size_bytes`` is its UTF-8 length."""

    links: list[Link] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    html_lang: str | None = None
    size_bytes: int = 0

    def estimated_size(self, settings: Settings) -> int:
        """Bytes once the provider's click tracking has rewritten every link."""
        return self.size_bytes + len(self.links) * settings.tracking_budget_bytes_per_link

    def size_warning(self, settings: Settings) -> str | None:
        """Why the message will be clipped, or None. Gmail shows only the first 102 KB of
        HTML ("[Message clipped]"); ``html_size_limit_bytes`` defaults to that."""
        estimate = self.estimated_size(settings)
        if estimate <= settings.html_size_limit_bytes:
            return None
        return (
            f"HTML is {self.size_bytes} bytes, about {estimate} with click tracking on "
            f"{len(self.links)} links; over the {settings.html_size_limit_bytes}-byte limit, "
            "so Gmail will clip the message (and hide the unsubscribe link)"
        )

    def images_without_alt(self) -> list[Image]:
        return [i for i in self.images if i.alt is None or not i.alt.strip()]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.audit = HtmlAudit()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line = self.getpos()[0]
        if tag == "a" and "href" in values:
            self.audit.links.append(Link((values["href"] or "").strip(), line))
        elif tag == "img":
            self.audit.images.append(
                Image((values.get("src") or "").strip(), values.get("alt"), line)
            )
        elif tag == "html":
            self.audit.html_lang = values.get("lang")

    handle_startendtag = handle_starttag


def audit_html(html: str) -> HtmlAudit:
    """Links, images (with their alt text or None), ``<html lang>`` and size of ``html``."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    collector.audit.size_bytes = len(html.encode("utf-8"))
    return collector.audit


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with something after the scheme."""
    return url.lower().startswith(("http://", "https://")) and len(url) > len("https://")


def is_live_http(href: str) -> bool:
    """A link a reader can follow: absolute http(s), or a per-recipient placeholder
    (``[%unsubscribe_url%]``) that the send loop replaces with one."""
    return href in PLACEHOLDERS or is_http_url(href)


def is_mail_link(href: str) -> bool:
    """``mailto:`` one valid address (RFC 6068), optionally with ``?subject=``: a snippet
    summary may link to one (campaigns.content.summaries keeps such links)."""
    if href[:7].lower() != "mailto:":
        return False
    address = unquote(href[7:].split("?", 1)[0])
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def template_sources(settings: Settings, names: Iterable[str]) -> dict[str, list[str]]:
    """Source lines of the named templates as this configuration resolves them (a user's
    override first); a template that does not exist is left out (rendering reports it)."""
    env = Templates(settings).html_env
    assert env.loader is not None
    sources: dict[str, list[str]] = {}
    for name in names:
        try:
            source, _, _ = env.loader.get_source(env, name)
        except jinja2.TemplateNotFound:
            continue
        sources[name] = source.splitlines()
    return sources


def locate(
    sources: dict[str, list[str]], attribute: str, value: str, fallback: tuple[str, int]
) -> tuple[str, int]:
    """The template and line that write ``attribute="value"`` literally, else ``fallback``
    (the value came from an expression: the rendered HTML's line is the best pointer)."""
    needles = (f'{attribute}="{value}"', f"{attribute}='{value}'")
    for name, lines in sources.items():
        for number, line in enumerate(lines, start=1):
            if any(n in line for n in needles):
                return name, number
    return fallback
