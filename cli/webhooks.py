"""``newsletter webhooks``: outgoing webhook endpoints (issue 16 point 4): add, list,
enable, remove, log, and deliver what is due (the scheduler does that every few seconds)."""

from __future__ import annotations

import typer

from cli import output, params
from cli.context import actor, engine_for, session_for, settings

app = output.App(help="Outgoing webhooks (Standard Webhooks): endpoints and deliveries.")


@app.command("add")
def add(
    url: str = typer.Argument(..., metavar="URL", help="Where to POST events: an https:// URL."),
    events: list[str] = typer.Option(
        [],
        "--event",
        metavar="NAME",
        help="An event to send (repeat for more); none: all. subscriber.created, "
        "subscriber.confirmed, subscriber.unsubscribed, subscriber.bounced, "
        "subscriber.complained, campaign.sent, campaign.finished.",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Add an endpoint; prints its id and signing secret (shown once here, kept to sign)."""
    from campaigns import outgoing_webhooks

    cfg = settings()
    with session_for(cfg) as session:
        endpoint, secret = outgoing_webhooks.add_endpoint(
            session, settings=cfg, url=url, events=events, actor=actor()
        )
    if as_json:
        output.print_json({**endpoint.model_dump(mode="json"), "secret": secret})
        return
    wanted = ", ".join(endpoint.events) or "all events"
    output.say(f"webhook endpoint {endpoint.id} for {wanted}: {endpoint.url}")
    output.say(f"signing secret (verify with standardwebhooks' Webhook): {secret}")


@app.command("list")
def list_(as_json: bool = output.json_option()) -> None:
    """Endpoints, with their events and whether they are disabled (and why)."""
    from campaigns import outgoing_webhooks

    with session_for(settings()) as session:
        endpoints = outgoing_webhooks.list_endpoints(session)
    if as_json:
        output.print_json([e.model_dump(mode="json") for e in endpoints])
        return
    if not endpoints:
        output.say("no webhook endpoints")
    for e in endpoints:
        state = (
            f"DISABLED {e.disabled_at:%Y-%m-%d %H:%M}Z: {e.disabled_reason}"
            if e.disabled_at
            else (f"failing since {e.failing_since:%Y-%m-%d %H:%M}Z" if e.failing_since else "ok")
        )
        output.say(f"{e.id:>4}  {e.url}  {', '.join(e.events) or 'all events'}  {state}")


@app.command("remove")
def remove(
    endpoint_id: int = typer.Argument(
        ..., metavar="ID", parser=params.parse_id, help="The endpoint to remove (its id)."
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Remove an endpoint, its undelivered messages and its log."""
    from campaigns import outgoing_webhooks

    with session_for(settings()) as session:
        endpoint = outgoing_webhooks.remove_endpoint(
            session, endpoint_id=endpoint_id, actor=actor()
        )
    if as_json:
        output.print_json(endpoint.model_dump(mode="json"))
        return
    output.say(f"webhook endpoint {endpoint.id} removed ({endpoint.url})")


@app.command("enable")
def enable(
    endpoint_id: int = typer.Argument(
        ..., metavar="ID", parser=params.parse_id, help="The disabled endpoint to enable (its id)."
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Enable a disabled endpoint again; what it missed is delivered next."""
    from campaigns import outgoing_webhooks

    with session_for(settings()) as session:
        endpoint = outgoing_webhooks.enable_endpoint(
            session, endpoint_id=endpoint_id, actor=actor()
        )
    if as_json:
        output.print_json(endpoint.model_dump(mode="json"))
        return
    output.say(f"webhook endpoint {endpoint.id} enabled ({endpoint.url})")


@app.command("log")
def log(
    endpoint_id: int = typer.Argument(
        ..., metavar="ID", parser=params.parse_id, help="The endpoint whose log to show (its id)."
    ),
    limit: int = typer.Option(50, min=1, max=1000, help="How many attempts, newest first."),
    as_json: bool = output.json_option(),
) -> None:
    """The endpoint's delivery log: each attempt, its answer and what happens next."""
    from campaigns import outgoing_webhooks

    with session_for(settings()) as session:
        attempts = outgoing_webhooks.delivery_log(session, endpoint_id=endpoint_id, limit=limit)
    if as_json:
        output.print_json([a.model_dump(mode="json") for a in attempts])
        return
    if not attempts:
        output.say(f"no delivery attempts for endpoint {endpoint_id} yet")
    for a in attempts:
        answer = f"HTTP {a.status_code}" if a.status_code is not None else "no answer"
        why = f"  {a.error}" if a.error and a.status_code is None else ""
        output.say(
            f"{a.at:%Y-%m-%d %H:%M:%S}Z  {a.event_type:<24}  {a.msg_id}  {answer:<9}  "
            f"{a.duration_ms:>5} ms  {a.outcome}{why}"
        )


@app.command("deliver")
def deliver(as_json: bool = output.json_option()) -> None:
    """Send every delivery that is due now (retries included), then stop."""
    from campaigns import outgoing_webhooks

    cfg = settings()
    report = outgoing_webhooks.deliver(engine_for(cfg), settings=cfg)
    if as_json:
        output.print_json(
            {
                "delivered": report.delivered,
                "retrying": report.retrying,
                "failed": report.failed,
                "disabled": report.disabled,
            }
        )
        return
    output.say(
        f"delivered {report.delivered}, to retry {report.retrying}, failed {report.failed}"
        + (f"; disabled endpoints {report.disabled}" if report.disabled else "")
    )
