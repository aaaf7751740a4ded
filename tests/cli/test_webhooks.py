"""``newsletter webhooks``: add prints the id and the signing secret, list, deliver to a
local receiver, log, remove; bad URLs and event names are expected errors (exit 1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from cli import app
from newsletter import db
from tests.support.webhook_receiver import webhook_receiver

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_TIMEZONE": "UTC",
        "NEWSLETTER_WEBHOOK_ALLOW_LOCAL": "true",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
    db.dispose_engine(values["NEWSLETTER_DATABASE_URL"])


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_add_prints_the_endpoints_id_and_signing_secret(env: dict[str, str]) -> None:
    out = run("webhooks", "add", "https://example.com/hooks", "--event", "campaign.sent")
    assert "webhook endpoint 1 for campaign.sent: https://example.com/hooks" in out
    assert "signing secret" in out and "whsec_" in out


def test_add_with_json_gives_id_and_secret(env: dict[str, str]) -> None:
    added = run("webhooks", "add", "https://example.com/hooks", "--json")
    assert added["id"] == 1 and added["events"] == []
    assert added["secret"].startswith("whsec_")
    Webhook(added["secret"])  # a secret the library accepts


def test_a_sign_up_is_delivered_logged_and_the_endpoint_removed(env: dict[str, str]) -> None:
    with webhook_receiver(500, 200) as receiver:
        added = run("webhooks", "add", receiver.url, "--json")
        run("subscribers", "add", "ann@example.com", "--json")
        first = run("webhooks", "deliver", "--json")
        listed = run("webhooks", "list")
    (request,) = receiver.received
    assert Webhook(added["secret"]).verify(request.body, request.headers)["type"] == (
        "subscriber.created"
    )
    assert first == {"delivered": 0, "retrying": 1, "failed": 0, "disabled": []}
    assert f"{added['id']}  {receiver.url}  all events  failing since" in listed
    log = run("webhooks", "log", str(added["id"]), "--json")
    assert [(a["event_type"], a["status_code"], a["outcome"]) for a in log] == [
        ("subscriber.created", 500, "retrying")
    ]
    assert "removed" in run("webhooks", "remove", str(added["id"]))
    assert run("webhooks", "list", "--json") == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["http://example.com/hooks"], "must be https://"),
        (["https://example.com/h", "--event", "subscriber.opened"], "unknown event"),
    ],
)
def test_a_bad_endpoint_is_one_line_and_exit_1(
    env: dict[str, str], args: list[str], words: str
) -> None:
    result = runner.invoke(app, ["webhooks", "add", *args])
    assert result.exit_code == 1  # in-process: output.run prints it as one "error:" line
    assert words in str(result.exception) and "\n" not in str(result.exception)


def test_the_log_of_an_unknown_endpoint_is_not_found(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["webhooks", "log", "7"])
    assert result.exit_code == 1
    assert str(result.exception) == "no webhook endpoint with id 7"
