"""The workflow, scheduler and api-tokens commands: JSON out, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from newsletter import clock, db
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import add_subscribers

runner = CliRunner()
NEWSLETTER = str(Path(sys.executable).parent / "newsletter")


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def draft(env: dict[str, str]) -> int:
    from newsletter.settings import load_settings

    engine = db.get_engine(env["NEWSLETTER_DATABASE_URL"])
    with Session(engine, expire_on_commit=False) as session:
        snippet = make_snippet(session, load_settings())
        campaign = make_campaign(session, [snippet], subject="Weekly")
        session.commit()
    assert campaign.id is not None
    return campaign.id


def test_schedule_takes_local_time_and_stores_utc(env: dict[str, str]) -> None:
    cid = draft(env)
    data = run("campaigns", "schedule", str(cid), "--at", "2030-01-08T09:00", "--json")
    assert (data["status"], data["scheduled_at"], data["scheduled_at_local"]) == (
        "scheduled",
        "2030-01-08T14:00:00Z",
        "2030-01-08 09:00 EST",
    )
    assert run("campaigns", "schedule", str(cid), "--at", "2030-01-08T09:00") == (
        f"campaign {cid} is scheduled for 2030-01-08 09:00 EST\n"
    )


def test_pause_resume_cancel_and_list(env: dict[str, str]) -> None:
    cid = draft(env)
    run("campaigns", "schedule", str(cid), "--at", "2030-01-08T09:00")
    assert run("campaigns", "pause", str(cid), "--json")["status"] == "paused"
    assert run("campaigns", "resume", str(cid), "--json")["status"] == "scheduled"
    assert run("campaigns", "cancel", str(cid), "--reason", "wrong week", "--json")["status"] == (
        "cancelled"
    )
    listed = run("campaigns", "list", "--json")
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "cancelled")]
    assert run("campaigns", "list", "--status", "draft", "--json") == []


def test_show_gives_progress_and_the_log(env: dict[str, str]) -> None:
    cid = draft(env)
    engine = db.get_engine(env["NEWSLETTER_DATABASE_URL"])
    add_subscribers(engine, 3)
    run("campaigns", "send", str(cid), "--json")
    shown = run("campaigns", "show", str(cid), "--json")
    assert shown["progress"] == {
        "queued": 0,
        "sent": 3,
        "skipped": 0,
        "failed": 0,
        "total": 3,
        "deferred": 0,
    }
    assert [(e["from_status"], e["to_status"]) for e in shown["log"]] == [
        ("draft", "sending"),
        ("sending", "sent"),
    ]
    text = run("campaigns", "show", str(cid))
    assert "  progress:  queued 0, sent 3, skipped 0, failed 0 (of 3)\n" in text


def test_show_gives_progress_while_a_campaign_is_sending(env: dict[str, str]) -> None:
    from campaigns import jobs
    from newsletter.settings import load_settings

    cid = draft(env)
    add_subscribers(db.get_engine(env["NEWSLETTER_DATABASE_URL"]), 150)  # two outbox batches
    run("campaigns", "schedule", str(cid), "--at", clock.utcnow().isoformat())
    asked: list[int] = []

    def stop_after_the_first_batch() -> bool:
        asked.append(1)
        return len(asked) > 1  # asked once before the campaign, then after each batch

    jobs.dispatch(load_settings(), clock.utcnow(), should_stop=stop_after_the_first_batch)
    shown = run("campaigns", "show", str(cid), "--json")
    assert shown["status"] == "sending"
    assert shown["progress"] == {
        "queued": 50,
        "sent": 100,
        "skipped": 0,
        "failed": 0,
        "total": 150,
        "deferred": 0,
    }
    text = run("campaigns", "show", str(cid))
    assert "  status:    sending\n" in text
    assert "  progress:  queued 50, sent 100, skipped 0, failed 0 (of 150)\n" in text


def test_an_illegal_change_exits_1_with_one_line(env: dict[str, str]) -> None:
    cid = draft(env)
    result = subprocess.run(
        [NEWSLETTER, "campaigns", "pause", str(cid)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"error: campaign {cid} cannot go from draft to paused\n",
    )


def test_a_bad_status_filter_is_a_usage_error(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["campaigns", "list", "--status", "nope"])
    assert result.exit_code == 2


def test_api_tokens_create_list_revoke(env: dict[str, str]) -> None:
    created = run("api-tokens", "create", "marketing", "--json")
    assert set(created) == {"id", "name", "created_at", "last_used_at", "revoked_at", "token"}
    assert created["token"].startswith("nlt_") and len(created["token"]) > 40
    listed = run("api-tokens", "list", "--json")
    assert listed == [{k: v for k, v in created.items() if k != "token"}]
    assert run("api-tokens", "revoke", "marketing") == "API token 'marketing' revoked\n"
    assert run("api-tokens", "list", "--json")[0]["revoked_at"] is not None


def test_revoking_twice_exits_1(env: dict[str, str]) -> None:
    run("api-tokens", "create", "ops")
    run("api-tokens", "revoke", "ops")
    result = subprocess.run(
        [NEWSLETTER, "api-tokens", "revoke", "ops"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (1, "error: API token 'ops' is already revoked\n")


def status_json(expected_exit: int) -> Any:
    result = runner.invoke(app, ["scheduler", "status", "--json"])
    assert result.exit_code == expected_exit, (result.output, result.exception)
    return json.loads(result.stdout)


def test_scheduler_status_before_any_run(env: dict[str, str]) -> None:
    data = status_json(3)  # no active instance
    assert data["active_instance"] is None and data["database_ok"] is True
    assert [(j["job"], j["last_outcome"], j["next_run_at"]) for j in data["jobs"]] == [
        ("weekly_assembly", None, None),
        ("dispatch", None, None),
        ("housekeeping", None, None),
        ("release_waves", None, None),
        ("subject_tests", None, None),
        ("resends", None, None),
    ]


def test_scheduler_run_once_records_the_runs_and_status_shows_them(env: dict[str, str]) -> None:
    result = subprocess.run(
        [NEWSLETTER, "scheduler", "run", "--once"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line).get("event") for line in result.stderr.splitlines()]
    assert events[0] == "starting" and "job finished" in events
    data = status_json(3)  # --once has stopped: no active instance
    dispatch = next(j for j in data["jobs"] if j["job"] == "dispatch")
    assert dispatch["last_outcome"] == "idle"
    assert data["active_instance"] is None  # --once releases the lease


def test_python_scheduler_py_once_runs_the_due_jobs(env: dict[str, str]) -> None:
    from newsletter.settings import PROJECT_ROOT

    script = str(PROJECT_ROOT / "scheduler.py")
    result = subprocess.run(
        [sys.executable, script, "--once"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"ts", "level", "logger", "msg", "event"} <= set(lines[0])
    finished = [e for e in lines if e.get("event") == "job finished"]
    assert ("dispatch", "idle") in [(e["job"], e["outcome"]) for e in finished]
    usage = subprocess.run(
        [sys.executable, script, "--bogus"], capture_output=True, text=True, timeout=60
    )
    assert (usage.returncode, usage.stderr) == (2, "usage: python scheduler.py [--once]\n")


def status_text(expected_exit: int) -> str:
    result = runner.invoke(app, ["scheduler", "status"])
    assert result.exit_code == expected_exit, (result.output, result.exception)
    return result.stdout


def test_scheduler_status_exit_codes_for_monitoring(env: dict[str, str]) -> None:
    """0 running and healthy, 1 degraded (a job's last run failed), 3 not running."""
    from newsletter import job_runs, leases

    engine = db.get_engine(env["NEWSLETTER_DATABASE_URL"])
    with engine.begin() as connection:  # what APScheduler's job store keeps
        connection.exec_driver_sql(
            "CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY, "
            "next_run_time FLOAT, job_state BLOB)"
        )
        connection.exec_driver_sql(
            "INSERT INTO apscheduler_jobs VALUES ('dispatch', 1893488400.0, x'')"  # 2030-01-01 9Z
        )
    with job_runs.recording(engine, job=job_runs.DISPATCH, instance="host:7:abc"):
        pass

    text = status_text(3)
    assert text.splitlines()[0] == "scheduler: not running (no active instance holds the lease)"
    assert "next" not in text  # the planned times of a stopped scheduler mean nothing
    assert status_json(3)["jobs"][1]["next_run_at"] is None

    assert leases.acquire(engine, holder="host:7:abc", ttl_seconds=600)
    text = status_text(0)
    assert text.startswith("scheduler: running as host:7:abc (lease until ")
    assert "  dispatch         last " in text and "(ok)  next 2030-01-01 04:00 EST" in text
    assert status_json(0)["jobs"][1]["next_run_at"] == "2030-01-01T09:00:00Z"

    with (
        pytest.raises(RuntimeError),
        job_runs.recording(engine, job=job_runs.HOUSEKEEPING, instance="host:7:abc"),
    ):
        raise RuntimeError("disk full")
    text = status_text(1)
    assert "degraded: the last housekeeping run failed: RuntimeError: disk full" in text
    assert status_json(1)["jobs"][2]["last_outcome"] == "failed"

    leases.release(engine, holder="host:7:abc")
    assert "degraded: the last housekeeping run failed" in status_text(3)


def test_scheduler_status_documents_its_exit_codes(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["scheduler", "status", "--help"])
    flat = " ".join(result.output.replace("│", " ").split())
    for line in (
        "0 an active instance holds the lease and no job's last run failed",
        "1 degraded: a job's last run failed",
        "2 wrong usage",
        "3 no active scheduler instance",
    ):
        assert line in flat


def test_db_current_has_json(env: dict[str, str]) -> None:
    head = db.head_revision()
    assert head is not None and head == db.revisions()[-1]
    assert run("db", "current") == f"{head}\n"
    assert run("db", "current", "--json") == {"revision": head, "head": head, "up_to_date": True}
    db.downgrade(db.get_engine(env["NEWSLETTER_DATABASE_URL"]), "0001")
    assert run("db", "current", "--json") == {
        "revision": "0001",
        "head": head,
        "up_to_date": False,
    }
    assert run("db", "upgrade", "--json")["up_to_date"] is True


def test_track_switches_a_campaigns_tracking_and_refuses_a_sent_one(env: dict[str, str]) -> None:
    cid = draft(env)
    assert run("campaigns", "show", str(cid), "--json")["tracking"] is True
    assert run("campaigns", "track", str(cid), "--off", "--json")["tracking"] is False
    assert run("campaigns", "track", str(cid), "--on") == f"campaign {cid} (draft): tracking on\n"
    log = run("campaigns", "show", str(cid), "--json")["log"]
    assert [e["reason"] for e in log][-2:] == ["tracking off", "tracking on"]
    run("campaigns", "send", str(cid))
    refused = subprocess.run(
        [NEWSLETTER, "campaigns", "track", str(cid), "--off"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (refused.returncode, refused.stderr) == (
        1,
        f"error: campaign {cid} is sent; its links are out\n",
    )
