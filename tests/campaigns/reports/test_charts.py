"""Charts are real PNG files of the advertised pixel size."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from campaigns.reports.charts import CHART_SIZE_PX, campaign_chart, campaign_figure, growth_chart
from campaigns.reports.figures import GrowthWeek, Timeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature and its CRC."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    header = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + header) == crc
    assert data.endswith(b"IEND\xaeB`\x82")
    width, height = struct.unpack(">II", header[:8])
    return width, height


def test_the_chart_size_is_a_thousand_by_five_hundred() -> None:
    assert CHART_SIZE_PX == (1000, 500)


def test_a_campaign_chart_is_a_png_of_the_fixed_size(tmp_path: Path) -> None:
    start = datetime(2026, 11, 24, 9, tzinfo=UTC)
    timeline = Timeline(
        campaign_id=1,
        buckets=[start + timedelta(hours=h) for h in range(6)],
        series={
            "delivered": [950, 30, 5, 0, 0, 0],
            "opens": [120, 240, 80, 40, 20, 10],
            "clicks": [10, 30, 12, 5, 2, 1],
            "bounces": [12, 1, 0, 0, 0, 0],
            "complaints": [0, 1, 0, 0, 0, 0],
            "unsubscribes": [0, 2, 1, 0, 0, 1],
        },
    )
    path = campaign_chart(timeline, tmp_path / "campaign.png", title="Leg cramps at night")
    assert png_size(path) == CHART_SIZE_PX


def test_a_campaign_without_events_still_gets_a_chart(tmp_path: Path) -> None:
    timeline = Timeline(campaign_id=1, buckets=[], series={})
    path = campaign_chart(timeline, tmp_path / "sub" / "empty.png", title="Nothing yet")
    assert png_size(path) == CHART_SIZE_PX


def hour_labels(timeline: Timeline, **zone: ZoneInfo) -> list[str]:
    figure = campaign_figure(timeline, title="Leg cramps at night", **zone)
    figure.canvas.draw()
    return [label.get_text() for label in figure.axes[-1].get_xticklabels()]


def test_the_chart_labels_its_hours_in_the_lists_time_zone() -> None:
    """19:00 UTC on 24 November is 14:00 in New York (EST), as the console shows it."""
    start = datetime(2026, 11, 24, 19, tzinfo=UTC)
    timeline = Timeline(
        campaign_id=1,
        buckets=[start + timedelta(hours=h) for h in range(4)],
        series={"sent": [3, 0, 0, 0], "unsubscribes": [0, 0, 1, 0]},
        provider_events=False,
    )
    labels = hour_labels(timeline, zone=ZoneInfo("America/New_York"))
    assert "14:00" in labels and "19:00" not in labels
    assert "19:00" in hour_labels(timeline)  # no zone given: UTC
    figure = campaign_figure(timeline, title="t", zone=ZoneInfo("America/New_York"))
    assert figure.axes[-1].get_xlabel() == "time (America/New_York)"


def test_a_growth_chart_is_a_png_of_the_fixed_size(tmp_path: Path) -> None:
    monday = date(2026, 9, 7)
    growth = [
        GrowthWeek(
            week=f"2026-W{37 + i:02d}",
            start=monday + timedelta(weeks=i),
            active=100 + 7 * i,
            signups=9 + i % 3,
            unsubscribes=2 + i % 2,
        )
        for i in range(12)
    ]
    assert png_size(growth_chart(growth, tmp_path / "growth.png")) == CHART_SIZE_PX


def test_a_growth_chart_of_an_empty_list_is_drawn(tmp_path: Path) -> None:
    growth = [
        GrowthWeek(week="2026-W48", start=date(2026, 11, 23), active=0, signups=0, unsubscribes=0)
    ]
    assert png_size(growth_chart(growth, tmp_path / "growth.png")) == CHART_SIZE_PX


def test_the_campaign_chart_leaves_room_for_its_legend_above_the_tallest_point() -> None:
    """A legend drawn over the line hid a single open (the reviewer's screenshot)."""
    start = datetime(2026, 11, 24, 19, tzinfo=UTC)
    timeline = Timeline(
        campaign_id=1,
        buckets=[start + timedelta(hours=h) for h in range(3)],
        series={"sent": [3, 0, 0], "opens": [0, 1, 1], "unsubscribes": [0, 0, 0]},
        provider_events=False,
    )
    top, bottom = campaign_figure(timeline, title="t").axes
    assert top.get_ylim()[1] >= 3 * 1.3 and bottom.get_ylim()[1] >= 1.3
