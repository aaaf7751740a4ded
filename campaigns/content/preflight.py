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
  need substantiation (FTC, Health Products Compliance Guidance, 2022).
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import jinja2
from sqlmodel import Session

from campaigns.content.assembly import IssueItem, issue_items
from campaigns.content.html_checks import HtmlAudit, audit_html, is_http_url, is_live_http
from campaigns.content.rendering import HTML_TEMPLATE, TEXT_TEMPLATE, RenderedIssue, render_campaign
from campaigns.content.snippets import collapse_whitespace
from campaigns.models import Campaign
from newsletter.errors import ContentError, TemplateError
from newsletter.mail import UNSUBSCRIBE_URL, placeholder
from newsletter.settings import Settings
from newsletter.templating import Templates

Severity = Literal["error", "warning"]
# Templates whose source a finding in the rendered HTML is traced back to.
EMAIL_TEMPLATES = (
    HTML_TEMPLATE,
    "email/layout.mjml.j2",
    "email/partials/snippet_card.mjml.j2",
    "email/partials/footer.mjml.j2",
)


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
    rendered: RenderedIssue | None = None
    if items:
        try:
            rendered = render_campaign(session, settings=settings, campaign=campaign)
        except TemplateError as err:
            add(
                Finding(
                    "error",
                    "template",
                    str(err).split(": ", 1)[-1],
                    template=err.template,
                    line=err.line,
                )
            )
    if rendered is not None:
        report.findings.extend(_content_findings(rendered, settings=settings))
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
        if not is_http_url(s.image_url):
            finding(
                "error",
                "image",
                f"image {s.image_url!r} is not an absolute http(s) URL",
                "image_url",
            )
        if not (s.image_alt or "").strip():
            finding(
                "warning", "alt", "image has no alt text of its own; the title is used", "image_alt"
            )
    for field_name in ("title", "summary"):
        for word in claims_in(getattr(s, field_name), settings.claims_words):
            finding(
                "warning",
                "claims",
                f"uses {word!r}: a health sender must not promise results unqualified",
                field_name,
            )
    return out


def _content_findings(rendered: RenderedIssue, *, settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    audit = audit_html(rendered.html)
    sources = _template_sources(settings)
    out.extend(_link_findings(audit, sources))
    for image in audit.images_without_alt():
        template, line = _locate(sources, "src", image.src, image.line)
        out.append(
            Finding(
                "error", "alt", f"image {image.src!r} has no alt text", template=template, line=line
            )
        )
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
    return out


def _link_findings(audit: HtmlAudit, sources: dict[str, list[str]]) -> list[Finding]:
    out = []
    for link in audit.links:
        if not is_live_http(link.href):
            template, line = _locate(sources, "href", link.href, link.line)
            out.append(
                Finding(
                    "error",
                    "link",
                    f"link {link.href!r} is not an absolute http(s) URL",
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


def _template_sources(settings: Settings) -> dict[str, list[str]]:
    """Source lines of the email templates as this configuration resolves them."""
    env = Templates(settings).html_env
    assert env.loader is not None
    sources: dict[str, list[str]] = {}
    for name in EMAIL_TEMPLATES:
        try:
            source, _, _ = env.loader.get_source(env, name)
        except jinja2.TemplateNotFound:  # rendering reports it
            continue
        sources[name] = source.splitlines()
    return sources


def _locate(
    sources: dict[str, list[str]], attribute: str, value: str, html_line: int
) -> tuple[str, int]:
    """The template and line that write ``attribute="value"`` literally, else the line of
    the rendered HTML (the value came from an expression)."""
    needles = (f'{attribute}="{value}"', f"{attribute}='{value}'")
    for name, lines in sources.items():
        for number, line in enumerate(lines, start=1):
            if any(n in line for n in needles):
                return name, number
    return f"{HTML_TEMPLATE} (rendered HTML)", html_line
