"""``newsletter campaigns``: build, check, schedule, send and report on campaigns."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Column

from cli import campaign_content, output, params, queued_send
from cli import local_time as local_time_cli
from cli.context import actor, session_for, settings
from cli.subject_tests import resend_line, variant_lines

if TYPE_CHECKING:
    from campaigns.delivery.throttle import SendReport
    from campaigns.models import CampaignStatus
    from campaigns.views import CampaignView
    from newsletter.settings import Settings

app = output.App(help="Weekly issues and other campaigns.")


def _parse_status(status: str | None) -> CampaignStatus | None:
    from campaigns.models import CampaignStatus

    try:
        return CampaignStatus(status) if status else None
    except ValueError:
        choices = ", ".join(s.value for s in CampaignStatus)
        output.bad_usage(f"{status!r} is not one of {choices}", param_hint="--status")


# ---------------------------------------------------------------- delivery


def _send_summary(campaign_id: int, report: SendReport) -> None:
    output.say(
        f"campaign {campaign_id}: {report.status}; sent {report.sent}, skipped "
        f"{report.skipped}, failed {report.failed}, still queued {report.queued} "
        f"in {report.seconds:.1f} s ({report.rate:,.0f}/s)"
        + (f"; bounced {report.bounced}" if report.bounced else "")
        + (f"; deferred {report.deferred}, tried again later" if report.deferred else "")
    )
    if report.stopped:
        output.say_err(f"stopped: {report.stopped}")


@app.command("send")
def send(
    campaign_id: int = params.campaign_id("The campaign to send, or to go on sending."),
    as_json: bool = output.json_option("Print only the JSON report."),
    wait: bool = typer.Option(
        False, "--wait", help="NEWSLETTER_SENDER=queue: follow the workers to the end."
    ),
) -> None:
    """Send a campaign now: queue its audience once, then deliver every queued recipient
    (with NEWSLETTER_SENDER=queue, hand it to `newsletter worker` processes)."""
    cfg = settings()
    if cfg.sender == "queue":
        followed = queued_send.send_queued(cfg, campaign_id, wait=wait, as_json=as_json)
        if followed is None:
            return
        report = followed
    else:
        report = _send_inline(cfg, campaign_id, as_json=as_json)
    if as_json:
        output.print_json(report.as_dict())
    else:
        _send_summary(campaign_id, report)
    if report.status == "failed":
        output.fail()


def _send_inline(cfg: Settings, campaign_id: int, *, as_json: bool) -> SendReport:
    from campaigns.delivery.sending import send_campaign

    bar = output.send_progress(campaign_id, status="starting", shown=not as_json)
    with session_for(cfg) as session, bar as show:
        return send_campaign(
            session, settings=cfg, campaign_id=campaign_id, on_progress=show, actor="cli"
        )


@app.command("test-send")
def test_send(
    campaign_id: int = params.campaign_id("The campaign a test copy is made of."),
    to: str = typer.Option(
        ..., "--to", metavar="EMAIL", parser=params.parse_email, help="Where the test copy goes."
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Send one copy marked as a test to --to; records nothing."""
    from campaigns.delivery.sending import test_send

    cfg = settings()
    with session_for(cfg) as session:
        message_id = test_send(session, settings=cfg, campaign_id=campaign_id, to_email=to)
    if as_json:
        output.print_json({"campaign_id": campaign_id, "to": to, "message_id": message_id})
    else:
        output.say(f"test copy of campaign {campaign_id} sent to {to} ({message_id})")


# ---------------------------------------------------------------- content
# In cli/campaign_content.py (this module stays short); registered here to keep the order.

app.command("assemble")(campaign_content.assemble)
app.command("preview")(campaign_content.preview)
app.command("preflight")(campaign_content.preflight)


# ---------------------------------------------------------------- reports


@app.command("report")
def report(
    campaign_id: int = params.campaign_id("The campaign to report on."),
    csv_file: Path | None = typer.Option(
        None,
        "--csv",
        metavar="FILE",
        parser=params.output_file,
        help="Also write the figures as CSV.",
    ),
    chart_file: Path | None = typer.Option(
        None,
        "--chart",
        metavar="FILE.png",
        parser=params.output_file,
        help="Also draw deliveries and engagement (PNG).",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """How a campaign did: deliveries, bounces, complaints, opens and clicks, with rates."""
    from campaigns.reports.exports import write_campaign_report

    cfg = settings()
    with session_for(cfg) as session:
        result = write_campaign_report(
            session, campaign_id=campaign_id, csv_file=csv_file, chart_file=chart_file, settings=cfg
        )
    if as_json:
        output.print_json(result.to_dict())
        return
    figures = result.report
    output.print_table(
        (
            "Figure",
            Column("Count", justify="right"),
            Column("Rate", justify="right"),
            Column("of", style="dim"),
        ),
        (
            (f.label, f"{f.count:,}", "" if f.rate is None else f"{f.rate:.2%}", f.of or "")
            for f in figures.figures
        ),
        title=f"Campaign {campaign_id} ({figures.status}): {figures.subject}",
    )
    for line in variant_lines(figures.subject_test):
        output.say(line)
    for warning in figures.warnings:
        output.say(f"warning: {warning}", style="bold red")
    for written in (result.csv, result.chart):
        if written is not None:
            output.say(f"wrote {written}")


# ---------------------------------------------------------------- workflow

REASON_HELP = "Why; kept in the campaign's log."


def _campaign_line(cid: object, status: str, week: str, subject: str) -> str:
    return f"{cid:>5}  {status:<9}  {week:<8}  {subject}"


def _campaign_row(c: CampaignView) -> str:
    when = f"  at {c.scheduled_at_local}" if c.scheduled_at_local else ""
    return _campaign_line(c.id, c.status, c.week or "-", c.subject + when)


def _campaign_change(data: CampaignView, as_json: bool) -> None:
    if as_json:
        output.print_json(data.model_dump(mode="json"))
        return
    when = f" for {data.scheduled_at_local}" if data.status == "scheduled" else ""
    output.say(f"campaign {data.id} is {data.status}{when}")


@app.command("list")
def list_(
    status: str | None = typer.Option(None, "--status", help="Only campaigns in this state."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = output.json_option(),
) -> None:
    """Campaigns, newest first; times in the newsletter's time zone."""
    from campaigns import actions

    wanted = _parse_status(status)
    cfg = settings()
    with session_for(cfg) as session:
        rows = actions.list_campaigns(session, settings=cfg, status=wanted, limit=limit)
    if as_json:
        output.print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        output.say("no campaigns")
        return
    output.say(_campaign_line("id", "status", "week", "subject"))
    for row in rows:
        output.say(_campaign_row(row))


@app.command("show")
def show(
    campaign_id: int = params.campaign_id("The campaign to show."),
    as_json: bool = output.json_option(),
) -> None:
    """A campaign with its delivery progress (queued / sent / skipped / failed) and log."""
    from campaigns import actions

    cfg = settings()
    with session_for(cfg) as session:
        detail = actions.show(session, settings=cfg, campaign_id=campaign_id)
    if as_json:
        output.print_json(detail.model_dump(mode="json"))
        return
    p = detail.progress
    output.say(f"campaign {detail.id} ({detail.status}): {detail.subject}")
    output.say(f"  status:    {detail.status}")
    output.say(f"  week:      {detail.week or '-'}")
    output.say(f"  scheduled: {detail.scheduled_at_local or '-'}")
    output.say(
        f"  progress:  queued {p.queued}, sent {p.sent}, skipped {p.skipped}, "
        f"failed {p.failed}"
        + (f", deferred {p.deferred}" if p.deferred else "")
        + f" (of {p.total})"
    )
    if detail.error:
        output.say(f"  error:     {detail.error}")
    for line in variant_lines(detail.subject_test) + resend_line(detail.resend):
        output.say(line)
    local_time_cli.say_waves(detail)
    for entry in detail.log:
        output.say(
            f"  {entry.at:%Y-%m-%d %H:%M}Z  {entry.from_status or '-'} -> "
            f"{entry.to_status}  by {entry.actor}: {entry.reason}"
        )


@app.command("schedule")
def schedule(
    campaign_id: int = params.campaign_id("The campaign to schedule."),
    at: datetime | None = typer.Option(
        None,
        "--at",
        metavar="ISO_DATETIME",
        parser=params.parse_when,
        help="When to send; without an offset, in NEWSLETTER_TIMEZONE.",
    ),
    local_time: str | None = local_time_cli.local_time_option(),
    late: str = local_time_cli.late_option(),
    on: date | None = local_time_cli.on_option(),
    reason: str = typer.Option("", "--reason", help=REASON_HELP),
    as_json: bool = output.json_option(),
) -> None:
    """Queue a draft or paused campaign (or move a scheduled one) for --at, or for
    --local-time in each reader's zone."""
    from campaigns import actions, weekly_plan

    if (at is None) == (local_time is None):
        output.bad_usage("give either --at or --local-time", param_hint="'--at'")
    if local_time is not None:
        return local_time_cli.schedule_local(
            campaign_id, local_time=local_time, late=late, on=on, as_json=as_json
        )
    assert at is not None
    cfg = settings()
    when = weekly_plan.local_to_utc(at, cfg)
    with session_for(cfg) as session:
        data = actions.schedule(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            at_utc=when,
            actor=actor(),
            reason=reason,
        )
    _campaign_change(data, as_json)


def _change_command(name: str, doc: str) -> None:
    """Add ``campaigns NAME ID [--reason]``, which calls ``campaigns.actions.NAME``."""

    def command(
        campaign_id: int = params.campaign_id(f"The campaign to {name}."),
        reason: str = typer.Option("", "--reason", help=REASON_HELP),
        as_json: bool = output.json_option(),
    ) -> None:
        from campaigns import actions

        cfg = settings()
        with session_for(cfg) as session:
            data = getattr(actions, name)(
                session, settings=cfg, campaign_id=campaign_id, actor=actor(), reason=reason
            )
        _campaign_change(data, as_json)

    command.__doc__ = doc
    app.command(name)(command)


_change_command("pause", "Hold a scheduled or sending campaign (sending stops between batches).")
_change_command("resume", "Resume a paused campaign.")
_change_command("cancel", "Cancel a campaign for good.")


@app.command("track")
def track(
    campaign_id: int = params.campaign_id("The campaign to switch tracking for."),
    on: bool = typer.Option(..., "--on/--off", help="Our click and open tracking links."),
    as_json: bool = output.json_option(),
) -> None:
    """Switch our click and open tracking for one campaign (before it is sent)."""
    from campaigns import actions

    cfg = settings()
    with session_for(cfg) as session:
        data = actions.track(session, settings=cfg, campaign_id=campaign_id, on=on, actor=actor())
    if as_json:
        output.print_json(data.model_dump(mode="json"))
    else:
        output.say(f"campaign {data.id} ({data.status}): tracking {'on' if on else 'off'}")
