"""``newsletter scheduler``: run the scheduler service, or ask how it is doing.

``run`` does not import the scheduler door (no door imports another): it replaces this
process with ``python -m scheduler``, so the service keeps this process id (SIGTERM from
systemd or a test reaches it), its exit code and its JSON-lines logs on stderr.
"""

from __future__ import annotations

import os
import sys

import typer

from cli import output
from cli.context import engine_for, settings

app = typer.Typer(help="The scheduler service.", no_args_is_help=True)


def scheduler_argv(*, once: bool) -> list[str]:
    """The command line of the scheduler service, on this Python (this virtualenv)."""
    return [sys.executable, "-m", "scheduler", *(["--once"] if once else [])]


@app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
) -> None:
    """Run the scheduler service in the foreground (JSON-lines logs on stderr)."""
    argv = scheduler_argv(once=once)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


@app.command("status")
def status(as_json: bool = output.json_option()) -> None:
    """The active instance, and the last and next run of each job."""
    from campaigns import weekly_plan
    from newsletter import job_runs

    cfg = settings()
    report = job_runs.status(engine_for(cfg))
    if as_json:
        output.print_json(report.model_dump(mode="json"))
        return
    output.say(f"active instance: {report.active_instance or 'none'}")
    for job in report.jobs:
        last = weekly_plan.format_local(job.last_started_at, cfg) or "never"
        outcome = f" ({job.last_outcome})" if job.last_outcome else ""
        upcoming = weekly_plan.format_local(job.next_run_at, cfg) or "-"
        output.say(f"  {job.job:<16} last {last}{outcome}  next {upcoming}")
