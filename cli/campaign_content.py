"""``newsletter campaigns assemble|preview|preflight``: build the weekly issue and check a
campaign's content before it goes out.

Kept apart from cli/campaigns.py so that module stays short; cli/campaigns.py registers
these commands on its ``app`` in their old place, so ``--help`` lists them as before.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer

from cli import output, params
from cli.context import session_for, settings


def assemble(
    day: date | None = typer.Option(
        None,
        "--for",
        metavar="DATE",
        parser=params.parse_day,
        help="Any day of the issue's ISO week; default today.",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Build the weekly issue, or show the one already built for that week.

    A week whose issue was cancelled gets a fresh one in its place.
    """
    from campaigns.content.assembly import assemble_week

    cfg = settings()
    with session_for(cfg) as session:
        issue = assemble_week(session, settings=cfg, day=day, actor="cli", replace_cancelled=True)
        data = issue.to_dict()
    if as_json:
        output.print_json(data)
        return
    output.say(_assembled_line(data))
    for position, snippet in enumerate(data["snippets"], start=1):
        mark = " (resent)" if snippet["resent"] else ""
        output.say(f"  {position}. [{snippet['id']}] {snippet['title']}{mark}")


def _assembled_line(data: dict[str, Any]) -> str:
    """What assembling did, naming the campaign's status (and the issue it replaces)."""
    week, cid, status, subject = data["week"], data["id"], data["status"], data["subject"]
    if not data["created"]:
        already = status if status in ("scheduled", "sending", "sent") else f"assembled ({status})"
        return f"the {week} issue is campaign {cid}, already {already}: {subject}"
    replacing = f", replacing cancelled campaign {data['replaces']}" if data["replaces"] else ""
    return f"campaign {cid} ({status}) for {week} assembled{replacing}: {subject}"


def preview(
    campaign_id: int = params.campaign_id("The campaign to write preview files of."),
    out_dir: Path = typer.Option(
        ...,
        "--out",
        metavar="FOLDER",
        parser=params.output_folder,
        help="Folder for the preview files; created when missing.",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Write email.html/.txt/.eml and desktop/mobile screenshots of a campaign."""
    from campaigns.content.review import preview_campaign

    cfg = settings()
    with session_for(cfg) as session:
        result = preview_campaign(session, settings=cfg, campaign_id=campaign_id, out_dir=out_dir)
    if as_json:
        output.print_json(result.to_dict())
        return
    for file in result.files:
        output.say(f"wrote {file}")
    for note in result.notes:
        output.say(f"note: {note}")
    for warning in result.warnings:
        output.say_err(f"warning: {warning}")


def preflight(
    campaign_id: int = params.campaign_id("The campaign to check."),
    as_json: bool = output.json_option(),
) -> None:
    """Check a campaign before sending; exit 1 when an error would block the send."""
    from campaigns.content.review import preflight_campaign

    cfg = settings()
    with session_for(cfg) as session:
        report = preflight_campaign(session, settings=cfg, campaign_id=campaign_id)
    if as_json:
        output.print_json(report.to_dict())
    else:
        for finding in report.findings:
            output.say(str(finding))
        blocked = f"the send is blocked by {output.plural(len(report.errors), 'error')}"
        output.say(f"preflight: {'ok' if report.ok else blocked}")
    if not report.ok:
        output.fail()
