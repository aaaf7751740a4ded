"""``newsletter campaigns send`` in queue mode (issue 17): hand over, then maybe follow.

Kept apart from cli/campaigns.py (near its 400 lines); the inline path stays there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cli import output
from cli.context import session_for

if TYPE_CHECKING:
    from campaigns.delivery.send_report import SendReport
    from newsletter.settings import Settings


def send_queued(cfg: Settings, campaign_id: int, *, wait: bool, as_json: bool) -> SendReport | None:
    """Hand the campaign to the workers; with ``wait``, follow the ledger to the end."""
    from campaigns.delivery.workers.handover import follow, hand_over

    with session_for(cfg) as session:
        handed = hand_over(session, settings=cfg, campaign_id=campaign_id, actor="cli")
    line = (
        f"campaign {campaign_id}: {handed.status}; handed to the workers: "
        f"{output.plural(handed.deferred, 'block')} queued, {handed.pending:,} under way, "
        f"{output.plural(handed.queued, 'recipient')} queued"
    )
    if handed.workers == 0 and handed.status == "sending":
        output.say_err("no worker is running: start `newsletter worker` to send it")
    if not wait:
        if as_json:
            output.print_json({"campaign_id": campaign_id, "status": handed.status,
                               "blocks_queued": handed.deferred, "blocks_pending": handed.pending,
                               "queued": handed.queued})  # fmt: skip
        else:
            output.say(line)
        return None
    if not as_json:
        output.say_err(line)
    bar = output.send_progress(campaign_id, status="workers", shown=not as_json)
    with session_for(cfg) as session, bar as show:
        return follow(session, settings=cfg, campaign_id=campaign_id, on_progress=show)
