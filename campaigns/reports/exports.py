"""Reports written to files on request: a campaign's figures as CSV and chart, list growth,
the comparison of the last issues.

The figures and charts themselves live in :mod:`campaigns.reports.figures` and
:mod:`campaigns.reports.charts`; this module decides what to compute for the files asked
for (the timeline only when a chart is wanted) and what the answer names, so every door
writes the same files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from sqlmodel import Session

from campaigns import weekly_plan
from campaigns.reports.charts import campaign_chart, comparison_chart, growth_chart
from campaigns.reports.comparison import Comparison, compare_issues
from campaigns.reports.figures import (
    CampaignReport,
    GrowthWeek,
    campaign_report,
    campaign_timeline,
    growth_dicts,
    list_growth,
    report_csv,
)
from newsletter.settings import Settings


@dataclass(frozen=True)
class ReportFiles:
    """A campaign report and the files written with it (None: not asked for)."""

    report: CampaignReport
    csv: Path | None = None
    chart: Path | None = None

    def to_dict(self) -> dict[str, object]:
        """The report's JSON, plus ``csv`` and ``chart`` paths when they were written."""
        data = self.report.to_dict()
        if self.csv is not None:
            data["csv"] = str(self.csv)
        if self.chart is not None:
            data["chart"] = str(self.chart)
        return data


@dataclass(frozen=True)
class GrowthFiles:
    """List growth per ISO week, oldest first, and the chart written (None: not asked)."""

    weeks: list[GrowthWeek]
    chart: Path | None = None

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"weeks": growth_dicts(self.weeks)}
        if self.chart is not None:
            data["chart"] = str(self.chart)
        return data


def write_campaign_report(
    session: Session,
    *,
    campaign_id: int,
    csv_file: Path | None = None,
    chart_file: Path | None = None,
    settings: Settings | None = None,
) -> ReportFiles:
    """The campaign's figures; also as CSV at ``csv_file`` and a PNG at ``chart_file``.

    Parent folders are created. The chart (1000x500 px) shows deliveries and engagement
    per hour, labelled in the list's time zone when ``settings`` are given (else UTC), as
    the console's chart. Raises NotFound for an unknown campaign, before any file is written.
    """
    report = campaign_report(session, campaign_id=campaign_id)
    if csv_file is not None:
        csv_file.parent.mkdir(parents=True, exist_ok=True)
        csv_file.write_text(report_csv(report), encoding="utf-8")
    chart = None
    if chart_file is not None:
        timeline = campaign_timeline(session, campaign_id=campaign_id)
        title = f"Campaign {campaign_id}: {report.subject}"
        zone = weekly_plan.zone(settings) if settings is not None else UTC
        chart = campaign_chart(timeline, chart_file, title=title, zone=zone)
    return ReportFiles(report=report, csv=csv_file, chart=chart)


def write_growth(session: Session, *, weeks: int, chart_file: Path | None = None) -> GrowthFiles:
    """The last ``weeks`` ISO weeks of list growth; also a PNG at ``chart_file``."""
    growth = list_growth(session, weeks=weeks)
    chart = growth_chart(growth, chart_file) if chart_file is not None else None
    return GrowthFiles(weeks=growth, chart=chart)


@dataclass(frozen=True)
class ComparisonFiles:
    """The last issues compared (oldest first) and the chart written (None: not asked)."""

    comparison: Comparison
    chart: Path | None = None

    def to_dict(self) -> dict[str, object]:
        data = self.comparison.to_dict()
        if self.chart is not None:
            data["chart"] = str(self.chart)
        return data


def write_comparison(
    session: Session, *, last: int, chart_file: Path | None = None
) -> ComparisonFiles:
    """The last ``last`` sent issues compared; also a PNG (1000x500 px) at ``chart_file``.
    Raises InvalidInput for ``last`` outside 1..104, before any file is written."""
    comparison = compare_issues(session, last=last)
    chart = comparison_chart(comparison, chart_file) if chart_file is not None else None
    return ComparisonFiles(comparison=comparison, chart=chart)
