"""``newsletter campaigns compare [--last 12] [--json] [--chart FILE.png]``: the last
issues side by side (issue 15, point 7)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Column

from cli import output, params
from cli.context import session_for, settings


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def compare(
    last: int = typer.Option(
        12, "--last", min=1, max=104, metavar="N", help="How many of the latest sent issues."
    ),
    chart_file: Path | None = typer.Option(
        None,
        "--chart",
        metavar="FILE.png",
        parser=params.output_file,
        help="Also draw the rates and counts per issue (PNG).",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """The last sent issues compared: human open rate and click rate (of delivered),
    unsubscribes and bounces; the same figures whatever the provider."""
    from campaigns.reports.exports import write_comparison

    with session_for(settings()) as session:
        result = write_comparison(session, last=last, chart_file=chart_file)
    if as_json:
        output.print_json(result.to_dict())
        return
    issues = result.comparison.issues
    if not issues:
        output.say("no issue has been sent yet")
    else:
        output.print_table(
            (
                Column("ID", justify="right"),
                Column("Issue", no_wrap=True),
                Column("Delivered", justify="right"),
                Column("Open rate", justify="right"),
                Column("Click rate", justify="right"),
                Column("Unsubscribes", justify="right"),
                Column("Bounces", justify="right"),
            ),
            (
                (
                    str(i.campaign_id),
                    i.label,
                    f"{i.delivered:,}",
                    _rate(i.human_open_rate),
                    _rate(i.click_rate),
                    f"{i.unsubscribes:,}",
                    f"{i.bounces:,}",
                )
                for i in issues
            ),
            title=f"The last {output.plural(len(issues), 'issue')}, oldest first "
            "(rates of delivered; opens and clicks by people, not machines)",
        )
    if result.chart is not None:
        output.say(f"wrote {result.chart}")
