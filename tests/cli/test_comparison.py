"""`newsletter campaigns compare [--last N] [--json] [--chart FILE]` from the command line."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from campaigns.models import Campaign
from cli import app
from newsletter.settings import Settings
from tests.campaigns.reports.test_charts import png_size
from tests.support.tracking import T0, add_delivery, add_subscriber, apply, sg_event

runner = CliRunner()


@pytest.fixture
def issues(
    sqlite_settings: Settings,
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> list[int]:
    """Three sent issues; the last was opened by one of its two readers."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", sqlite_settings.database_url)
    ids = []
    with Session(sqlite_engine, expire_on_commit=False) as session:
        people = [add_subscriber(session, f"{n}@x.com") for n in ("ann", "bob")]
        for week in (46, 47, 48):
            campaign = Campaign(
                subject=f"Week {week}",
                week=f"2026-W{week}",
                status="sent",
                started_at=T0 + timedelta(weeks=week),
            )
            session.add(campaign)
            session.commit()
            deliveries = [add_delivery(session, campaign, p) for p in people]
            ids.append(campaign.id)
        apply(session, sqlite_settings, sg_event("open", deliveries[0], "ann@x.com"))
    return ids


def test_compare_json_lists_the_last_issues_oldest_first(issues: list[int]) -> None:
    result = runner.invoke(app, ["campaigns", "compare", "--last", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [i["campaign_id"] for i in data["issues"]] == issues[1:]
    assert data["issues"][-1]["human_open_rate"] == 0.5
    assert data["issues"][0]["human_open_rate"] is None  # nothing counted its opens


def test_compare_table_and_chart(issues: list[int], tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "compare.png"
    result = runner.invoke(app, ["campaigns", "compare", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "oldest first (rates of delivered; opens and clicks by people, not machines)" in text
    assert "2026-W48" in text and "50.0%" in text and "n/a" in text
    assert f"wrote {chart}" in text
    assert png_size(chart) == (1000, 500)


def test_compare_out_of_range_is_wrong_usage(issues: list[int]) -> None:
    result = runner.invoke(app, ["campaigns", "compare", "--last", "0"])
    assert result.exit_code == 2
