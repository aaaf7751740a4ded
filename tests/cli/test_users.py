"""`newsletter users ...`: create (hidden prompt or --password-stdin), list, disable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app
from newsletter import accounts, audit
from newsletter.settings import Settings

runner = CliRunner()
PASSWORD = "a long enough password"
NEWSLETTER = Path(sys.executable).parent / "newsletter"


@pytest.fixture
def env(
    sqlite_settings: Settings,
    sqlite_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": sqlite_settings.database_url,
        "NEWSLETTER_SECRET_KEY": sqlite_settings.secret_key or "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_create_asks_the_password_twice_hidden_and_the_user_can_sign_in(
    env: dict[str, str], sqlite_engine: Engine
) -> None:
    result = runner.invoke(
        app, ["users", "create", "Own@Example.com", "--role", "owner"], input=f"{PASSWORD}\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden
    assert "Repeat for confirmation" in result.output
    assert "console user own@example.com created (owner)" in result.output
    with Session(sqlite_engine) as session:
        assert accounts.authenticate(session, "own@example.com", PASSWORD).role == "owner"
        (entry,) = audit.recent(session).entries
    assert (entry.action, entry.target_id) == ("user.create", "own@example.com")
    assert entry.actor.startswith("cli")


def test_create_reads_the_password_from_stdin_and_prints_json(env: dict[str, str]) -> None:
    result = runner.invoke(
        app,
        ["users", "create", "ed@example.com", "--password-stdin", "--json"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["email"], data["role"], data["disabled_at"]) == ("ed@example.com", "editor", None)
    assert "hash" not in result.stdout


def test_list_and_disable(env: dict[str, str]) -> None:
    for email, role in (("own@example.com", "owner"), ("view@example.com", "viewer")):
        args = ["users", "create", email, "--role", role, "--password-stdin"]
        assert runner.invoke(app, args, input=PASSWORD + "\n").exit_code == 0
    disabled = runner.invoke(app, ["users", "disable", "view@example.com"])
    assert disabled.exit_code == 0 and "disabled" in disabled.stdout
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert [(u["email"], u["role"], u["disabled_at"] is not None) for u in listed] == [
        ("own@example.com", "owner", False),
        ("view@example.com", "viewer", True),
    ]
    text = runner.invoke(app, ["users", "list"]).stdout
    assert "own@example.com" in text and "active" in text


def test_mistakes_are_one_line_and_exit_1(env: dict[str, str]) -> None:
    cases = [
        (["users", "create", "a@example.com", "--role", "admin"], "", "unknown role 'admin'"),
        (["users", "create", "a@example.com", "--password-stdin"], "short\n", "12 characters"),
        (["users", "disable", "nobody@example.com"], "", "no console user nobody@example.com"),
    ]
    for args, stdin, message in cases:
        result = subprocess.run(
            [str(NEWSLETTER), *args], input=stdin, capture_output=True, text=True, check=False
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
