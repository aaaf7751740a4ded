"""`newsletter campaigns archive ID --include/--exclude` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from campaigns.models import Campaign
from cli import app
from newsletter.settings import Settings

runner = CliRunner()


@pytest.fixture
def campaign_id(
    sqlite_settings: Settings,
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> int:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", sqlite_settings.database_url)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        campaign = Campaign(subject="Sciatica", status="sent")
        session.add(campaign)
        session.commit()
    assert campaign.id is not None
    return campaign.id


def test_exclude_then_include_says_where_the_campaign_stands(campaign_id: int) -> None:
    out = runner.invoke(app, ["campaigns", "archive", str(campaign_id), "--exclude"])
    assert (out.exit_code, out.stdout) == (
        0,
        f"campaign {campaign_id}: left out of the public archive\n",
    )
    shown = runner.invoke(app, ["campaigns", "archive", str(campaign_id), "--json"])
    assert json.loads(shown.stdout) == {
        "campaign_id": campaign_id,
        "in_archive": False,
        "changed": False,
    }
    back = runner.invoke(app, ["campaigns", "archive", str(campaign_id), "--include"])
    assert back.stdout == f"campaign {campaign_id}: in the public archive\n"
    again = runner.invoke(app, ["campaigns", "archive", str(campaign_id), "--include"])
    assert again.stdout == f"campaign {campaign_id}: in the public archive (already)\n"


def test_an_unknown_campaign_is_one_line_and_exit_1(campaign_id: int) -> None:
    result = runner.invoke(app, ["campaigns", "archive", "999", "--exclude"])
    assert result.exit_code == 1
    assert str(result.exception) == "campaign 999 does not exist"
