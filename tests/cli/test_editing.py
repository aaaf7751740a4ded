"""``newsletter campaigns edit|duplicate|reassemble`` and ``newsletter snippets
edit|retire`` (cli/campaign_edits.py, cli/snippets.py): the rooms the console uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from newsletter import db
from newsletter.errors import NotFound
from tests.support.content import CONTENT_DIR

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    values = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_TIMEZONE": "UTC",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
    db.dispose_engine(values["NEWSLETTER_DATABASE_URL"])


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_edit_reorder_duplicate_and_retire_from_the_command_line(env: dict[str, str]) -> None:
    runner.invoke(app, ["snippets", "import", str(CONTENT_DIR / "snippets")])
    issue = run("campaigns", "assemble", "--for", "2026-12-01", "--json")
    ids = [s["id"] for s in issue["snippets"]]
    edited = run(
        "campaigns", "edit", str(issue["id"]), "--subject", "Our own subject",
        "--snippets", ",".join(map(str, reversed(ids))), "--json",
    )  # fmt: skip
    assert edited["subject"] == "Our own subject"
    assert run("campaigns", "show", str(issue["id"]), "--json")["snippet_ids"] == ids[::-1]
    copy = run("campaigns", "duplicate", str(issue["id"]), "--json")
    assert (copy["status"], copy["week"], copy["subject"]) == ("draft", None, "Our own subject")
    changed = run("snippets", "edit", str(ids[0]), "--title", "A better title", "--json")
    assert changed["title"] == "A better title"
    assert run("snippets", "retire", str(ids[0]), "--json")["retired"] is True
    assert run("snippets", "retire", str(ids[0]), "--undo", "--json")["retired"] is False
    nothing = runner.invoke(app, ["campaigns", "edit", str(issue["id"])])
    assert nothing.exit_code == 2
    assert "give --subject, --preheader or --snippets" in nothing.output


def test_an_unknown_campaign_is_our_error(
    env: dict[str, str],
) -> None:
    # CliRunner lets our error through; cli.output.run prints it as one line, exit 1.
    result = runner.invoke(app, ["campaigns", "edit", "99", "--subject", "x"])
    assert (type(result.exception), str(result.exception)) == (
        NotFound,
        "campaign 99 does not exist",
    )
