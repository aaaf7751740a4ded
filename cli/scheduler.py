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

app = output.App(help="The scheduler service.")

# `scheduler status` exit codes for a monitoring check (2 is wrong usage, as everywhere).
RUNNING, DEGRADED, NOT_RUNNING = 0, 1, 3


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
    """Whether the scheduler runs, each job's last run, and (while it runs) its next run.

    \b
    Exit codes, for a monitoring check:
      0  an active instance holds the lease and no job's last run failed
      1  degraded: a job's last run failed (or the database cannot be read)
      2  wrong usage
      3  no active scheduler instance: the service is not running
    """
    from campaigns import weekly_plan
    from newsletter import job_runs

    cfg = settings()
    report = job_runs.status(engine_for(cfg))
    failed = report.failed_jobs()
    code = NOT_RUNNING if report.active_instance is None else DEGRADED if failed else RUNNING
    if as_json:
        output.print_json(report.model_dump(mode="json"))
    else:
        if report.active_instance is None:
            output.say("scheduler: not running (no active instance holds the lease)")
        else:
            until = weekly_plan.format_local(report.lease_expires_at, cfg)
            output.say(f"scheduler: running as {report.active_instance} (lease until {until})")
        for job in report.jobs:
            last = weekly_plan.format_local(job.last_started_at, cfg) or "never"
            outcome = f" ({job.last_outcome})" if job.last_outcome else ""
            line = f"  {job.job:<16} last {last}{outcome}"
            if report.active_instance is not None:
                line += f"  next {weekly_plan.format_local(job.next_run_at, cfg) or '-'}"
            output.say(line)
        for job in failed:
            output.say(f"degraded: the last {job.job} run failed: {job.last_detail or '-'}")
    if code != RUNNING:
        raise typer.Exit(code)
