"""`newsletter campaigns report` and `newsletter subscribers growth` from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app, output
from newsletter.errors import NotFound
from newsletter.settings import Settings
from tests.campaigns.reports.test_charts import png_size
from tests.support.tracking import (
    add_campaign,
    add_delivery,
    add_subscriber,
    apply,
    engagement,
    later,
    sg_event,
)

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
        campaign = add_campaign(session, subject="Sciatica")
        deliveries = []
        for name in ("ann", "bob"):
            delivery = add_delivery(session, campaign, add_subscriber(session, f"{name}@x.com"))
            apply(session, sqlite_settings, sg_event("delivered", delivery, f"{name}@x.com"))
            deliveries.append(delivery)
        first = deliveries[0]
        apply(session, sqlite_settings, sg_event("spamreport", delivery, "bob@x.com"))
        engagement(session, sqlite_settings, delivery, "clicked", machine=True)  # a scanner
        engagement(session, sqlite_settings, delivery, "clicked", at=later(3))  # then Bob
        engagement(session, sqlite_settings, first, "clicked", machine=True)  # Ann: scanner only
    return campaign.id


def test_report_json_prints_the_figures(campaign_id: int) -> None:
    result = runner.invoke(app, ["campaigns", "report", str(campaign_id), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["figures"]["complaints"] == {"count": 1, "rate": 0.5}
    assert data["warnings"][0].startswith("complaint rate 50.00%")


def test_report_shows_human_and_machine_clicks_side_by_side(campaign_id: int) -> None:
    """Issue 15.2: one person clicked, a scanner followed the links of both messages."""
    data = json.loads(
        runner.invoke(app, ["campaigns", "report", str(campaign_id), "--json"]).stdout
    )
    assert data["figures"]["unique_clicks"] == {"count": 1, "rate": 0.5}
    assert data["figures"]["machine_clicks"] == {"count": 2, "rate": 1.0}
    text = " ".join(runner.invoke(app, ["campaigns", "report", str(campaign_id)]).stdout.split())
    assert "Unique clicks (people) │ 1 │ 50.00% │ delivered" in text
    assert "Machine clicks (link scanners) │ 2 │ 100.00% │ delivered" in text


def test_report_table_shows_the_warning(campaign_id: int) -> None:
    result = runner.invoke(app, ["campaigns", "report", str(campaign_id)])
    assert result.exit_code == 0, result.output
    assert "Spam complaints" in result.stdout
    assert "warning: complaint rate 50.00%" in " ".join(result.stdout.split())


def test_report_warning_is_printed_in_red(
    campaign_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rich prints plain text to a pipe; a console that believes it is a terminal shows the style.
    monkeypatch.setattr(output, "out", Console(force_terminal=True, color_system="standard"))
    result = runner.invoke(app, ["campaigns", "report", str(campaign_id)])
    assert result.exit_code == 0, result.output
    assert "\x1b[1;31mwarning: complaint rate 50.00%" in result.stdout


def test_report_without_a_problem_prints_no_warning(
    sqlite_engine: Engine, campaign_id: int
) -> None:
    with Session(sqlite_engine) as session:
        calm = add_campaign(session, subject="Calm week", week="2026-W49")
        add_delivery(session, calm, add_subscriber(session, "cid@x.com"))
        calm_id = calm.id
    result = runner.invoke(app, ["campaigns", "report", str(calm_id)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stdout


def test_report_csv_holds_exactly_the_figures_of_the_json(campaign_id: int, tmp_path: Path) -> None:
    csv_file = tmp_path / "r.csv"
    result = runner.invoke(
        app, ["campaigns", "report", str(campaign_id), "--json", "--csv", str(csv_file)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["figures"]
    with csv_file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    from_csv = {
        row["figure"]: {
            "count": int(row["count"]),
            "rate": float(row["rate"]) if row["rate"] else None,
        }
        for row in rows
    }
    assert from_csv == figures
    assert [row["figure"] for row in rows] == list(figures)
    assert {row["campaign_id"] for row in rows} == {str(campaign_id)}


def test_report_of_an_unknown_campaign_is_an_error(campaign_id: int) -> None:
    # main() turns the NotFound into "error: ..." and exit 1; the runner shows it raised.
    result = runner.invoke(app, ["campaigns", "report", "4040"])
    assert isinstance(result.exception, NotFound)
    assert str(result.exception) == "campaign 4040 does not exist"


def test_growth_table_writes_the_chart(campaign_id: int, tmp_path: Path) -> None:
    chart = tmp_path / "table-growth.png"
    result = runner.invoke(app, ["subscribers", "growth", "--weeks", "2", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    assert f"wrote {chart}" in result.stdout.replace("\n", "")
    assert png_size(chart) == (1000, 500)


def test_report_writes_csv_and_chart(campaign_id: int, tmp_path: Path) -> None:
    csv_file, chart = tmp_path / "out" / "r.csv", tmp_path / "out" / "r.png"
    result = runner.invoke(
        app,
        [
            "campaigns",
            "report",
            str(campaign_id),
            "--json",
            "--csv",
            str(csv_file),
            "--chart",
            str(chart),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["csv"] == str(csv_file)
    assert f"{campaign_id},complaints,Spam complaints,1,0.500000,delivered" in (
        csv_file.read_text().splitlines()
    )
    assert png_size(chart) == (1000, 500)


def test_growth_json_lists_the_weeks(campaign_id: int, tmp_path: Path) -> None:
    chart = tmp_path / "growth.png"
    result = runner.invoke(
        app, ["subscribers", "growth", "--weeks", "3", "--json", "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [w["active"] for w in data["weeks"]][-1] == 1  # bob complained
    assert (len(data["weeks"]), data["chart"]) == (3, str(chart))
    assert png_size(chart) == (1000, 500)
