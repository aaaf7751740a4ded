"""Preview a campaign as a reader gets it: the files, the MIME message and two screenshots.

Screenshots come from Debian's Chromium driven by Playwright (never a downloaded browser),
with every network request blocked: a preview must not fetch tracking pixels or remote
images, and must work offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from campaigns.content.html_checks import audit_html
from campaigns.content.rendering import RenderedIssue, ensure_rendered
from campaigns.delivery.providers.base import BulkContent, Recipient
from campaigns.delivery.providers.outbox import personalised_message
from campaigns.models import Campaign
from newsletter.mail import (
    NAME,
    NAME_HTML,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    build_mime,
    list_id,
)
from newsletter.settings import Settings

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP_WIDTH = 600
MOBILE_WIDTH = 375
SAMPLE_EMAIL = "reader@example.com"
SAMPLE_NAME = "Alex"


@dataclass
class PreviewResult:
    """The files written; ``warnings`` need a fix, ``notes`` only inform (no Chromium)."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mobile_scroll_width: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "files": [str(f) for f in self.files],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "mobile_scroll_width": self.mobile_scroll_width,
        }


def sample_values(settings: Settings) -> dict[str, str]:
    """Placeholder values for a preview: links that name no real reader, a sample name."""
    base = settings.base_url.rstrip("/")
    return {
        UNSUBSCRIBE_URL: f"{base}/unsubscribe/preview",
        PREFERENCES_URL: f"{base}/preferences/preview",
        NAME: SAMPLE_NAME,
        NAME_HTML: SAMPLE_NAME,
    }


def preview_warnings(html: str, *, settings: Settings) -> list[str]:
    """Size (Gmail clipping) and missing alt text, as lines for a person."""
    audit = audit_html(html)
    warnings = []
    size = audit.size_warning(settings)
    if size:
        warnings.append(size)
    for image in audit.images_without_alt():
        warnings.append(f"email.html:{image.line}: image {image.src!r} has no alt text")
    return warnings


def write_preview(
    session: Session,
    *,
    settings: Settings,
    campaign: Campaign,
    out_dir: Path,
    chromium_path: str | None = DEFAULT_CHROMIUM,
) -> PreviewResult:
    """Write email.html, email.txt, email.eml and (with Chromium) desktop/mobile PNGs."""
    rendered = ensure_rendered(session, settings=settings, campaign=campaign)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    message = personalised_message(_bulk(settings, campaign, rendered), _sample_recipient(settings))
    result = PreviewResult(out_dir=out_dir)
    for name, data in (
        ("email.html", message.html.encode("utf-8")),
        ("email.txt", message.text.encode("utf-8")),
        ("email.eml", build_mime(message)),
    ):
        (out_dir / name).write_bytes(data)
        result.files.append(out_dir / name)
    result.warnings.extend(preview_warnings(message.html, settings=settings))
    if chromium_path is None:
        result.notes.append("screenshots skipped: turned off")
        return result
    if not Path(chromium_path).exists():
        result.notes.append(f"screenshots skipped: no Chromium at {chromium_path}")
        return result
    result.mobile_scroll_width = take_screenshots(
        out_dir / "email.html", out_dir=out_dir, chromium_path=chromium_path
    )
    result.files.extend([out_dir / "desktop.png", out_dir / "mobile.png"])
    if result.mobile_scroll_width > MOBILE_WIDTH:
        result.warnings.append(
            f"mobile layout overflows: {result.mobile_scroll_width}px wide at {MOBILE_WIDTH}px"
        )
    return result


def _bulk(settings: Settings, campaign: Campaign, rendered: RenderedIssue) -> BulkContent:
    return BulkContent(
        campaign_id=campaign.id or 0,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        from_email=settings.from_email,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        list_id=list_id(settings),
    )


def _sample_recipient(settings: Settings) -> Recipient:
    return Recipient(
        delivery_id=0,
        subscriber_id=0,
        email=SAMPLE_EMAIL,
        name=SAMPLE_NAME,
        values=sample_values(settings),
    )


def take_screenshots(html_file: Path, *, out_dir: Path, chromium_path: str) -> int:
    """desktop.png (600 px) and mobile.png (375 px); returns the mobile page's scroll width."""
    from playwright.sync_api import Route, sync_playwright

    def offline(route: Route) -> None:
        if route.request.url.startswith(("file:", "data:", "about:")):
            route.continue_()
        else:
            route.abort()

    url = html_file.resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            scroll_width = 0
            for name, width in (("desktop.png", DESKTOP_WIDTH), ("mobile.png", MOBILE_WIDTH)):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.route("**/*", offline)
                page.goto(url, wait_until="load")
                page.screenshot(path=str(out_dir / name), full_page=True)
                scroll_width = int(page.evaluate("document.documentElement.scrollWidth"))
                page.close()
        finally:
            browser.close()
    return scroll_width
