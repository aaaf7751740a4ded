"""``newsletter worker`` and ``campaigns send --wait`` in queue mode (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app, output
from newsletter import db
from newsletter.errors import ConfigError
from tests.conftest import make_settings
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import add_subscribers
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workers import (
    environment,
    queue_settings,
    start_workers,
    stop_workers,
)

runner = CliRunner()


def test_a_worker_on_sqlite_is_refused_as_an_expected_error(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["worker"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigError)
    assert "PostgreSQL" in output.error_text(result.exception)


@pytest.mark.postgres
def test_send_wait_follows_the_workers_to_the_end(
    postgres_url: str,
    fake: FakeSendGrid,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = queue_settings(postgres_url, tmp_path, fake, worker_batch_size=50)
    engine = db.get_engine(postgres_url)
    db.upgrade(engine)
    add_subscribers(engine, 200)
    with Session(engine, expire_on_commit=False) as session:
        snippets = [make_snippet(session, settings, category="back-pain") for _ in range(3)]
        campaign_id = make_campaign(session, snippets).id
        session.commit()
    for name, value in environment(settings).items():
        if name.startswith("NEWSLETTER_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    workers = start_workers(settings, 1, tmp_path)
    try:
        result = runner.invoke(app, ["campaigns", "send", str(campaign_id), "--wait"])
    finally:
        stop_workers(workers)
    assert result.exit_code == 0, result.output
    assert "handed to the workers" in result.output
    assert f"campaign {campaign_id}: sent; sent 200" in result.output
    assert fake.recipients == 200


def test_send_on_sqlite_stays_inline(env: dict[str, str], tmp_path: Path) -> None:
    engine = db.get_engine(env["NEWSLETTER_DATABASE_URL"])
    add_subscribers(engine, 3)
    settings = make_settings(env["NEWSLETTER_DATABASE_URL"], tmp_path)
    with Session(engine, expire_on_commit=False) as session:
        snippets = [make_snippet(session, settings, category="back-pain") for _ in range(3)]
        campaign_id = make_campaign(session, snippets).id
        session.commit()
    result = runner.invoke(app, ["campaigns", "send", str(campaign_id)])
    assert result.exit_code == 0, result.output
    assert "handed to the workers" not in result.output
    assert f"campaign {campaign_id}: sent; sent 3" in result.output  # in this process
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


@pytest.mark.postgres
def test_db_upgrade_in_queue_mode_applies_the_queue_schema(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("NEWSLETTER_SENDER", "queue")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with db.get_engine(postgres_url).connect() as connection:
        there = connection.exec_driver_sql(
            "SELECT to_regclass(current_schema() || '.procrastinate_jobs') IS NOT NULL"
        ).scalar()
    assert there is True
