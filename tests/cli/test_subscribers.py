"""`newsletter subscribers ...`: add, import, export, erase, list, show."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from newsletter.clock import utcnow
from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from tests.support.subscribers import link, messages, messages_to, signed_up, sqlite_only

runner = CliRunner()
NEWSLETTER = Path(sys.executable).parent / "newsletter"


@pytest.fixture
def env(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": settings.database_url,
        "NEWSLETTER_OUTBOX_DIR": str(settings.outbox_dir),
        "NEWSLETTER_POSTAL_ADDRESS": settings.postal_address or "",
        "NEWSLETTER_SECRET_KEY": settings.secret_key or "",
        "NEWSLETTER_BASE_URL": settings.base_url,
        "NEWSLETTER_FROM_EMAIL": settings.from_email,
        "NEWSLETTER_TIMEZONE": "UTC",
        "NEWSLETTER_PROVIDER": "outbox",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_add_starts_double_opt_in(env: dict[str, str], settings: Settings) -> None:
    data = run("subscribers", "add", "Jane@Example.com", "--name", "Jane", "--json")
    assert {
        k: data[k]
        for k in (
            "email",
            "name",
            "status",
            "source",
            "topics",
            "outcome",
            "confirmation_sent",
            "paused_until",
            "confirmed_at",
        )
    } == {
        "email": "jane@example.com",
        "name": "Jane",
        "status": "pending",
        "source": "cli",
        "topics": [],
        "outcome": "created",
        "confirmation_sent": True,
        "paused_until": None,
        "confirmed_at": None,
    }
    assert isinstance(data["id"], int)
    assert link(messages_to(settings, "jane@example.com")[0], "confirm")


@sqlite_only
def test_add_text_output(env: dict[str, str]) -> None:
    output = run("subscribers", "add", "jane@example.com")
    assert output.strip().endswith("(subscriber 1, pending): confirmation email sent")


def test_import_reports_bad_rows_with_line_numbers(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "email,name,consented_at\nann@example.com,Ann,2025-01-01\n"
        "oops,Bad,\nbob@example.com,Bob,\n",
    )
    result = runner.invoke(app, ["subscribers", "import", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report == {
        "rows": 3,
        "active": 1,
        "pending": 1,
        "confirmations_sent": 1,
        "unchanged": 0,
        "suppressed": 0,
        "problems": [
            {
                "line": 3,
                "email": "oops",
                "reason": "'oops' is not a valid email "
                "address: An email address must have an @-sign.",
            }
        ],
    }
    assert len(messages(settings)) == 1


@sqlite_only
def test_import_text_report_lists_bad_rows_with_their_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "email,name\noops,\n")
    result = runner.invoke(app, ["subscribers", "import", str(path)])
    assert "1 row: 0 active (with consent proof), 0 pending (0 confirmation emails sent)" in (
        result.stdout
    )
    assert f"{path}:2: 'oops' is not a valid email address" in result.stdout


@sqlite_only
def test_import_with_bad_rows_exits_1_with_one_line_on_stderr_after_keeping_the_good(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "email,name\nann@example.com,Ann\noops,\nbad@,\n")
    proc = subprocess.run(
        [str(NEWSLETTER), "subscribers", "import", str(path), "--no-confirm-mail"],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (
        1,
        f"error: 2 rows of {path} had problems (listed in the report); "
        "the rest of the file was processed\n",
    )
    assert [s["email"] for s in run("subscribers", "list", "--json")] == ["ann@example.com"]


def test_import_without_bad_rows_exits_0(env: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.com,Ann\n")
    result = runner.invoke(app, ["subscribers", "import", str(path), "--json"])
    assert (result.exit_code, result.stderr) == (0, "")


@sqlite_only
def test_import_no_confirm_mail_sends_nothing(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "email,name\nbob@example.com,Bob\n")
    report = run("subscribers", "import", str(path), "--no-confirm-mail", "--json")
    assert (report["pending"], report["confirmations_sent"]) == (1, 0)
    assert messages(settings) == []


def test_import_twice_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, "email,name,consented_at\nann@example.com,Ann,2025-01-01\n")
    run("subscribers", "import", str(path), "--json")
    before = run("subscribers", "export", "--format", "json")
    again = run("subscribers", "import", str(path), "--json")
    assert (again["unchanged"], again["active"]) == (1, 0)
    assert run("subscribers", "export", "--format", "json") == before


@sqlite_only
def test_export_to_a_file_as_csv(env: dict[str, str], tmp_path: Path) -> None:
    run(
        "subscribers",
        "import",
        str(write(tmp_path, "email,name,consented_at\nann@example.com,Ann,2025-01-01\n")),
        "--json",
    )
    target = tmp_path / "out.csv"
    run("subscribers", "export", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["email"], r["status"], r["consented_at"]) for r in rows] == [
        ("ann@example.com", "active", "2025-01-01T00:00:00+00:00")
    ]
    assert json.loads(rows[0]["history"])[0]["reason"] == "imported with consent proof"


def test_list_and_filter_by_status(env: dict[str, str], tmp_path: Path) -> None:
    run(
        "subscribers",
        "import",
        str(
            write(
                tmp_path,
                "email,name,consented_at\nann@example.com,,2025-01-01\nbob@example.com,,\n",
            )
        ),
        "--json",
    )
    assert [r["email"] for r in run("subscribers", "list", "--json")] == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert [r["email"] for r in run("subscribers", "list", "--status", "pending", "--json")] == [
        "bob@example.com"
    ]


@sqlite_only
def test_list_with_an_unknown_status_is_a_usage_error(env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["subscribers", "list", "--status", "happy"], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 2
    assert "use one of pending, active, unsubscribed, bounced, complained" in result.output


@sqlite_only
def test_show_includes_history_and_suppression(env: dict[str, str]) -> None:
    run("subscribers", "add", "jane@example.com")
    shown = run("subscribers", "show", "JANE@example.com", "--json")
    assert (shown["email"], shown["status"], shown["suppressed"]) == (
        "jane@example.com",
        "pending",
        None,
    )
    assert [
        (e["from_status"], e["to_status"], e["reason"], e["source"]) for e in shown["history"]
    ] == [(None, "pending", "signed up", "cli")]


def test_erase_keeps_only_the_hash(env: dict[str, str]) -> None:
    run("subscribers", "add", "jane@example.com")
    erased = run("subscribers", "erase", "jane@example.com", "--json")
    assert (erased["subscriber_id"], erased["events_deleted"]) == (1, 1)
    assert len(erased["email_hash"]) == 64
    assert run("subscribers", "list", "--json") == []


def test_expire_pending_removes_only_stale_sign_ups(
    env: dict[str, str], settings: Settings, engine: Engine
) -> None:
    with Session(engine) as session:
        stale = utcnow() - timedelta(days=settings.pending_expiry_days, hours=1)
        signed_up(session, settings, "stale@example.com", now=stale)
        signed_up(session, settings, "fresh@example.com")
    assert run("subscribers", "expire-pending", "--json") == {"expired": 1}
    assert [s["email"] for s in run("subscribers", "list", "--json")] == ["fresh@example.com"]


def test_counts_in_text_agree_with_their_nouns(
    env: dict[str, str], settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    with Session(engine) as session:
        stale = utcnow() - timedelta(days=settings.pending_expiry_days, hours=1)
        signed_up(session, settings, "stale@example.com", now=stale)
    assert run("subscribers", "expire-pending") == "1 unconfirmed sign-up expired\n"
    assert run("subscribers", "expire-pending") == "0 unconfirmed sign-ups expired\n"
    run("subscribers", "add", "jane@example.com")
    erased = " ".join(run("subscribers", "erase", "jane@example.com").split())
    assert re.match(
        r"erased subscriber \d+, 1 history event and the personal fields of 0 provider events;",
        erased,
    )
    path = write(tmp_path, "email,name\nann@example.com,Ann\n")
    imported = run("subscribers", "import", str(path))
    assert imported.startswith("1 row: 0 active (with consent proof), 1 pending (1 confirmation ")
    assert "(1 confirmation email sent)" in " ".join(imported.split())


@sqlite_only
def test_a_malformed_address_is_wrong_usage_with_the_rooms_reason(env: dict[str, str]) -> None:
    # Checked at the door (exit 2, nothing stored) by the room's own rule.
    result = runner.invoke(app, ["subscribers", "add", "not-an-address"])
    assert result.exit_code == 2
    assert (
        "'not-an-address' is not a valid email address: An email address must have an @-sign."
        in " ".join(result.output.replace("│", " ").split())
    )
    assert run("subscribers", "list", "--json") == []


@sqlite_only
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["subscribers", "show", "who@example.com"],
            "no subscriber with the address 'who@example.com'",
        ),
        (["subscribers", "erase", "who@example.com"], "nothing is stored about 'who@example.com'"),
    ],
)
def test_expected_errors_carry_a_clear_message(
    env: dict[str, str], args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, NewsletterError)
    assert str(result.exception) == message


@sqlite_only
def test_expected_error_exits_1_with_one_line_on_stderr(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = write(tmp_path, "mail\nx@example.com\n", "bad.csv")
    proc = subprocess.run(
        [str(NEWSLETTER), "subscribers", "import", str(bad)],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1,
        "",
        f"error: {bad}:1: missing column 'email'; expected columns: email, name, "
        "consented_at, source, ip, timezone\n",
    )
