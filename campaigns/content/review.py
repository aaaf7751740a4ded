"""Reviewing a campaign by id before it goes out: the preview files and the preflight.

Doors know a campaign by its id; these look it up and hand it to
:func:`campaigns.content.preview.write_preview` and
:func:`campaigns.content.preflight.preflight`. Both may render a draft and store the
rendering: the caller commits.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from campaigns.actions import get_campaign
from campaigns.content.preflight import PreflightReport, preflight
from campaigns.content.preview import DEFAULT_CHROMIUM, PreviewResult, write_preview
from newsletter.settings import Settings


def preview_campaign(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    out_dir: Path,
    chromium_path: str | None = DEFAULT_CHROMIUM,
) -> PreviewResult:
    """Write email.html/.txt/.eml (and, with Chromium, desktop/mobile PNGs) to ``out_dir``.

    Raises NotFound for an unknown campaign, TemplateError when it does not render.
    """
    campaign = get_campaign(session, campaign_id=campaign_id)
    return write_preview(
        session, settings=settings, campaign=campaign, out_dir=out_dir, chromium_path=chromium_path
    )


def preflight_campaign(
    session: Session, *, settings: Settings, campaign_id: int
) -> PreflightReport:
    """Every finding about the campaign; ``report.ok`` is False when one blocks the send.

    Raises NotFound for an unknown campaign.
    """
    return preflight(
        session, settings=settings, campaign=get_campaign(session, campaign_id=campaign_id)
    )
