"""``newsletter campaigns subject-test`` and ``campaigns resend`` (issue 16), and how a
subject test reads in ``campaigns show`` and ``campaigns report``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import typer

from cli import output, params
from cli.context import actor, session_for, settings


def subject_test(
    campaign_id: int = params.campaign_id("The campaign to test subjects on."),
    subjects: list[str] = typer.Option(
        [], "--subject", metavar="TEXT", help="A subject to test; give 2 or 3."
    ),
    preheaders: list[str] = typer.Option(
        [], "--preheader", metavar="TEXT", help="One for all subjects, or one per subject."
    ),
    sample: int = typer.Option(20, "--sample", metavar="PERCENT", help="Share of the audience."),
    wait: timedelta = typer.Option(
        "4h",
        "--wait",
        metavar="DURATION",
        parser=params.parse_duration,
        help="From the sample's send to the winner: 90m, 4h, 1d.",
    ),
    metric: str = typer.Option(
        "clicks", "--metric", metavar="clicks|opens", help="Human unique clicks or opens."
    ),
    winner: str | None = typer.Option(
        None, "--winner", metavar="A|B|C", help="Choose the winner by hand, now."
    ),
    remove: bool = typer.Option(
        False, "--remove", help="Take the test away before its sample is sent."
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Send 2-3 subjects to a sample; after --wait the best (by people, never machines)
    goes to the rest. With --winner, crown one by hand; with --remove, take the test
    away (before its sample is sent); with none of them, show the test."""
    from campaigns import subject_tests

    if sum((winner is not None, bool(subjects), remove)) > 1:
        output.bad_usage("give one of --subject, --winner and --remove")
    if remove:
        with session_for(settings()) as session:
            subject_tests.remove_test(session, campaign_id=campaign_id, actor=actor())
        output.say(
            f"campaign {campaign_id}: subject test removed; it goes out with its own subject"
        )
        return
    with session_for(settings()) as session:
        if winner is None and not subjects:
            data = subject_tests.show_test(session, campaign_id=campaign_id)
        elif winner is not None:
            data = subject_tests.choose_winner(
                session, campaign_id=campaign_id, label=winner, actor=actor()
            )
        else:
            data = subject_tests.create_test(
                session,
                campaign_id=campaign_id,
                subjects=subjects,
                preheaders=preheaders,
                sample_percent=sample,
                wait=wait,
                metric=metric,
                actor=actor(),
            )
    if as_json:
        output.print_json(data)
    elif winner is not None:
        output.say(f"campaign {campaign_id}: variant {data['winner']} won; the rest gets it next")
    elif not subjects:
        for line in variant_lines(data):
            output.say(line)
    else:
        _created(campaign_id, len(subjects), sample, metric, wait)


def _created(campaign_id: int, variants: int, sample: int, metric: str, wait: timedelta) -> None:
    output.say(
        f"campaign {campaign_id}: subject test of {output.plural(variants, 'variant')} to "
        f"{sample} % of the audience, winner by human {metric} {_span(wait)} after the "
        "sample; "
        "send or schedule the campaign to start it"
    )


def resend(
    campaign_id: int = params.campaign_id("The sent campaign to follow up."),
    subject: str | None = typer.Option(
        None, "--subject", metavar="TEXT", help="The resend's subject (needed to request one)."
    ),
    after: timedelta = typer.Option(
        "3d",
        "--after",
        metavar="DURATION",
        parser=params.parse_duration,
        help="After the campaign finished sending: 1d, 3d, 36h.",
    ),
    cancel: bool = typer.Option(False, "--cancel", help="Take the resend back before it is due."),
    as_json: bool = output.json_option(),
) -> None:
    """Resend a sent campaign, with another subject, to those who did not open it (human
    opens only); at most once per campaign. With --cancel, take it back before it is due."""
    from campaigns import resends

    if cancel and subject is not None:
        output.bad_usage("--cancel takes the resend back; no --subject with it")
    if cancel:
        with session_for(settings()) as session:
            resends.cancel_resend(session, campaign_id=campaign_id, actor=actor())
        output.say(f"campaign {campaign_id}: resend cancelled")
        return
    if subject is None:
        output.bad_usage("give the resend's --subject (or --cancel)")
    with session_for(settings()) as session:
        data = resends.request_resend(
            session, campaign_id=campaign_id, subject=subject, after=after, actor=actor()
        )
    if as_json:
        output.print_json(data)
        return
    output.say(f"campaign {campaign_id}: resend due {data['due_at']}: {data['subject']}")


def _span(wait: timedelta) -> str:
    minutes = int(wait.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts) or "0m"


def variant_lines(test: dict[str, Any] | None) -> list[str]:
    """A subject test as text lines for ``show`` and ``report`` (none without a test)."""
    if not test:
        return []
    lines = [
        f"  subject test: {test['phase']}, {test['sample_percent']} % sample "
        f"({test['sample_size']}), by human {test['metric']}, winner "
        f"{test['winner'] or '-'} (due {test['decide_at'] or 'after the sample'})"
    ]
    for v in test["variants"]:
        versus = v["comparison"]
        note = f"; vs {versus['versus']}: {versus['note']}" if versus else ""
        lines.append(
            f"    {v['label']}  sent {v['sends']}, opens {v['human_opens']} "
            f"({v['open_rate']:.1%}), clicks {v['human_clicks']} ({v['click_rate']:.1%}){note}"
            f"  {v['subject']}"
        )
    return lines


def resend_line(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return []
    sent = (
        f"campaign {data['resend_campaign_id']} to {data['recipients']}"
        if data["resend_campaign_id"]
        else "not yet"
    )
    return [f"  resend:    due {data['due_at']} ({sent}): {data['subject']}"]
