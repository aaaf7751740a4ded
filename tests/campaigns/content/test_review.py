"""campaigns/content/review.py: preview and preflight of a campaign by id, both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.content.review import preflight_campaign, preview_campaign
from newsletter.errors import NotFound
from newsletter.settings import Settings
from tests.support.content import make_campaign, make_snippet


@pytest.fixture
def campaign_id(session: Session, settings: Settings) -> int:
    snippet = make_snippet(session, settings)
    campaign = make_campaign(session, [snippet], subject="Weekly")
    session.commit()
    assert campaign.id is not None
    return campaign.id


def test_preview_writes_the_email_files(
    session: Session, settings: Settings, campaign_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "preview"
    result = preview_campaign(
        session, settings=settings, campaign_id=campaign_id, out_dir=out, chromium_path=None
    )
    # A reader with a name and one without (issue 13): the first three names as before.
    assert [f.name for f in result.files] == [
        "email.html",
        "email.txt",
        "email.eml",
        "email-unnamed.html",
        "email-unnamed.txt",
        "email-unnamed.eml",
    ]
    assert all((out / f.name).stat().st_size > 0 for f in result.files)
    assert result.notes == ["screenshots skipped: turned off"]


def test_preflight_of_a_good_campaign_is_ok(
    session: Session, settings: Settings, campaign_id: int
) -> None:
    report = preflight_campaign(session, settings=settings, campaign_id=campaign_id)
    assert (report.campaign_id, report.ok, report.errors) == (campaign_id, True, [])


def test_preflight_reports_what_blocks_the_send(
    session: Session, settings: Settings, campaign_id: int
) -> None:
    bare = settings.model_copy(update={"postal_address": None})
    report = preflight_campaign(session, settings=bare, campaign_id=campaign_id)
    assert not report.ok
    assert any("NEWSLETTER_POSTAL_ADDRESS" in f.message for f in report.errors)


@pytest.mark.parametrize("which", ["preview", "preflight"])
def test_an_unknown_campaign_is_not_found(
    session: Session, settings: Settings, tmp_path: Path, which: str
) -> None:
    with pytest.raises(NotFound):
        if which == "preview":
            preview_campaign(session, settings=settings, campaign_id=404, out_dir=tmp_path / "p")
        else:
            preflight_campaign(session, settings=settings, campaign_id=404)
    assert not (tmp_path / "p").exists()
