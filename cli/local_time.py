"""``campaigns schedule ID --local-time HH:MM``: the local-time half of the command (issue 16).

Kept apart from cli/campaigns.py so that module stays short; the room function is
``campaigns.actions.schedule_local``, and the waves come back with the campaign.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import typer

from cli import output, params
from cli.context import actor, session_for, settings

if TYPE_CHECKING:
    from campaigns.views import CampaignDetail

LATE_CHOICES = ("now", "next-day")


def local_time_option() -> Any:
    return typer.Option(
        None,
        "--local-time",
        metavar="HH:MM",
        help="Send at this wall time in each reader's time zone (readers without one: "
        "NEWSLETTER_TIMEZONE), one wave per distinct UTC instant. Instead of --at.",
    )


def late_option() -> Any:
    return typer.Option(
        "next-day",
        "--late",
        metavar="now|next-day",
        help="With --local-time, for zones whose hour has already passed: send to them "
        "at once, or at that hour on their next day.",
    )


def on_option() -> Any:
    return typer.Option(
        None,
        "--on",
        metavar="DATE",
        parser=params.parse_day,
        help="With --local-time, the date in each reader's calendar (default: their today).",
    )


def schedule_local(
    campaign_id: int, *, local_time: str, late: str, on: date | None, as_json: bool
) -> None:
    """Plan the waves and print the campaign with them."""
    from campaigns import actions

    if late not in LATE_CHOICES:
        output.bad_usage(f"{late!r} is not one of: now, next-day", param_hint="'--late'")
    cfg = settings()
    with session_for(cfg) as session:
        detail = actions.schedule_local(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            local_time=local_time,
            late=late,
            on=on,
            actor=actor(),
        )
    if as_json:
        output.print_json(detail.model_dump(mode="json"))
        return
    waves = output.plural(len(detail.waves), "wave")
    output.say(f"campaign {detail.id} is {detail.status}, in {waves}:")
    say_waves(detail)


def say_waves(detail: CampaignDetail) -> None:
    """One line per wave: UTC instant, status, readers, zones (and lateness)."""
    for wave in detail.waves:
        late = f" (late: {wave.late})" if wave.late else ""
        output.say(
            f"  {wave.release_at:%Y-%m-%d %H:%M}Z  {wave.status:<8}  "
            f"{output.plural(wave.recipients, 'reader')} at {wave.local_time}{late}: "
            + ", ".join(wave.zones)
        )
