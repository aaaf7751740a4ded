"""The door for marketers and ops: the ``newsletter`` command.

Commands parse arguments, call a room and format its answer; no logic lives here.
Conventions: ``--json`` prints only JSON; exit 0 on success, 1 on an expected error
(one line on stderr), 2 on wrong usage; progress bars only on a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import db
from newsletter.errors import NewsletterError
from newsletter.settings import Settings, load_settings

app = typer.Typer(
    help="Run the weekly newsletter.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
snippets_app = typer.Typer(help="The snippet library.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Subscribers and consent.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Weekly issues and other campaigns.", no_args_is_help=True)
scheduler_app = typer.Typer(help="The scheduler service.", no_args_is_help=True)
api_tokens_app = typer.Typer(help="Bearer tokens for the HTTP API.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(snippets_app, name="snippets")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(api_tokens_app, name="api-tokens")

out = Console()
err_console = Console(stderr=True)


# ---------------------------------------------------------------- shared wiring


def settings() -> Settings:
    return load_settings()


def engine_for(cfg: Settings, *, migrate: bool | None = None) -> Engine:
    """The engine; an embedded SQLite database is migrated on first use."""
    engine = db.get_engine(cfg.database_url)
    if migrate if migrate is not None else cfg.is_sqlite:
        db.upgrade(engine)
    else:
        db.check_connection(engine)
    return engine


@contextmanager
def session_for(cfg: Settings) -> Iterator[Session]:
    with db.session_scope(engine_for(cfg)) as session:
        yield session


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


def progress() -> Progress:
    """A rich progress bar that stays quiet when stdout is not a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
        transient=False,
    )


# ---------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    cfg = settings()
    engine = engine_for(cfg, migrate=False)
    db.upgrade(engine, revision)
    out.print(f"database at revision {db.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision."""
    cfg = settings()
    out.print(db.current_revision(engine_for(cfg, migrate=False)) or "empty")


# ---- campaigns: delivery


@campaigns_app.command("send")
def campaigns_send(
    campaign_id: int = typer.Argument(..., help="The campaign to send (or resume)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON report."),
) -> None:
    """Send a campaign now: queue its audience once, then deliver every queued recipient."""
    from campaigns.delivery.sending import SendProgress, send_campaign

    cfg = settings()
    with session_for(cfg) as session, progress() as bar:
        task = bar.add_task(f"campaign {campaign_id}", total=None, status="starting")

        def show(p: SendProgress) -> None:
            bar.update(
                task,
                total=p.total,
                completed=p.done,
                status=f"sent {p.sent}  skipped {p.skipped}  failed {p.failed}  {p.rate:,.0f}/s",
            )

        report = send_campaign(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            on_progress=None if as_json else show,
            actor="cli",
        )
    if as_json:
        print_json(report.as_dict())
        if report.status == "failed":
            raise typer.Exit(1)
        return
    out.print(
        f"campaign {campaign_id}: {report.status}; sent {report.sent}, skipped "
        f"{report.skipped}, failed {report.failed}, still queued {report.queued} "
        f"in {report.seconds:.1f} s ({report.rate:,.0f}/s)"
    )
    if report.stopped:
        err_console.print(f"stopped: {report.stopped}", markup=False, highlight=False)
    if report.status == "failed":
        raise typer.Exit(1)


@campaigns_app.command("test-send")
def campaigns_test_send(
    campaign_id: int = typer.Argument(..., help="The campaign to preview."),
    to: str = typer.Option(..., "--to", help="Where the test copy goes."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Send one copy marked as a test to --to; records nothing."""
    from campaigns.delivery.sending import test_send

    cfg = settings()
    with session_for(cfg) as session:
        message_id = test_send(session, settings=cfg, campaign_id=campaign_id, to_email=to)
    if as_json:
        print_json({"campaign_id": campaign_id, "to": to, "message_id": message_id})
    else:
        out.print(f"test copy of campaign {campaign_id} sent to {to} ({message_id})")


# ---- snippets


@snippets_app.command("import")
def snippets_import(
    source: str = typer.Argument(
        ..., metavar="PATH_OR_URL", help="A Markdown file or folder, or an RSS/Atom file or URL."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Import snippets; re-importing updates them, bad entries are reported and skipped."""
    from campaigns.content.snippet_import import import_snippets

    cfg = settings()
    with session_for(cfg) as session:
        report = import_snippets(session, settings=cfg, source=source)
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(
            f"{report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.problems)} skipped",
            highlight=False,
            soft_wrap=True,
        )
        for problem in report.problems:
            out.print(f"skipped: {problem}", markup=False, highlight=False, soft_wrap=True)
    # Like subscribers import: the good entries are kept, bad ones still fail the run.
    if report.problems:
        bad = len(report.problems)
        err_console.print(
            f"error: {bad} entr{'ies' if bad > 1 else 'y'} of {source} skipped "
            "(listed above); the rest were imported",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


@snippets_app.command("list")
def snippets_list(as_json: bool = typer.Option(False, "--json", help="Print only JSON.")) -> None:
    """Every snippet, freshest first, and the campaigns that used it."""
    from rich.table import Table

    from campaigns.content.snippets import list_snippets

    cfg = settings()
    with session_for(cfg) as session:
        listings = [item.to_dict() for item in list_snippets(session)]
    if as_json:
        print_json(listings)
        return
    table = Table("id", "published", "category", "title", "used in")
    for item in listings:
        used = ", ".join(
            f"#{c['id']} {c['week'] or ''} {c['status']}{' (resent)' if c['resent'] else ''}"
            for c in item["campaigns"]
        )
        table.add_row(
            str(item["id"]),
            item["published_at"][:10],
            item["category"],
            ("* " if item["pinned"] else "") + item["title"],
            used or "-",
        )
    out.print(table)


@snippets_app.command("add")
def snippets_add(
    title: str = typer.Option(..., "--title"),
    summary: str = typer.Option(..., "--summary", help="Plain text; trimmed to the limit."),
    url: str = typer.Option(..., "--url", help="The article's canonical http(s) URL."),
    image_url: str | None = typer.Option(None, "--image-url"),
    image_alt: str | None = typer.Option(None, "--image-alt"),
    category: str = typer.Option("general", "--category"),
    tags: list[str] = typer.Option([], "--tag", help="Repeat for several tags."),
    author: str | None = typer.Option(None, "--author"),
    published: str | None = typer.Option(None, "--published", help="ISO date; default now."),
    pinned: bool = typer.Option(False, "--pinned", help="Feature it first in the next issue."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Add one snippet by hand."""
    from campaigns.content.snippets import add_snippet, parse_published
    from campaigns.models import SnippetPublic

    cfg = settings()
    data = {
        "title": title,
        "summary": summary,
        "url": url,
        "image_url": image_url,
        "image_alt": image_alt,
        "category": category,
        "tags": tags,
        "author": author,
        "published_at": parse_published(published),
        "source": "manual",
        "pinned": pinned,
    }
    with session_for(cfg) as session:
        snippet = add_snippet(session, settings=cfg, data=data)
        public = SnippetPublic.model_validate(snippet).model_dump(mode="json")
    if as_json:
        print_json(public)
        return
    out.print(
        f"snippet {public['id']} added: {public['title']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


# ---- campaigns: content


def _parse_day(value: str | None) -> Any:
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from err


@campaigns_app.command("assemble")
def campaigns_assemble(
    for_date: str | None = typer.Option(
        None, "--for", metavar="DATE", help="Any day of the issue's ISO week; default today."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Build the weekly issue (or show the one already built for that week)."""
    from campaigns.content.assembly import assemble_week

    day = _parse_day(for_date)
    cfg = settings()
    with session_for(cfg) as session:
        issue = assemble_week(session, settings=cfg, day=day, actor="cli")
        data = issue.to_dict()
    if as_json:
        print_json(data)
        return
    state = "assembled" if data["created"] else "already assembled"
    out.print(
        f"campaign {data['id']} for {data['week']} {state}: {data['subject']}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for position, snippet in enumerate(data["snippets"], start=1):
        mark = " (resent)" if snippet["resent"] else ""
        out.print(
            f"  {position}. [{snippet['id']}] {snippet['title']}{mark}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@campaigns_app.command("preview")
def campaigns_preview(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the preview files."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Write email.html/.txt/.eml and desktop/mobile screenshots of a campaign."""
    from campaigns.actions import get_campaign
    from campaigns.content.preview import write_preview

    cfg = settings()
    with session_for(cfg) as session:
        campaign = get_campaign(session, campaign_id=campaign_id)
        result = write_preview(session, settings=cfg, campaign=campaign, out_dir=out_dir)
    if as_json:
        print_json(result.to_dict())
        return
    for file in result.files:
        out.print(f"wrote {file}", markup=False, highlight=False, soft_wrap=True)
    for note in result.notes:
        out.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


@campaigns_app.command("preflight")
def campaigns_preflight(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Check a campaign before sending; exit 1 when an error would block the send."""
    from campaigns.actions import get_campaign
    from campaigns.content.preflight import preflight

    cfg = settings()
    with session_for(cfg) as session:
        report = preflight(
            session, settings=cfg, campaign=get_campaign(session, campaign_id=campaign_id)
        )
    if as_json:
        print_json(report.to_dict())
    else:
        for finding in report.findings:
            out.print(str(finding), markup=False, highlight=False, soft_wrap=True)
        out.print(
            "preflight: ok"
            if report.ok
            else f"preflight: {len(report.errors)} error(s) block the send",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not report.ok:
        raise typer.Exit(1)


# ---- campaigns: reports


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.2%}"


@campaigns_app.command("report")
def campaigns_report(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    csv_file: Path | None = typer.Option(
        None, "--csv", metavar="FILE", help="Also write the figures as CSV."
    ),
    chart_file: Path | None = typer.Option(
        None, "--chart", metavar="FILE.png", help="Also draw deliveries and engagement."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """How a campaign did: deliveries, bounces, complaints, opens and clicks, with rates."""
    from rich.table import Table

    from campaigns.reports.charts import campaign_chart
    from campaigns.reports.figures import campaign_report, campaign_timeline, report_csv

    cfg = settings()
    with session_for(cfg) as session:
        report = campaign_report(session, campaign_id=campaign_id)
        timeline = campaign_timeline(session, campaign_id=campaign_id) if chart_file else None
    data: dict[str, Any] = report.to_dict()
    if csv_file is not None:
        csv_file.parent.mkdir(parents=True, exist_ok=True)
        csv_file.write_text(report_csv(report), encoding="utf-8")
        data["csv"] = str(csv_file)
    if chart_file is not None and timeline is not None:
        title = f"Campaign {campaign_id}: {report.subject}"
        data["chart"] = str(campaign_chart(timeline, chart_file, title=title))
    if as_json:
        print_json(data)
        return
    table = Table(title=f"Campaign {campaign_id}: {report.subject}", title_justify="left")
    table.add_column("Figure")
    table.add_column("Count", justify="right")
    table.add_column("Rate", justify="right")
    table.add_column("of", style="dim")
    for figure in report.figures:
        table.add_row(figure.label, f"{figure.count:,}", _percent(figure.rate), figure.of or "")
    out.print(table)
    for warning in report.warnings:
        out.print(f"warning: {warning}", style="bold red", markup=False, highlight=False)
    for key in ("csv", "chart"):
        if key in data:
            out.print(f"wrote {data[key]}", markup=False, highlight=False)


@subscribers_app.command("growth")
def subscribers_growth(
    weeks: int = typer.Option(12, "--weeks", min=1, max=520, help="How many weeks back."),
    chart_file: Path | None = typer.Option(
        None, "--chart", metavar="FILE.png", help="Also draw the growth chart."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Active subscribers, sign-ups and unsubscribes per ISO week."""
    from rich.table import Table

    from campaigns.reports.charts import growth_chart
    from campaigns.reports.figures import growth_dicts, list_growth

    cfg = settings()
    with session_for(cfg) as session:
        growth = list_growth(session, weeks=weeks)
    chart = str(growth_chart(growth, chart_file)) if chart_file is not None else None
    if as_json:
        print_json({"weeks": growth_dicts(growth), **({"chart": chart} if chart else {})})
        return
    table = Table(title="List growth per week", title_justify="left")
    for name in ("Week", "Starts", "Active", "Sign-ups", "Unsubscribes"):
        table.add_column(name, justify="left" if name in ("Week", "Starts") else "right")
    for g in growth:
        table.add_row(
            g.week, g.start.isoformat(), f"{g.active:,}", f"{g.signups:,}", f"{g.unsubscribes:,}"
        )
    out.print(table)
    if chart:
        out.print(f"wrote {chart}", markup=False, highlight=False)


# ---- subscribers


def _subscriber_json(subscriber: Any) -> dict[str, Any]:
    from subscribers.models import SubscriberPublic

    return SubscriberPublic.model_validate(subscriber).model_dump(mode="json")


@subscribers_app.command("add")
def subscribers_add(
    email: str = typer.Argument(..., help="The address; a confirmation email goes there."),
    name: str | None = typer.Option(None, "--name", help="First name (optional)."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Start double opt-in for EMAIL: pending until the confirmation link is clicked."""
    from campaigns.delivery.providers.factory import make_provider
    from subscribers.models import ConsentSource
    from subscribers.signup import sign_up

    cfg = settings()
    with session_for(cfg) as session, make_provider(cfg) as mailer:
        result = sign_up(
            session, settings=cfg, mailer=mailer, email=email, name=name, source=ConsentSource.CLI
        )
        data = {
            **_subscriber_json(result.subscriber),
            "outcome": result.outcome.value,
            "confirmation_sent": result.confirmation_sent,
        }
    if as_json:
        print_json(data)
        return
    what = {
        "created": "confirmation email sent",
        "resent": "confirmation email sent again",
        "returning": "confirmation email sent (had left the list)",
        "throttled": "a confirmation was sent recently; not sent again yet",
        "already_active": "already subscribed; nothing to do",
    }[data["outcome"]]
    out.print(
        f"{data['email']} (subscriber {data['id']}, {data['status']}): {what}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@subscribers_app.command("import")
def subscribers_import(
    file: Path = typer.Argument(
        ..., metavar="FILE.csv", help="Columns email, name; optional consented_at, source, ip."
    ),
    no_confirm_mail: bool = typer.Option(
        False, "--no-confirm-mail", help="Rows without consent proof stay pending, unmailed."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON report."),
) -> None:
    """Import subscribers; rows with consent proof become active, others pending."""
    from contextlib import ExitStack

    from campaigns.delivery.providers.factory import make_provider
    from subscribers.csv_io import import_csv_file

    cfg = settings()
    with ExitStack() as stack:
        session = stack.enter_context(session_for(cfg))
        mailer = None if no_confirm_mail else stack.enter_context(make_provider(cfg))
        bar = stack.enter_context(progress())
        task = bar.add_task(f"importing {file.name}", total=None, status="")

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, status="")

        report = import_csv_file(
            session,
            settings=cfg,
            mailer=mailer,
            path=file,
            send_confirmations=not no_confirm_mail,
            on_row=None if as_json else show,
        )
    # The good rows are committed above; bad rows still make the run fail (exit 1) so a
    # script notices them. The report (JSON or text) is on stdout, one line on stderr.
    if as_json:
        print_json(report.as_dict())
    else:
        out.print(
            f"{report.rows} rows: {report.active} active (with consent proof), {report.pending} "
            f"pending ({report.confirmations_sent} confirmation emails sent), {report.unchanged} "
            f"already on the list, {report.suppressed} suppressed, {len(report.problems)} bad",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for problem in report.problems:
            out.print(
                f"{file}:{problem.line}: {problem.reason}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    if report.problems:
        bad = len(report.problems)
        err_console.print(
            f"error: {bad} row{'s' if bad > 1 else ''} of {file} had problems "
            "(listed in the report); the rest of the file was processed",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


@subscribers_app.command("export")
def subscribers_export(
    file: Path | None = typer.Argument(None, help="Where to write; default: standard output."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    status: str | None = typer.Option(None, "--status", help="Only this status."),
) -> None:
    """Every subscriber with the full consent history (CSV or JSON)."""
    from subscribers.export import export_subscribers

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("use csv or json", param_hint="--format")
    wanted = _status_option(status)
    cfg = settings()
    with session_for(cfg) as session:
        text = export_subscribers(session, fmt=fmt, status=wanted)  # type: ignore[arg-type]
    if file is None:
        sys.stdout.write(text)
        return
    file.write_text(text, encoding="utf-8", newline="")
    err_console.print(f"wrote {file}", markup=False, highlight=False)


def _status_option(status: str | None) -> Any:
    from subscribers.models import SubscriberStatus

    if status is None:
        return None
    try:
        return SubscriberStatus(status.lower())
    except ValueError as err:
        raise typer.BadParameter(
            f"use one of {', '.join(s.value for s in SubscriberStatus)}", param_hint="--status"
        ) from err


@subscribers_app.command("erase")
def subscribers_erase(
    email: str = typer.Argument(..., help="The address to erase (GDPR)."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Delete the person's data; only a hash stays, so they are never mailed again."""
    from campaigns.tracking.erasure import erase_person

    cfg = settings()
    with session_for(cfg) as session:
        result, scrubbed = erase_person(session, email=email)
    if as_json:
        print_json(
            {
                "subscriber_id": result.subscriber_id,
                "email_hash": result.email_hash,
                "events_deleted": result.events_deleted,
                "provider_events_scrubbed": scrubbed,
            }
        )
        return
    who = f"subscriber {result.subscriber_id}" if result.subscriber_id else "the address"
    out.print(
        f"erased {who}, {result.events_deleted} history events and the personal fields "
        f"of {scrubbed} provider events; the address stays suppressed as sha256 "
        f"{result.email_hash}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@subscribers_app.command("list")
def subscribers_list(
    status: str | None = typer.Option(None, "--status", help="Only this status."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Subscribers, oldest first."""
    from rich.table import Table
    from sqlmodel import col, select

    from subscribers.models import Subscriber

    wanted = _status_option(status)
    cfg = settings()
    with session_for(cfg) as session:
        query = select(Subscriber).order_by(col(Subscriber.id))
        if wanted is not None:
            query = query.where(Subscriber.status == wanted.value)
        rows = [_subscriber_json(s) for s in session.exec(query)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "email", "name", "status", "source", "created", "topics")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["email"],
            row["name"] or "",
            row["status"],
            row["source"],
            row["created_at"][:10],
            " ".join(row["topics"]),
        )
    out.print(table)


@subscribers_app.command("show")
def subscribers_show(
    email: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """One subscriber with the consent history and suppression."""
    from rich.table import Table

    from subscribers import lifecycle
    from subscribers.suppression import find_suppression

    cfg = settings()
    with session_for(cfg) as session:
        subscriber = lifecycle.get_by_email(session, email=email)
        data = _subscriber_json(subscriber)
        suppression = find_suppression(session, email=subscriber.email)
        data["suppressed"] = suppression.reason if suppression else None
        data["history"] = [
            {
                "at": e.at.isoformat(),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "reason": e.reason,
                "source": e.source,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "consent_version": e.consent_version,
            }
            for e in lifecycle.history(session, subscriber_id=subscriber.id or 0)
        ]
    if as_json:
        print_json(data)
        return
    out.print(
        f"subscriber {data['id']}: {data['email']} ({data['status']})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if data["suppressed"]:
        out.print(f"suppressed: {data['suppressed']}", markup=False, highlight=False)
    table = Table("at", "change", "reason", "source", "ip", "consent version")
    for e in data["history"]:
        table.add_row(
            e["at"][:19],
            f"{e['from_status'] or '-'} -> {e['to_status']}",
            e["reason"],
            e["source"],
            e["ip"] or "",
            e["consent_version"] or "",
        )
    out.print(table)


@subscribers_app.command("expire-pending")
def subscribers_expire_pending(
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Remove sign-ups left unconfirmed for NEWSLETTER_PENDING_EXPIRY_DAYS."""
    from subscribers.housekeeping import expire_pending

    cfg = settings()
    with session_for(cfg) as session:
        count = expire_pending(session, settings=cfg)
    if as_json:
        print_json({"expired": count})
    else:
        out.print(f"{count} unconfirmed sign-ups expired")


# ---- serve


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Run the web app: sign-up pages, one-click unsubscribe, webhooks and the API."""
    import uvicorn

    cfg = settings()
    engine_for(cfg)  # fail here, in one line, if the database is unreachable
    uvicorn.run(
        "web:create_app", factory=True, host=host, port=port, workers=workers, proxy_headers=True
    )


# ---- demo


@app.command("demo")
def demo(
    folder: Path = typer.Option(Path("demo-output"), "--dir", help="Folder for the demo's files."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """This week's issue end to end on embedded SQLite and the file outbox."""
    from campaigns.demo import demo_settings, run_demo

    cfg = demo_settings(folder)

    def say(line: str) -> None:
        out.print(line, markup=False, highlight=False, soft_wrap=True)

    summary = run_demo(
        settings=cfg,
        engine=db.get_engine(cfg.database_url),
        out_dir=folder.resolve(),
        step=(lambda _m: None) if as_json else (lambda m: say(f"- {m}")),
    )
    if as_json:
        print_json(summary.to_dict())
        return
    emls = len(list(cfg.outbox_dir.glob("*.eml")))
    again = " (already sent before; nothing sent twice)" if summary.already_sent else ""
    say(f"\nCampaign {summary.campaign_id} ({summary.week}): {summary.subject}")
    say(f"  status: {summary.status}; recipients sent: {summary.recipients}{again}")
    say(f"  outbox: {summary.outbox_dir} ({emls} .eml files)")
    say(f"  preview: {summary.preview_dir / 'email.html'}")
    for note in summary.notes:
        say(f"  note: {note}")


# ---- campaigns: workflow


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:100]
    except (KeyError, OSError):
        return "cli"


def _print_campaign_line(c: Any) -> None:
    when = f"  at {c.scheduled_at_local}" if c.scheduled_at_local else ""
    out.print(
        f"{c.id:>5}  {c.status:<9}  {c.week or '-':<8}  {c.subject}{when}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _campaign_change(data: Any, as_json: bool) -> None:
    if as_json:
        print_json(data.model_dump(mode="json"))
        return
    when = f" for {data.scheduled_at_local}" if data.status == "scheduled" else ""
    out.print(f"campaign {data.id} is {data.status}{when}", markup=False, highlight=False)


@campaigns_app.command("list")
def campaigns_list(
    status: str | None = typer.Option(None, "--status", help="Only campaigns in this state."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Campaigns, newest first; times in the newsletter's time zone."""
    from campaigns import actions
    from campaigns.models import CampaignStatus

    try:
        wanted = CampaignStatus(status) if status else None
    except ValueError as err:
        choices = ", ".join(s.value for s in CampaignStatus)
        raise typer.BadParameter(
            f"{status!r} is not one of {choices}", param_hint="--status"
        ) from err
    cfg = settings()
    with session_for(cfg) as session:
        rows = actions.list_campaigns(session, settings=cfg, status=wanted, limit=limit)
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        out.print("no campaigns")
    for row in rows:
        _print_campaign_line(row)


@campaigns_app.command("show")
def campaigns_show(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """A campaign with its delivery progress (queued / sent / skipped / failed) and log."""
    from campaigns import actions

    cfg = settings()
    with session_for(cfg) as session:
        detail = actions.show(session, settings=cfg, campaign_id=campaign_id)
    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    p = detail.progress
    out.print(
        f"campaign {detail.id}: {detail.subject}", markup=False, highlight=False, soft_wrap=True
    )
    out.print(f"  status:    {detail.status}", markup=False)
    out.print(f"  week:      {detail.week or '-'}", markup=False)
    out.print(f"  scheduled: {detail.scheduled_at_local or '-'}", markup=False)
    out.print(
        f"  progress:  queued {p.queued}, sent {p.sent}, skipped {p.skipped}, "
        f"failed {p.failed} (of {p.total})",
        markup=False,
    )
    if detail.error:
        out.print(f"  error:     {detail.error}", markup=False, highlight=False, soft_wrap=True)
    for entry in detail.log:
        out.print(
            f"  {entry.at:%Y-%m-%d %H:%M}Z  {entry.from_status or '-'} -> "
            f"{entry.to_status}  by {entry.actor}: {entry.reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@campaigns_app.command("schedule")
def campaigns_schedule(
    campaign_id: int = typer.Argument(..., metavar="ID"),
    at: str = typer.Option(
        ...,
        "--at",
        metavar="ISO_DATETIME",
        help="When to send; without an offset, in NEWSLETTER_TIMEZONE.",
    ),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Queue a draft or paused campaign (or move a scheduled one) for --at."""
    from campaigns import actions, weekly_plan

    cfg = settings()
    when = weekly_plan.parse_when(at, cfg)
    with session_for(cfg) as session:
        data = actions.schedule(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            at_utc=when,
            actor=_actor(),
            reason=reason,
        )
    _campaign_change(data, as_json)


def _change_command(name: str, doc: str) -> None:
    def command(
        campaign_id: int = typer.Argument(..., metavar="ID"),
        reason: str = typer.Option("", "--reason", help="Why; kept in the campaign's log."),
        as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
    ) -> None:
        from campaigns import actions

        cfg = settings()
        with session_for(cfg) as session:
            data = getattr(actions, name)(
                session, settings=cfg, campaign_id=campaign_id, actor=_actor(), reason=reason
            )
        _campaign_change(data, as_json)

    command.__doc__ = doc
    campaigns_app.command(name)(command)


_change_command("pause", "Hold a scheduled or sending campaign (sending stops between batches).")
_change_command("resume", "Resume a paused campaign.")
_change_command("cancel", "Cancel a campaign for good.")


# ---- scheduler


@scheduler_app.command("run")
def scheduler_run(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
) -> None:
    """Run the scheduler service in the foreground (JSON-lines logs on stderr)."""
    import scheduler

    raise typer.Exit(scheduler.run(settings(), once=once))


@scheduler_app.command("status")
def scheduler_status(
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """The active instance, and the last and next run of each job."""
    from campaigns import weekly_plan
    from newsletter import job_runs

    cfg = settings()
    report = job_runs.status(engine_for(cfg))
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    out.print(f"active instance: {report.active_instance or 'none'}", markup=False)
    for job in report.jobs:
        last = weekly_plan.format_local(job.last_started_at, cfg) or "never"
        outcome = f" ({job.last_outcome})" if job.last_outcome else ""
        upcoming = weekly_plan.format_local(job.next_run_at, cfg) or "-"
        out.print(f"  {job.job:<16} last {last}{outcome}  next {upcoming}", markup=False)


# ---- api-tokens


@api_tokens_app.command("create")
def api_tokens_create(
    name: str = typer.Argument(..., help="Who or what uses the token, e.g. 'marketing-app'."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Create a bearer token; it is shown once, only its hash is stored."""
    from newsletter import api_tokens

    cfg = settings()
    with session_for(cfg) as session:
        token, plaintext = api_tokens.create(session, name=name)
    if as_json:
        print_json({**token.model_dump(mode="json"), "token": plaintext})
        return
    out.print(
        f"API token {token.name!r} (id {token.id}); copy it now, it is not shown again:",
        markup=False,
        highlight=False,
    )
    sys.stdout.write(plaintext + "\n")


@api_tokens_app.command("list")
def api_tokens_list(
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Tokens by name (never the tokens themselves)."""
    from newsletter import api_tokens

    cfg = settings()
    with session_for(cfg) as session:
        tokens = api_tokens.list_tokens(session)
    if as_json:
        print_json([t.model_dump(mode="json") for t in tokens])
        return
    if not tokens:
        out.print("no API tokens")
    for t in tokens:
        state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}Z" if t.last_used_at else "never used"
        out.print(f"{t.id:>4}  {t.name:<24}  {state:<18}  {used}", markup=False, highlight=False)


@api_tokens_app.command("revoke")
def api_tokens_revoke(
    name: str = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Revoke a token at once; requests with it get 401."""
    from newsletter import api_tokens

    cfg = settings()
    with session_for(cfg) as session:
        token = api_tokens.revoke(session, name=name)
    if as_json:
        print_json(token.model_dump(mode="json"))
        return
    out.print(f"API token {token.name!r} revoked", markup=False, highlight=False)


# ---------------------------------------------------------------- entry point


def main() -> None:
    try:
        app()
    except NewsletterError as err:
        # soft_wrap: the message stays one line, whatever the terminal width.
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
