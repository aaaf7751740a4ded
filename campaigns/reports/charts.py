"""PNG charts of a campaign's timeline and of list growth (matplotlib, Agg backend).

We draw on a bare :class:`Figure` with the Agg canvas instead of pyplot: no global figure
registry, no GUI backend, safe in a web worker. The figure size and dpi are fixed and
``bbox_inches`` is never "tight", so every PNG is exactly :data:`CHART_SIZE_PX` pixels.
"""

from __future__ import annotations

from datetime import UTC, timedelta, tzinfo
from pathlib import Path
from typing import IO

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from campaigns.reports.comparison import Comparison
from campaigns.reports.figures import GrowthWeek, Timeline

CHART_DPI = 100
CHART_INCHES = (10.0, 5.0)
CHART_SIZE_PX = (int(CHART_INCHES[0] * CHART_DPI), int(CHART_INCHES[1] * CHART_DPI))

# Colour-blind-safe (Okabe-Ito) and one colour per meaning across both charts.
COLOURS = {
    "sent": "#0072B2",
    "delivered": "#0072B2",
    "opens": "#009E73",
    "clicks": "#E69F00",
    "bounces": "#D55E00",
    "complaints": "#CC79A7",
    "unsubscribes": "#56B4E9",
    "active": "#0072B2",
    "signups": "#009E73",
    "human_open_rate": "#009E73",
    "click_rate": "#E69F00",
}
LABELS = {
    "sent": "Sent (no delivery events from this provider)",
    "delivered": "Delivered",
    "opens": "Opens (people)",
    "clicks": "Clicks (people)",
    "bounces": "Bounces and rejections",
    "complaints": "Spam complaints",
    "unsubscribes": "Unsubscribes",
}


def _figure() -> Figure:
    figure = Figure(figsize=CHART_INCHES, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path | IO[bytes]) -> Path | IO[bytes]:
    """Write the PNG to a file (its folder created) or a binary stream (the console)."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=CHART_DPI)
    return path


DELIVERY_SERIES = ("delivered", "bounces")
ENGAGEMENT_SERIES = ("opens", "clicks", "unsubscribes", "complaints")
SENT_SERIES = ("sent", "bounces")
OWN_ENGAGEMENT_SERIES = ("opens", "clicks", "unsubscribes")


def campaign_chart(
    timeline: Timeline, path: Path | IO[bytes], *, title: str, zone: tzinfo = UTC
) -> Path | IO[bytes]:
    """Per hour: deliveries and bounces above, engagement below (their scales differ).
    Without provider events (outbox, SMTP): messages sent and bounces above; below, the
    opens and clicks our own tracking counted (if it could) and unsubscribes. Hours are
    labelled in ``zone``: the console shows every time in the list's time zone."""
    return _save(campaign_figure(timeline, title=title, zone=zone), path)


def campaign_figure(timeline: Timeline, *, title: str, zone: tzinfo = UTC) -> Figure:
    """The figure :func:`campaign_chart` saves (apart, so its axes can be read)."""
    figure = _figure()
    figure.suptitle(title, x=0.01, ha="left")
    if not timeline.buckets:
        axes = figure.add_subplot()
        axes.text(
            0.5,
            0.5,
            "No events yet",
            ha="center",
            va="center",
            transform=axes.transAxes,
            fontsize=14,
            color="#555555",
        )
        axes.set_axis_off()
        return figure
    top, bottom = figure.subplots(2, 1, sharex=True)
    above, below = (
        (DELIVERY_SERIES, ENGAGEMENT_SERIES)
        if timeline.provider_events
        else (SENT_SERIES, OWN_ENGAGEMENT_SERIES)
    )
    # Only the series the timeline has: opens nobody could count are not drawn as 0.
    above = tuple(n for n in above if n in timeline.series)
    below = tuple(n for n in below if n in timeline.series)
    for axes, names, ylabel in (
        (top, above, "messages per hour"),
        (bottom, below, "people per hour"),
    ):
        for name in names:
            values = timeline.series.get(name, [])
            axes.plot(
                timeline.buckets,
                values,
                marker="o",
                markersize=3,
                linewidth=1.8,
                color=COLOURS[name],
                label=LABELS[name],
            )
        axes.set_ylabel(ylabel)
        # At least 0..1: an all-zero series otherwise gets ticks of 0.006 people.
        tallest = max([0, *(v for name in names for v in timeline.series.get(name, []))])
        axes.set_ylim(0, max(1, tallest) * 1.35)  # headroom for the legend
        axes.grid(True, alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(loc="upper right", frameon=False, ncols=len(names))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(timeline.buckets) == 1:  # one hour alone: autoscale would span years
        only = timeline.buckets[0]
        bottom.set_xlim(only - timedelta(hours=2), only + timedelta(hours=2))
    locator = AutoDateLocator(tz=zone)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone))
    bottom.set_xlabel(f"time ({zone})")
    return figure


def growth_chart(
    growth: list[GrowthWeek], path: Path | IO[bytes], *, title: str = "List growth"
) -> Path | IO[bytes]:
    """Active subscribers per week above; sign-ups and unsubscribes as bars below."""
    figure = _figure()
    figure.suptitle(title, x=0.01, ha="left")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    positions = list(range(len(growth)))
    top.plot(
        positions,
        [g.active for g in growth],
        marker="o",
        linewidth=2.2,
        color=COLOURS["active"],
        label="Active subscribers",
    )
    top.set_ylabel("active subscribers")
    top.set_ylim(bottom=0)
    width = 0.4
    bottom.bar(
        [p - width / 2 for p in positions],
        [g.signups for g in growth],
        width,
        color=COLOURS["signups"],
        label="Sign-ups",
    )
    bottom.bar(
        [p + width / 2 for p in positions],
        [g.unsubscribes for g in growth],
        width,
        color=COLOURS["unsubscribes"],
        label="Unsubscribes",
    )
    bottom.set_ylabel("people per week")
    tallest = max([1, *(g.signups for g in growth), *(g.unsubscribes for g in growth)])
    bottom.set_ylim(0, tallest * 1.3)  # headroom for the legend
    bottom.set_xticks(positions, [g.week for g in growth], rotation=45, ha="right")
    for axes in (top, bottom):
        axes.grid(True, axis="y", alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(loc="upper left", frameon=False, ncols=2)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # people come whole
    return _save(figure, path)


def comparison_chart(
    comparison: Comparison, path: Path, *, title: str = "The last issues compared"
) -> Path:
    """Per issue, oldest left: human open rate and click rate (of delivered) above;
    unsubscribes and bounces as bars below. An issue whose opens nobody could count
    leaves a gap in the lines, never a 0."""
    figure = _figure()
    figure.suptitle(title, x=0.01, ha="left")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1))
    issues = comparison.issues
    positions = list(range(len(issues)))
    for name, label in (
        ("human_open_rate", "Open rate (people)"),
        ("click_rate", "Click rate (people)"),
    ):
        values = [getattr(i, name) for i in issues]
        top.plot(
            positions,
            [float("nan") if v is None else v for v in values],
            marker="o",
            linewidth=2.2,
            color=COLOURS[name],
            label=label,
        )
    top.set_ylabel("of delivered")
    top.yaxis.set_major_formatter(PercentFormatter(1.0))
    highest = max(
        [0.01, *(v for i in issues for v in (i.human_open_rate, i.click_rate) if v is not None)]
    )
    top.set_ylim(0, highest * 1.35)  # headroom for the legend
    width = 0.4
    bottom.bar(
        [p - width / 2 for p in positions],
        [i.unsubscribes for i in issues],
        width,
        color=COLOURS["unsubscribes"],
        label="Unsubscribes",
    )
    bottom.bar(
        [p + width / 2 for p in positions],
        [i.bounces for i in issues],
        width,
        color=COLOURS["bounces"],
        label="Bounces",
    )
    bottom.set_ylabel("people per issue")
    tallest = max([1, *(i.unsubscribes for i in issues), *(i.bounces for i in issues)])
    bottom.set_ylim(0, tallest * 1.3)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xticks(positions, [i.label for i in issues], rotation=45, ha="right")
    for axes in (top, bottom):
        axes.grid(True, axis="y", alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(loc="upper left", frameon=False, ncols=2)
    return _save(figure, path)
