"""campaigns/reports/exports.py: report and growth files written on request, both databases."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.reports.exports import write_campaign_report, write_growth
from campaigns.reports.figures import campaign_report, growth_dicts, list_growth, report_csv
from newsletter.errors import NotFound
from newsletter.settings import Settings
from tests.campaigns.reports.test_charts import png_size
from tests.support.tracking import add_campaign, add_delivery, add_subscriber, apply, sg_event


@pytest.fixture
def campaign_id(session: Session, settings: Settings) -> int:
    campaign = add_campaign(session, subject="Sciatica")
    for name in ("ann", "bob"):
        delivery = add_delivery(session, campaign, add_subscriber(session, f"{name}@x.com"))
        apply(session, settings, sg_event("delivered", delivery, f"{name}@x.com"))
    assert campaign.id is not None
    return campaign.id


def test_without_files_it_is_the_report_alone(session: Session, campaign_id: int) -> None:
    result = write_campaign_report(session, campaign_id=campaign_id)
    assert (result.csv, result.chart) == (None, None)
    assert result.to_dict() == campaign_report(session, campaign_id=campaign_id).to_dict()


def test_csv_and_chart_are_written_into_new_folders(
    session: Session, campaign_id: int, tmp_path: Path
) -> None:
    csv_file, chart_file = tmp_path / "a" / "r.csv", tmp_path / "b" / "c" / "r.png"
    result = write_campaign_report(
        session, campaign_id=campaign_id, csv_file=csv_file, chart_file=chart_file
    )
    assert (result.csv, result.chart) == (csv_file, chart_file)
    assert csv_file.read_text(encoding="utf-8") == report_csv(result.report)
    with csv_file.open(newline="", encoding="utf-8") as handle:
        delivered = next(r for r in csv.DictReader(handle) if r["figure"] == "delivered")
    assert delivered["count"] == "2"
    assert png_size(chart_file) == (1000, 500)
    data = result.to_dict()
    assert list(data)[-2:] == ["csv", "chart"]
    assert (data["csv"], data["chart"]) == (str(csv_file), str(chart_file))


def test_an_unknown_campaign_writes_no_file(session: Session, tmp_path: Path) -> None:
    csv_file = tmp_path / "r.csv"
    with pytest.raises(NotFound):
        write_campaign_report(session, campaign_id=4040, csv_file=csv_file)
    assert not csv_file.exists()


def test_growth_with_and_without_a_chart(
    session: Session, campaign_id: int, tmp_path: Path
) -> None:
    plain = write_growth(session, weeks=3)
    assert plain.chart is None
    assert plain.to_dict() == {"weeks": growth_dicts(list_growth(session, weeks=3))}
    chart = tmp_path / "g" / "growth.png"
    drawn = write_growth(session, weeks=2, chart_file=chart)
    assert (len(drawn.weeks), drawn.chart, drawn.to_dict()["chart"]) == (2, chart, str(chart))
    assert png_size(chart) == (1000, 500)
