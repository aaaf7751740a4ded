"""``newsletter campaigns edit|duplicate|reassemble``: change a campaign before it goes out
(issue 14), through the same room functions as the console and the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli import output, params
from cli.campaigns import app
from cli.context import actor, session_for, settings

if TYPE_CHECKING:
    from campaigns.views import CampaignView


def _snippet_list(value: str) -> list[int]:
    """'3,1,2' -> [3, 1, 2]: snippet ids in issue order."""
    try:
        ids = [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise typer.BadParameter("give snippet ids separated by commas, e.g. 3,1,2") from None
    if not ids or any(i < 1 for i in ids):
        raise typer.BadParameter("give snippet ids separated by commas, e.g. 3,1,2")
    return ids


def _show(view: CampaignView, what: str, as_json: bool) -> None:
    if as_json:
        output.print_json(view.model_dump(mode="json"))
    else:
        output.say(f"campaign {view.id} ({view.status.value}) {what}: {view.subject}")


@app.command("edit")
def edit(
    campaign_id: int = params.campaign_id("The campaign to edit (not yet sending)."),
    subject: str | None = typer.Option(None, "--subject", help="The new subject line."),
    preheader: str | None = typer.Option(None, "--preheader", help="The new preheader."),
    snippets: str | None = typer.Option(
        None,
        "--snippets",
        metavar="IDS",
        help="The whole snippet list in its new order, e.g. 3,1,2.",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Change the subject, preheader or snippets of a campaign that is not sending yet."""
    from campaigns.editing import edit_campaign, length_hints

    ids = None
    if snippets is not None:
        try:
            ids = _snippet_list(snippets)
        except typer.BadParameter as err:
            output.bad_usage(str(err), param_hint="--snippets")
    cfg = settings()
    with session_for(cfg) as session:
        view = edit_campaign(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            actor=actor(),
            subject=subject,
            preheader=preheader,
            snippet_ids_in_order=ids,
        )
    if subject is None and preheader is None and snippets is None:
        # After the lookup, so an unknown campaign is the one wording everywhere (exit 1).
        output.bad_usage("give --subject, --preheader or --snippets")
    _show(view, "edited", as_json)
    if not as_json:
        for hint in length_hints(view.subject, view.preheader):
            if not hint.ok:
                output.say_err(f"hint: {hint.field}: {hint.message}")


@app.command("duplicate")
def duplicate(
    campaign_id: int = params.campaign_id("The campaign to copy."),
    as_json: bool = output.json_option(),
) -> None:
    """Make a new draft with the same subject, preheader and snippets."""
    from campaigns.editing import duplicate as duplicate_campaign

    cfg = settings()
    with session_for(cfg) as session:
        view = duplicate_campaign(session, settings=cfg, campaign_id=campaign_id, actor=actor())
    _show(view, f"duplicated from campaign {campaign_id}", as_json)


@app.command("reassemble")
def reassemble(
    campaign_id: int = params.campaign_id("The campaign whose snippets to pick again."),
    as_json: bool = output.json_option(),
) -> None:
    """Pick the snippets of a campaign not yet sending again, by the weekly rules."""
    from campaigns.editing import reassemble as reassemble_campaign

    cfg = settings()
    with session_for(cfg) as session:
        view = reassemble_campaign(session, settings=cfg, campaign_id=campaign_id, actor=actor())
    _show(view, "re-assembled", as_json)
