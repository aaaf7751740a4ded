"""``campaigns schedule ID --local-time``, and the reader's time zone in the subscriber
commands (issue 16): waves in JSON and text, late zones, usage errors, CSV import/export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session
from typer.testing import CliRunner

from cli import app, output
from newsletter import db
from newsletter.errors import InvalidInput
from newsletter.settings import load_settings
from tests.support.content import make_campaign, make_snippet
from tests.support.subscribers import make_subscriber

runner = CliRunner()
# Sunday 31 March 2030: Europe changes to summer time at 01:00 UTC that day.
SUNDAY = "2030-03-31"
ZONES = {"ber@example.com": "Europe/Berlin", "tok@example.com": "Asia/Tokyo", "x@example.com": None}


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def draft_with_readers(env: dict[str, str]) -> int:
    engine = db.get_engine(env["NEWSLETTER_DATABASE_URL"])
    with Session(engine, expire_on_commit=False) as session:
        for address, zone in ZONES.items():
            reader = make_subscriber(session, address)
            reader.timezone = zone
            session.add(reader)
        campaign = make_campaign(session, [make_snippet(session, load_settings())])
        session.commit()
    assert campaign.id is not None
    return campaign.id


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_schedule_at_a_local_time_lists_its_waves_in_json(env: dict[str, str]) -> None:
    cid = draft_with_readers(env)
    data = run("campaigns", "schedule", str(cid), "--local-time", "07:00", "--on", SUNDAY, "--json")
    assert data["status"] == "scheduled"
    waves = [
        (w["zones"], w["local_time"], w["release_at"], w["status"], w["recipients"], w["late"])
        for w in data["waves"]
    ]
    assert waves == [
        (["Asia/Tokyo"], "07:00", "2030-03-30T22:00:00Z", "queued", 1, None),
        (["Europe/Berlin"], "07:00", "2030-03-31T05:00:00Z", "queued", 1, None),  # CEST
        (["America/New_York"], "07:00", "2030-03-31T11:00:00Z", "queued", 1, None),  # EDT
    ]
    assert data["scheduled_at"] == "2030-03-30T22:00:00Z"
    assert run("campaigns", "show", str(cid), "--json")["waves"] == data["waves"]


def test_schedule_at_a_local_time_prints_one_line_per_wave(env: dict[str, str]) -> None:
    cid = draft_with_readers(env)
    text = run("campaigns", "schedule", str(cid), "--local-time", "07:00", "--on", SUNDAY)
    assert text == (
        f"campaign {cid} is scheduled, in 3 waves:\n"
        "  2030-03-30 22:00Z  queued    1 reader at 07:00: Asia/Tokyo\n"
        "  2030-03-31 05:00Z  queued    1 reader at 07:00: Europe/Berlin\n"
        "  2030-03-31 11:00Z  queued    1 reader at 07:00: America/New_York\n"
    )


def earliest_date() -> str:
    """The date that UTC-12, the last calendar on Earth, shows: 00:00 of it has passed
    in every zone, so every zone is late."""
    return (datetime.now(UTC) - timedelta(hours=12)).date().isoformat()


def test_late_now_sends_to_every_zone_whose_hour_has_passed_at_once(
    env: dict[str, str],
) -> None:
    cid = draft_with_readers(env)
    before = datetime.now(UTC)
    data = run(
        "campaigns", "schedule", str(cid), "--local-time", "00:00", "--on", earliest_date(),
        "--late", "now", "--json",
    )  # fmt: skip
    (wave,) = data["waves"]
    assert (wave["zones"], wave["late"], wave["recipients"]) == (
        ["America/New_York", "Asia/Tokyo", "Europe/Berlin"],
        "now",
        3,
    )
    at = datetime.fromisoformat(wave["release_at"])
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC)


def test_late_next_day_sends_at_that_hour_on_each_zones_next_date(env: dict[str, str]) -> None:
    cid = draft_with_readers(env)
    data = run(
        "campaigns", "schedule", str(cid), "--local-time", "00:00", "--on", earliest_date(),
        "--late", "next-day", "--json",
    )  # fmt: skip
    now = datetime.now(UTC)
    for wave in data["waves"]:
        (zone,) = wave["zones"]
        tomorrow = now.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
        local = datetime.fromisoformat(wave["release_at"]).astimezone(ZoneInfo(zone))
        assert (local.date(), local.strftime("%H:%M"), wave["late"]) == (
            tomorrow,
            "00:00",
            "next-day",
        )


def test_a_date_no_calendar_shows_any_more_is_refused_in_one_line(env: dict[str, str]) -> None:
    cid = draft_with_readers(env)
    result = runner.invoke(
        app, ["campaigns", "schedule", str(cid), "--local-time", "07:00", "--on", "2020-01-01"]
    )
    assert isinstance(result.exception, InvalidInput)  # main() prints it as one line
    assert (
        str(result.exception) == "field 'on': 2020-01-01 is in the past; pick today or a later date"
    )


def test_at_and_local_time_together_are_wrong_usage(env: dict[str, str]) -> None:
    cid = draft_with_readers(env)
    result = runner.invoke(
        app,
        ["campaigns", "schedule", str(cid), "--at", "2030-01-08T09:00", "--local-time", "07:00"],
    )
    assert result.exit_code == 2
    assert "give either --at or --local-time" in result.stderr


def test_an_unknown_late_choice_is_wrong_usage(env: dict[str, str]) -> None:
    cid = draft_with_readers(env)
    result = runner.invoke(
        app, ["campaigns", "schedule", str(cid), "--local-time", "07:00", "--late", "later"]
    )
    assert result.exit_code == 2
    assert "'later' is not one of: now, next-day" in result.stderr


def test_a_local_time_that_is_not_hh_mm_is_one_line_naming_the_field(
    env: dict[str, str],
) -> None:
    cid = draft_with_readers(env)
    result = runner.invoke(app, ["campaigns", "schedule", str(cid), "--local-time", "25:00"])
    error = result.exception
    assert error is not None and output.expected_error(error)  # exit 1, one line (cli.output.run)
    assert output.error_text(error) == (
        "field 'local_time': '25:00' is not a time of day as HH:MM (24-hour), such as 07:00"
    )


def test_show_json_and_export_carry_the_readers_time_zone(
    env: dict[str, str], tmp_path: Path
) -> None:
    draft_with_readers(env)
    assert run("subscribers", "show", "ber@example.com", "--json")["timezone"] == "Europe/Berlin"
    assert run("subscribers", "show", "x@example.com", "--json")["timezone"] is None
    target = tmp_path / "out.csv"
    run("subscribers", "export", str(target))
    rows = csv.DictReader(io.StringIO(target.read_text(encoding="utf-8")))
    assert {r["email"]: r["timezone"] for r in rows} == {
        "ber@example.com": "Europe/Berlin",
        "tok@example.com": "Asia/Tokyo",
        "x@example.com": "",
    }


def test_import_keeps_good_time_zones_and_reports_a_bad_one_by_file_line_and_field(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "email,name,consented_at,timezone\n"
        "ann@example.com,Ann,2025-01-01,Asia/Tokyo\n"
        "bob@example.com,Bob,2025-01-01,Mars/Olympus_Mons\n"
        "cy@example.com,Cy,2025-01-01,\n",
    )
    result = runner.invoke(app, ["subscribers", "import", str(path)])
    assert result.exit_code == 1
    assert (
        f"{path}:3: timezone 'Mars/Olympus_Mons' is not an IANA time zone name "
        "(such as Europe/Berlin)\n"
    ) in result.stdout
    assert run("subscribers", "show", "ann@example.com", "--json")["timezone"] == "Asia/Tokyo"
    assert run("subscribers", "show", "cy@example.com", "--json")["timezone"] is None
    listed = [s["email"] for s in run("subscribers", "list", "--json")]
    assert listed == ["ann@example.com", "cy@example.com"]
