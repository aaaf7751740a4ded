"""Preview a campaign as a reader gets it: the files, the MIME message and screenshots.

Two readers, because personal fields must read well both ways: one with a name
(``email.html``, ``.txt``, ``.eml``, ``desktop.png``, ``mobile.png``) and one without
(the same names ending ``-unnamed``), so the marketer sees "Hello," as well as
"Hello Alex,".

Screenshots come from Debian's Chromium driven by Playwright (never a downloaded browser),
with every network request blocked: a preview must not fetch tracking pixels or remote
images, and must work offline. The one exception is our own sample images
(``content/images``), which the web app serves at ``/static/content/images/`` under
``NEWSLETTER_BASE_URL``: those requests are answered from the folder, so the screenshots
show what a reader of the demo sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session

from campaigns.content.html_checks import audit_html
from campaigns.content.rendering import ensure_rendered
from campaigns.content.snippets import SITE_IMAGES_PATH
from campaigns.delivery.providers.base import Recipient, bulk_content
from campaigns.delivery.providers.outbox import personalised_message
from campaigns.models import Campaign
from newsletter.mail import PREFERENCES_URL, UNSUBSCRIBE_URL, build_mime, personal_values
from newsletter.settings import PROJECT_ROOT, Settings

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
# The readers a preview shows: file-name suffix and name (None: a reader without one).
READERS: tuple[tuple[str, str | None], ...] = (("", SAMPLE_NAME), ("-unnamed", None))
# Our sample images and where the web app serves them (under NEWSLETTER_BASE_URL).
CONTENT_IMAGES_DIR = PROJECT_ROOT / "content" / "images"
CONTENT_IMAGES_PATH = SITE_IMAGES_PATH


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


def sample_values(settings: Settings, name: str | None = SAMPLE_NAME) -> dict[str, str]:
    """Placeholder values for a preview: links that name no real reader, a sample name
    (``None``: a reader without one, greeted "Hello,")."""
    base = settings.base_url.rstrip("/")
    return {
        UNSUBSCRIBE_URL: f"{base}/unsubscribe/preview",
        PREFERENCES_URL: f"{base}/preferences/preview",
        **personal_values(name),
    }


def content_image_url(settings: Settings, filename: str) -> str:
    """The absolute URL of one of our sample images, as the web app serves it."""
    return settings.base_url.rstrip("/") + CONTENT_IMAGES_PATH + filename


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
    """Write email.html, .txt, .eml and (with Chromium) desktop/mobile PNGs for a reader
    with a name, and the same files ending ``-unnamed`` for a reader without one."""
    ensure_rendered(session, settings=settings, campaign=campaign)
    content = bulk_content(settings, campaign)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PreviewResult(out_dir=out_dir)
    pages = []
    for suffix, name in READERS:
        message = personalised_message(content, _sample_recipient(settings, name))
        for extension, data in (
            ("html", message.html.encode("utf-8")),
            ("txt", message.text.encode("utf-8")),
            ("eml", build_mime(message)),
        ):
            path = out_dir / f"email{suffix}.{extension}"
            path.write_bytes(data)
            result.files.append(path)
        pages.append((out_dir / f"email{suffix}.html", suffix))
        if not suffix:
            result.warnings.extend(preview_warnings(message.html, settings=settings))
    if chromium_path is None:
        result.notes.append("screenshots skipped: turned off")
        return result
    if not Path(chromium_path).exists():
        result.notes.append(f"screenshots skipped: no Chromium at {chromium_path}")
        return result
    result.mobile_scroll_width = screenshot_pages(
        pages, out_dir=out_dir, chromium_path=chromium_path, settings=settings
    )
    for _, suffix in pages:
        result.files.extend([out_dir / f"desktop{suffix}.png", out_dir / f"mobile{suffix}.png"])
    if result.mobile_scroll_width > MOBILE_WIDTH:
        result.warnings.append(
            f"mobile layout overflows: {result.mobile_scroll_width}px wide at {MOBILE_WIDTH}px"
        )
    return result


def _sample_recipient(settings: Settings, name: str | None = SAMPLE_NAME) -> Recipient:
    return Recipient(
        delivery_id=0,
        subscriber_id=0,
        email=SAMPLE_EMAIL,
        name=name,
        values=sample_values(settings, name),
    )


def take_screenshots(
    html_file: Path, *, out_dir: Path, chromium_path: str, settings: Settings | None = None
) -> int:
    """desktop.png (600 px) and mobile.png (375 px); returns the mobile page's scroll width."""
    return screenshot_pages(
        [(html_file, "")], out_dir=out_dir, chromium_path=chromium_path, settings=settings
    )


def screenshot_pages(
    pages: Sequence[tuple[Path, str]],
    *,
    out_dir: Path,
    chromium_path: str,
    settings: Settings | None = None,
) -> int:
    """desktop<suffix>.png (600 px) and mobile<suffix>.png (375 px) of each (page, suffix),
    in one browser; returns the widest mobile scroll width.

    Offline: only file:, data: and about: load, plus (with ``settings``) our sample
    images under ``NEWSLETTER_BASE_URL`` + ``/static/content/images/``, answered from
    ``content/images`` as the web app would.
    """
    from playwright.sync_api import Route, sync_playwright

    images = (settings.base_url.rstrip("/") + CONTENT_IMAGES_PATH) if settings else None

    def offline(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "about:")):
            route.continue_()
            return
        local = _content_image(url, images)
        if local is not None:
            route.fulfill(path=str(local))
        else:
            route.abort()

    scroll_width = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            for html_file, suffix in pages:
                url = html_file.resolve().as_uri()
                for name, width in (("desktop", DESKTOP_WIDTH), ("mobile", MOBILE_WIDTH)):
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    page.route("**/*", offline)
                    page.goto(url, wait_until="load")
                    page.screenshot(path=str(out_dir / f"{name}{suffix}.png"), full_page=True)
                    if name == "mobile":
                        width_now = int(page.evaluate("document.documentElement.scrollWidth"))
                        scroll_width = max(scroll_width, width_now)
                    page.close()
        finally:
            browser.close()
    return scroll_width


def _content_image(url: str, prefix: str | None) -> Path | None:
    """The file in content/images a sample-image URL names, if there is one."""
    if prefix is None or not url.startswith(prefix):
        return None
    name = url[len(prefix) :].split("?", 1)[0]
    if not name or "/" in name or name.startswith("."):
        return None
    path = CONTENT_IMAGES_DIR / name
    return path if path.is_file() else None
