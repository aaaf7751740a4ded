"""``newsletter subscribers``: sign-ups, imports, exports, erasure, lookups and growth."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Column

from cli import output, params
from cli.context import session_for, settings

if TYPE_CHECKING:
    from subscribers.models import SubscriberStatus

app = output.App(help="Subscribers and consent.")

SIGN_UP_OUTCOMES = {
    "created": "confirmation email sent",
    "resent": "confirmation email sent again",
    "returning": "confirmation email sent (had left the list)",
    "throttled": "a confirmation was sent recently; not sent again yet",
    "already_active": "already subscribed; nothing to do",
}


def _status_option(status: str | None) -> SubscriberStatus | None:
    from subscribers.models import SubscriberStatus

    if status is None:
        return None
    try:
        return SubscriberStatus(status.lower())
    except ValueError:
        output.bad_usage(
            f"use one of {', '.join(s.value for s in SubscriberStatus)}", param_hint="--status"
        )


@app.command("growth")
def growth(
    weeks: int = typer.Option(12, "--weeks", min=1, max=520, help="How many weeks back."),
    chart_file: Path | None = typer.Option(
        None,
        "--chart",
        metavar="FILE.png",
        parser=params.output_file,
        help="Also draw the growth chart (PNG).",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Active subscribers, sign-ups and unsubscribes per ISO week."""
    from campaigns.reports.exports import write_growth

    with session_for(settings()) as session:
        result = write_growth(session, weeks=weeks, chart_file=chart_file)
    if as_json:
        output.print_json(result.to_dict())
        return
    output.print_table(
        (
            "Week",
            "Starts",
            *(Column(n, justify="right") for n in ("Active", "Sign-ups", "Unsubscribes")),
        ),
        (
            (g.week, g.start.isoformat(), f"{g.active:,}", f"{g.signups:,}", f"{g.unsubscribes:,}")
            for g in result.weeks
        ),
        title="List growth per week",
    )
    if result.chart is not None:
        output.say(f"wrote {result.chart}")


@app.command("add")
def add(
    email: str = typer.Argument(
        ...,
        parser=params.parse_email,
        help="The address to sign up; a confirmation email goes there.",
    ),
    name: str | None = typer.Option(None, "--name", help="First name (optional)."),
    as_json: bool = output.json_option(),
) -> None:
    """Start double opt-in for EMAIL: pending until the confirmation link is clicked."""
    from campaigns.delivery.providers.factory import make_provider
    from subscribers.models import ConsentSource, SubscriberPublic
    from subscribers.signup import sign_up

    cfg = settings()
    with session_for(cfg) as session, make_provider(cfg) as mailer:
        result = sign_up(
            session, settings=cfg, mailer=mailer, email=email, name=name, source=ConsentSource.CLI
        )
        data = {
            **SubscriberPublic.model_validate(result.subscriber).model_dump(mode="json"),
            "outcome": result.outcome.value,
            "confirmation_sent": result.confirmation_sent,
        }
    if as_json:
        output.print_json(data)
        return
    what = SIGN_UP_OUTCOMES[data["outcome"]]
    output.say(f"{data['email']} (subscriber {data['id']}, {data['status']}): {what}")


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ...,
        metavar="FILE.csv",
        parser=params.input_file,
        help="The CSV to import: columns email, name; optional consented_at, source, ip.",
    ),
    no_confirm_mail: bool = typer.Option(
        False, "--no-confirm-mail", help="Rows without consent proof stay pending, unmailed."
    ),
    as_json: bool = output.json_option("Print only the JSON report."),
) -> None:
    """Import subscribers; rows with consent proof become active, others pending."""
    from campaigns.delivery.providers.factory import make_provider
    from subscribers.csv_io import import_csv_file

    cfg = settings()
    with ExitStack() as stack:
        session = stack.enter_context(session_for(cfg))
        mailer = None if no_confirm_mail else stack.enter_context(make_provider(cfg))
        bar = stack.enter_context(output.progress())
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
        output.print_json(report.as_dict())
    else:
        sent = output.plural(report.confirmations_sent, "confirmation email")
        output.say(
            f"{output.plural(report.rows, 'row')}: {report.active} active (with consent proof), "
            f"{report.pending} pending ({sent} sent), {report.unchanged} already on the list, "
            f"{report.suppressed} suppressed, {len(report.problems)} bad"
        )
        for problem in report.problems:
            output.say(f"{file}:{problem.line}: {problem.reason}")
    if report.problems:
        bad = output.plural(len(report.problems), "row")
        output.fail(
            f"{bad} of {file} had problems (listed in the report); the rest of the file "
            "was processed"
        )


@app.command("export")
def export(
    file: Path | None = typer.Argument(
        None,
        metavar="FILE",
        parser=params.output_file,
        help="Where to write the export; default: standard output.",
    ),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    status: str | None = typer.Option(None, "--status", help="Only this status."),
) -> None:
    """Every subscriber with the full consent history (CSV or JSON)."""
    from subscribers.export import export_subscribers

    if fmt not in ("csv", "json"):
        output.bad_usage("use csv or json", param_hint="--format")
    kind: Literal["csv", "json"] = "csv" if fmt == "csv" else "json"
    wanted = _status_option(status)
    with session_for(settings()) as session:
        text = export_subscribers(session, fmt=kind, status=wanted)
    if file is None:
        output.write(text)
        return
    file.write_text(text, encoding="utf-8", newline="")
    output.say_err(f"wrote {file}")


@app.command("erase")
def erase(
    email: str = typer.Argument(..., help="The address to erase (GDPR)."),
    as_json: bool = output.json_option(),
) -> None:
    """Delete the person's data; only a hash stays, so they are never mailed again."""
    from campaigns.tracking.erasure import erase_person

    with session_for(settings()) as session:
        result, scrubbed = erase_person(session, email=email)
    if as_json:
        output.print_json(
            {
                "subscriber_id": result.subscriber_id,
                "email_hash": result.email_hash,
                "events_deleted": result.events_deleted,
                "provider_events_scrubbed": scrubbed,
            }
        )
        return
    who = f"subscriber {result.subscriber_id}" if result.subscriber_id else "the address"
    events = output.plural(result.events_deleted, "history event")
    provider_events = output.plural(scrubbed, "provider event")
    output.say(
        f"erased {who}, {events} and the personal fields of {provider_events}; the address "
        f"stays suppressed as sha256 {result.email_hash}"
    )


@app.command("list")
def list_(
    status: str | None = typer.Option(None, "--status", help="Only this status."),
    as_json: bool = output.json_option(),
) -> None:
    """Subscribers, oldest first."""
    from subscribers.directory import list_subscribers

    wanted = _status_option(status)
    with session_for(settings()) as session:
        rows = [s.model_dump(mode="json") for s in list_subscribers(session, status=wanted)]
    if as_json:
        output.print_json(rows)
        return
    output.print_table(
        ("id", "email", "name", "status", "source", "created", "topics"),
        (
            (
                str(row["id"]),
                row["email"],
                row["name"] or "",
                row["status"],
                row["source"],
                row["created_at"][:10],
                " ".join(row["topics"]),
            )
            for row in rows
        ),
    )


@app.command("show")
def show(
    email: str = typer.Argument(..., help="The address to look up."),
    as_json: bool = output.json_option(),
) -> None:
    """One subscriber with the consent history and suppression."""
    from subscribers.directory import subscriber_record

    with session_for(settings()) as session:
        data = subscriber_record(session, email=email).model_dump(mode="json")
    if as_json:
        output.print_json(data)
        return
    output.say(f"subscriber {data['id']}: {data['email']} ({data['status']})")
    if data["suppressed"]:
        output.say(f"suppressed: {data['suppressed']}")
    zone = data["timezone"] or "none (the list's)"
    output.say(f"time zone: {zone}")
    output.print_table(
        ("at", "change", "reason", "source", "ip", "consent version"),
        (
            (
                e["at"][:19],
                f"{e['from_status'] or '-'} -> {e['to_status']}",
                e["reason"],
                e["source"],
                e["ip"] or "",
                e["consent_version"] or "",
            )
            for e in data["history"]
        ),
    )


@app.command("expire-pending")
def expire_pending(as_json: bool = output.json_option()) -> None:
    """Remove sign-ups left unconfirmed for NEWSLETTER_PENDING_EXPIRY_DAYS."""
    from subscribers.housekeeping import expire_pending as expire

    cfg = settings()
    with session_for(cfg) as session:
        count = expire(session, settings=cfg)
    if as_json:
        output.print_json({"expired": count})
    else:
        output.say(f"{output.plural(count, 'unconfirmed sign-up')} expired")
