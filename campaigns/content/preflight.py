"""Preflight: everything that must be true before a campaign may go out.

Run by ``campaigns preflight``, by ``send`` and by the scheduler before every send; any
finding of severity ``error`` blocks the send (:func:`require_preflight`). Each finding
names the snippet (id and title) or the template and line it comes from. Draft and
scheduled campaigns are re-rendered first, so the check sees the templates as they are now.

The rules and where they come from:

- every link and image absolute http(s): a relative one is dead in a mail client;
- alt text on every image (WCAG 2.1, success criterion 1.1.1);
- an unsubscribe link in the HTML and the text part, and the sender's postal address
  (CAN-SPAM, 15 U.S.C. 7704(a)(3) and (a)(5));
- the medical disclaimer in both parts (the publisher's own rule, ``NEWSLETTER_DISCLAIMER``);
- HTML under the size Gmail clips at, click tracking included (html_checks);
- a warning for claim words such as "cure" (``NEWSLETTER_CLAIMS_WORDS``): health claims
  need substantiation (FTC, Health Products Compliance Guidance, 2022);
- no control character (CR, LF, ...) in the subject or preheader: a line break ends a
  header field (RFC 5322 2.2) and shows as garbage in an inbox;
- an https ``NEWSLETTER_BASE_URL`` for a real send (SendGrid, SMTP): one-click unsubscribe
  needs an HTTPS List-Unsubscribe URL (RFC 8058 3.1) and Gmail ignores any other;
- a warning where a template, the subject or the preheader uses the bare name, empty for
  readers without one, and where a snippet's text holds a placeholder (shown as written);
- every image loads and every link opens (``reachability``, ``NEWSLETTER_PREFLIGHT_FETCH``):
  an image that does not load blocks, since every reader sees a hole with alt text; a link
  that does not open warns, since the email reads fine and an article may go live with it.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlmodel import Session

from campaigns.content.assembly import IssueItem, issue_items
from campaigns.content.html_checks import (
    HtmlAudit,
    audit_html,
    is_http_url,
    is_live_http,
    is_mail_link,
    locate,
    template_sources,
)
from campaigns.content.placeholder_checks import (
    bare_name_headlines,
    outside_headlines,
    snippet_placeholders,
)
from campaigns.content.reachability import UrlCheck, check_urls
from campaigns.content.rendering import HTML_TEMPLATE, TEXT_TEMPLATE, RenderedIssue, render_campaign
from campaigns.content.snippets import collapse_whitespace, loadable_url
from campaigns.content.web_version import is_web_version
from campaigns.models import Campaign
from newsletter.errors import ContentError, TemplateError
from newsletter.mail import NAME, NAME_HTML, UNSUBSCRIBE_URL, placeholder
from newsletter.settings import Settings

Severity = Literal["error", "warning"]
# Templates whose source a finding in the rendered HTML is traced back to.
EMAIL_TEMPLATES = (
    HTML_TEMPLATE,
    "email/layout.mjml.j2",
    "email/partials/snippet_card.mjml.j2",
    "email/partials/footer.mjml.j2",
)
RENDERED_HTML = f"{HTML_TEMPLATE} (rendered HTML)"
Sources = dict[str, list[str]]  # template name -> its lines


@dataclass(frozen=True)
class Finding:
    """One problem: ``code`` is stable (link, image, alt, claims, template, size, ...);
    ``where`` names the snippet and field, or the template and line, it comes from."""

    severity: Severity
    code: str
    message: str
    snippet_id: int | None = None
    snippet_title: str | None = None
    field: str | None = None
    template: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        if self.snippet_id is not None:
            place = f"snippet {self.snippet_id} {self.snippet_title!r}"
            return f"{place} ({self.field})" if self.field else place
        if self.template:
            return f"{self.template}:{self.line}" if self.line else self.template
        return "campaign"

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass
class PreflightReport:
    """Every finding for one campaign; ``ok`` when none is an error."""

    campaign_id: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "ok": self.ok,
            "findings": [{**asdict(f), "where": f.where} for f in self.findings],
        }


def preflight(session: Session, *, settings: Settings, campaign: Campaign) -> PreflightReport:
    """Render (drafts and scheduled campaigns) and check; the caller commits the rendering.

    Never raises for a problem of the content: a template error is a finding too. For a
    check that must stop the caller, use :func:`require_preflight`.
    """
    report = PreflightReport(campaign_id=campaign.id or 0)
    add = report.findings.append
    items = issue_items(session, campaign=campaign)
    if not items:
        add(Finding("error", "no-snippets", "the campaign has no snippets"))
    for item in items:
        report.findings.extend(_snippet_findings(item, settings=settings))
    if not campaign.subject.strip():
        add(Finding("error", "subject", "the subject is empty"))
    report.findings.extend(_header_findings(campaign, settings))
    rendered: RenderedIssue | None = None
    if items:
        try:
            rendered = render_campaign(session, settings=settings, campaign=campaign)
        except TemplateError as err:
            message = str(err).split(": ", 1)[-1]
            add(Finding("error", "template", message, template=err.template, line=err.line))
    if rendered is not None:
        report.findings.extend(_content_findings(rendered, items, settings=settings))
    return report


def require_preflight(
    session: Session, *, settings: Settings, campaign: Campaign
) -> PreflightReport:
    """Preflight, or raise: the one check every path that sends or schedules runs.

    Returns the report (warnings only) when the campaign may go out; otherwise raises
    ContentError "preflight failed for campaign <id>: <where>: <message>; ..." with every
    error, so one run shows all there is to fix.
    """
    report = preflight(session, settings=settings, campaign=campaign)
    if not report.ok:
        reasons = "; ".join(f"{f.where}: {f.message}" for f in report.errors)
        raise ContentError(f"preflight failed for campaign {campaign.id}: {reasons}")
    return report


def claims_in(text: str, words: list[str]) -> list[str]:
    """The configured claim words in ``text``, as whole words, case-insensitive."""
    found = []
    for word in words:
        if word.strip() and re.search(
            rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, re.IGNORECASE
        ):
            found.append(word.strip())
    return found


def _snippet_findings(item: IssueItem, *, settings: Settings) -> list[Finding]:
    s = item.snippet
    out: list[Finding] = []

    def finding(severity: Severity, code: str, message: str, field_name: str) -> None:
        out.append(
            Finding(
                severity, code, message, snippet_id=s.id, snippet_title=s.title, field=field_name
            )
        )

    if not is_http_url(s.url):
        finding("error", "link", f"link {s.url!r} is not an absolute http(s) URL", "url")
    if s.image_url:
        if not is_http_url(loadable_url(settings, s.image_url)):  # a path on our site is fine
            bad = f"image {s.image_url!r} is not an absolute http(s) URL"
            finding("error", "image", bad, "image_url")
        if not (s.image_alt or "").strip():
            finding(
                "warning", "alt", "image has no alt text of its own; the title is used", "image_alt"
            )
    for field_name, message in snippet_placeholders(s):
        finding("warning", "placeholder", message, field_name)
    for field_name in ("title", "summary"):
        for word in claims_in(getattr(s, field_name), settings.claims_words):
            finding(
                "warning",
                "claims",
                f"uses {word!r}: a health sender must not promise results unqualified",
                field_name,
            )
    return out


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _header_findings(campaign: Campaign, settings: Settings) -> list[Finding]:
    """Control characters in subject or preheader; an http base URL for a real send."""
    out = []
    for name, value in (("subject", campaign.subject), ("preheader", campaign.preheader)):
        found = sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(value or "")})
        if found:
            out.append(
                Finding(
                    "error",
                    "control-character",
                    f"the {name} contains control characters ({', '.join(found)}): "
                    "a line break ends a header (RFC 5322 2.2); use plain text on one line",
                )
            )
    out.extend(Finding("warning", "name", message) for message in bare_name_headlines(campaign))
    if settings.provider != "outbox" and not settings.base_url.lower().startswith("https://"):
        out.append(
            Finding(
                "error",
                "base-url",
                f"NEWSLETTER_BASE_URL {settings.base_url!r} is not https: one-click "
                "unsubscribe needs an HTTPS link (RFC 8058 3.1) and Gmail ignores any other",
            )
        )
    return out


def _content_findings(
    rendered: RenderedIssue, items: list[IssueItem], *, settings: Settings
) -> list[Finding]:
    out: list[Finding] = []
    audit = audit_html(rendered.html)
    sources = template_sources(settings, EMAIL_TEMPLATES)
    out.extend(_link_findings(audit, sources))
    for image in audit.images_without_alt():
        template, line = locate(sources, "src", image.src, (RENDERED_HTML, image.line))
        message = f"image {image.src!r} has no alt text"
        out.append(Finding("error", "alt", message, template=template, line=line))
    if not audit.html_lang:
        out.append(
            Finding(
                "warning",
                "lang",
                "the document language is not set",
                template="email/layout.mjml.j2",
            )
        )
    size = audit.size_warning(settings)
    if size:
        out.append(Finding("error", "size", size, template=HTML_TEMPLATE))
    out.extend(_compliance_findings(rendered, audit, settings=settings))
    for template, content in ((HTML_TEMPLATE, rendered.html), (TEXT_TEMPLATE, rendered.text)):
        content = outside_headlines(content, rendered.subject, rendered.preheader)
        if placeholder(NAME) in content or placeholder(NAME_HTML) in content:
            message = "uses the bare name, empty for readers without one; greet with {{ greeting }}"
            out.append(Finding("warning", "name", message, template=template))
    if settings.preflight_fetch:
        out.extend(_fetch_findings(audit, items, sources, settings=settings))
    return out


def _fetch_findings(
    audit: HtmlAudit, items: list[IssueItem], sources: Sources, *, settings: Settings
) -> list[Finding]:
    """Images that do not load (errors) and links that do not open (warnings)."""
    urls: dict[str, bool] = {}  # URL -> an image
    lines: dict[str, int] = {}
    for url, image, line in [
        *((i.src, True, i.line) for i in audit.images),
        *((a.href, False, a.line) for a in audit.links),
    ]:
        if is_http_url(url) and url not in urls and not is_web_version(settings, url):
            urls[url], lines[url] = image, line
    deadline = settings.preflight_fetch_deadline_seconds
    checks = check_urls(
        urls,
        timeout=settings.preflight_fetch_timeout_seconds,
        concurrency=settings.preflight_fetch_concurrency,
        deadline=deadline,
        allow_private=settings.fetch_allow_private,
    )
    failed = (c for c in checks if c.checked and not c.ok)
    out = [f for c in failed for f in _broken(c, items, sources, lines, settings)]
    late = [c.url for c in checks if not c.checked]
    if late:
        message = (
            f"{len(late)} of {len(checks)} images and links not checked: the {deadline:g}-second "
            f"deadline ran out (first: {late[0]!r}; NEWSLETTER_PREFLIGHT_FETCH_DEADLINE_SECONDS)"
        )
        out.append(Finding("warning", "fetch-deadline", message))
    return out


def _broken(
    check: UrlCheck, items: list[IssueItem], sources: Sources, lines: dict[str, int], at: Settings
) -> list[Finding]:
    """Findings for one URL that failed, on each snippet that has it, else its template."""
    if check.image:
        severity: Severity = "error"
        code, attribute, field_name = "image-broken", "src", "image_url"
        message = f"image {check.url!r} does not load ({check.reason}); readers see its alt text"
    else:
        severity, code, attribute, field_name = "warning", "link-broken", "href", "url"
        message = f"link {check.url!r} does not open ({check.reason})"
    owned = ((i.snippet, loadable_url(at, getattr(i.snippet, field_name) or "")) for i in items)
    owners = [snippet for snippet, url in owned if url == check.url]
    if owners:
        return [
            Finding(
                severity, code, message, snippet_id=s.id, snippet_title=s.title, field=field_name
            )
            for s in owners
        ]
    template, line = locate(sources, attribute, check.url, (RENDERED_HTML, lines[check.url]))
    return [Finding(severity, code, message, template=template, line=line)]


def _link_findings(audit: HtmlAudit, sources: Sources) -> list[Finding]:
    out = []
    for link in audit.links:
        if not (is_live_http(link.href) or is_mail_link(link.href)):
            template, line = locate(sources, "href", link.href, (RENDERED_HTML, link.line))
            out.append(
                Finding(
                    "error",
                    "link",
                    f"link {link.href!r} is not an absolute http(s) URL or a mailto: address",
                    template=template,
                    line=line,
                )
            )
    return out


def _compliance_findings(
    rendered: RenderedIssue, audit: HtmlAudit, *, settings: Settings
) -> list[Finding]:
    out: list[Finding] = []
    html_text = collapse_whitespace(html_lib.unescape(rendered.html))
    text = collapse_whitespace(rendered.text)
    unsubscribe = placeholder(UNSUBSCRIBE_URL)
    if not text:
        out.append(
            Finding("error", "text-part", "the plain-text part is empty", template=TEXT_TEMPLATE)
        )
    if not any(link.href == unsubscribe for link in audit.links):
        out.append(
            Finding(
                "error",
                "unsubscribe",
                "the HTML has no unsubscribe link",
                template="email/partials/footer.mjml.j2",
            )
        )
    if text and unsubscribe not in text:
        out.append(
            Finding(
                "error",
                "unsubscribe",
                "the plain text has no unsubscribe link",
                template=TEXT_TEMPLATE,
            )
        )
    checks = (
        ("postal-address", "postal address", settings.postal_address, "NEWSLETTER_POSTAL_ADDRESS"),
        ("disclaimer", "medical disclaimer", settings.disclaimer, "NEWSLETTER_DISCLAIMER"),
    )
    for code, label, value, setting in checks:
        wanted = collapse_whitespace(value or "")
        if not wanted:
            out.append(Finding("error", code, f"{setting} is not set; the {label} is required"))
            continue
        for part, content, template in (
            ("HTML", html_text, "email/partials/footer.mjml.j2"),
            ("plain text", text, TEXT_TEMPLATE),
        ):
            if content and wanted not in content:
                out.append(
                    Finding("error", code, f"the {part} lacks the {label}", template=template)
                )
    return out
