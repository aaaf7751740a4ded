"""``campaigns subject-test`` and ``campaigns resend``: JSON out, the figures in show and
report, one-line errors with exit 1, malformed values with exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app, output
from newsletter import db
from newsletter.settings import load_settings
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import add_subscribers
from tests.support.subscribers import html_of, messages

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_POSTAL_ADDRESS": "Pain Relief Weekly, 1 Main Street, Springfield",
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_PREFLIGHT_FETCH": "off",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    db.upgrade(db.get_engine(values["NEWSLETTER_DATABASE_URL"]))
    yield values
    db.dispose_engine(values["NEWSLETTER_DATABASE_URL"])


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def refused(capsys: pytest.CaptureFixture[str], *args: str, code: int = 1) -> str:
    """Run as the process does (cli.output.run): exit ``code``, one line on stderr."""
    with pytest.raises(SystemExit) as ended:
        output.run(app, list(args))
    assert ended.value.code == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def draft(env: dict[str, str], readers: int) -> str:
    engine = db.get_engine(env["NEWSLETTER_DATABASE_URL"])
    with Session(engine, expire_on_commit=False) as session:
        campaign = make_campaign(session, [make_snippet(session, load_settings())])
        session.commit()
    add_subscribers(engine, readers)
    return str(campaign.id)


def test_a_subject_test_from_the_command_line_to_a_winner_by_hand(env: dict[str, str]) -> None:
    cid = draft(env, 10)
    made = run(
        "campaigns", "subject-test", cid, "--subject", "Stretch A", "--subject", "Stretch B",
        "--preheader", "Hidden A", "--preheader", "Hidden B", "--sample", "40", "--wait", "4h",
        "--json",
    )  # fmt: skip
    assert [(v["label"], v["subject"], v["preheader"]) for v in made["variants"]] == [
        ("A", "Stretch A", "Hidden A"),
        ("B", "Stretch B", "Hidden B"),
    ]
    assert run("campaigns", "send", cid, "--json")["status"] == "paused"
    sample = messages(load_settings())
    assert sorted(str(m["Subject"]) for m in sample) == ["Stretch A"] * 2 + ["Stretch B"] * 2
    assert all(f"Hidden {m['Subject'][-1]}" in html_of(m) for m in sample)  # its own preheader
    assert run("campaigns", "subject-test", cid, "--winner", "B", "--json")["winner"] == "B"
    run("campaigns", "send", cid)
    rest = messages(load_settings())[4:]
    assert [str(m["Subject"]) for m in rest] == ["Stretch B"] * 6
    shown = run("campaigns", "show", cid, "--json")
    assert shown["status"] == "sent" and shown["subject_test"]["winner"] == "B"
    assert [v["sends"] for v in shown["subject_test"]["variants"]] == [2, 2]
    report = run("campaigns", "report", cid)
    assert "subject test: rest, 40 % sample (4), by human clicks, winner B" in report
    assert "B  sent 2, opens 0 (0.0%), clicks 0 (0.0%); vs A: no difference to test" in report


def test_subject_test_mistakes_are_one_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cid = draft(env, 3)
    assert "has no subject test" in refused(capsys, "campaigns", "subject-test", cid)
    assert "2 or 3 subjects" in refused(capsys, "campaigns", "subject-test", cid, "--subject", "A")
    assert "not a duration" in refused(
        capsys,
        "campaigns", "subject-test", cid, "--subject", "A", "--subject", "B", "--wait", "soon",
        code=2,
    )  # fmt: skip
    run("campaigns", "subject-test", cid, "--subject", "A", "--subject", "B")
    assert "has no variant C" in refused(capsys, "campaigns", "subject-test", cid, "--winner", "C")
    assert "the sample is not sent yet" in refused(
        capsys, "campaigns", "subject-test", cid, "--winner", "A"
    )


def test_a_resend_is_shown_and_refused_the_second_time(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cid = draft(env, 2)
    run("campaigns", "send", cid)
    made = run(
        "campaigns", "resend", cid, "--subject", "Did you miss it?", "--after", "3d", "--json"
    )
    assert (made["subject"], made["after_seconds"], made["recipients"]) == (
        "Did you miss it?",
        3 * 86400,
        None,
    )
    assert run("campaigns", "show", cid, "--json")["resend"]["due_at"] == made["due_at"]
    assert "at most one per campaign" in refused(
        capsys, "campaigns", "resend", cid, "--subject", "Again", "--after", "1d"
    )


def test_a_subject_test_is_removed_from_the_command_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cid = draft(env, 3)
    run("campaigns", "subject-test", cid, "--subject", "A", "--subject", "B")
    said = run("campaigns", "subject-test", cid, "--remove")
    assert said == f"campaign {cid}: subject test removed; it goes out with its own subject\n"
    assert "has no subject test" in refused(capsys, "campaigns", "subject-test", cid)
    assert "give one of --subject, --winner and --remove" in refused(
        capsys, "campaigns", "subject-test", cid, "--remove", "--winner", "A", code=2
    )


def test_a_resend_is_cancelled_from_the_command_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cid = draft(env, 2)
    run("campaigns", "send", cid)
    run("campaigns", "resend", cid, "--subject", "Did you miss it?")
    assert run("campaigns", "resend", cid, "--cancel") == f"campaign {cid}: resend cancelled\n"
    assert run("campaigns", "show", cid, "--json")["resend"] is None
    assert "has no resend" in refused(capsys, "campaigns", "resend", cid, "--cancel")
    assert "give the resend's --subject" in refused(capsys, "campaigns", "resend", cid, code=2)
