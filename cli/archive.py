"""``newsletter campaigns archive ID --include/--exclude``: list an issue in the public
archive (/archive/ and its Atom feed) or leave it out (issue 15)."""

from __future__ import annotations

import typer

from cli import output, params
from cli.context import actor, session_for, settings


def archive(
    campaign_id: int = params.campaign_id("The campaign to list or leave out."),
    include: bool | None = typer.Option(
        None,
        "--include/--exclude",
        help="List it in the public archive and its feed, or leave it out "
        "(neither: say where it stands).",
        show_default=False,
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Include a campaign in the public archive or leave it out (its page stays reachable
    from the emails that link to it, but is not listed and not indexed)."""
    from campaigns.archive import set_archived

    with session_for(settings()) as session:
        state = set_archived(session, campaign_id=campaign_id, included=include, actor=actor())
    if as_json:
        output.print_json(state.to_dict())
        return
    where = "in the public archive" if state.included else "left out of the public archive"
    already = "" if state.changed or include is None else " (already)"
    output.say(f"campaign {campaign_id}: {where}{already}")
