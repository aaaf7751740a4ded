"""``newsletter bounces``: the bounce mailbox and the recipients SMTP servers put off."""

from __future__ import annotations

from cli import output
from cli.context import session_for, settings

app = output.App(help="Bounces with SMTP: read the bounce mailbox, retry deferred recipients.")


@app.command("fetch")
def fetch(as_json: bool = output.json_option()) -> None:
    """Read the bounce mailbox (NEWSLETTER_BOUNCE_IMAP_URL) once into suppression.

    Hard bounces stop an address at once, soft ones after NEWSLETTER_SOFT_BOUNCE_LIMIT.
    Read bounces move to NEWSLETTER_BOUNCE_PROCESSED_FOLDER; other mail stays.
    """
    from campaigns.tracking.bounces import fetch_bounces

    cfg = settings()
    with session_for(cfg) as session:
        report = fetch_bounces(session, settings=cfg)
    if as_json:
        output.print_json(report.to_dict())
        return
    output.say(
        f"read {output.plural(report.messages, 'message')}: "
        f"{output.plural(report.bounces, 'new bounce')} ({report.hard} hard, {report.soft} soft), "
        f"{report.duplicates} read before, {report.unmatched} about nobody of ours; "
        f"{report.moved} moved to {cfg.bounce_processed_folder}, "
        f"{report.not_bounces} left (not bounces)"
        + (f", {report.unreadable} left unreadable" if report.unreadable else "")
    )


@app.command("retry")
def retry(as_json: bool = output.json_option()) -> None:
    """Send again the deferred recipients whose next try is due (finished campaigns)."""
    from campaigns.delivery.deferred_sends import retry_due

    cfg = settings()
    with session_for(cfg) as session:
        report = retry_due(session, settings=cfg)
    if as_json:
        output.print_json(report.to_dict())
        return
    output.say(
        f"tried {report.tried} deferred in {output.plural(report.campaigns, 'campaign')}: "
        f"sent {report.sent}, bounced {report.bounced}, failed {report.failed}, "
        f"put off again {report.deferred}, skipped {report.skipped}"
    )
    for line in report.errors:
        output.say_err(line)
