"""Outgoing webhooks for imported subscribers (issue 16 point 4): the CSV import writes its
rows in bulk, past lifecycle, so it announces them in bulk too, in each chunk's own
transaction: subscriber.created for each person imported, subscriber.confirmed as well
for those imported active with consent proof, and nothing for a row it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from campaigns import outgoing_webhooks
from campaigns.webhook_delivery import deliver_due
from cli import app
from newsletter import db
from newsletter.clock import utcnow
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookEndpoint, WebhookMessage
from subscribers import lifecycle
from subscribers.csv_io import IMPORT_CHUNK, ImportReport, import_csv
from subscribers.models import SuppressionReason
from subscribers.suppression import suppress
from tests.support.subscribers import make_subscriber, sqlite_only
from tests.support.webhook_receiver import webhook_receiver


def add_endpoint(session: Session, settings: Settings, url: str, *events: str) -> str:
    """A new endpoint for ``events`` (none: all); its signing secret."""
    _, secret = outgoing_webhooks.add_endpoint(
        session, settings=settings, url=url, events=list(events), actor="test"
    )
    session.commit()
    return secret


def run_import(session: Session, settings: Settings, text: str) -> ImportReport:
    report = import_csv(
        session, settings=settings, mailer=None, data=text.encode(), send_confirmations=False
    )
    session.commit()
    return report


def queued(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of every message written, in the order written."""
    rows = session.exec(select(WebhookMessage).order_by(WebhookMessage.id)).all()
    return [(m.event_type, json.loads(m.payload)["data"]) for m in rows]


def test_an_endpoint_for_created_receives_one_verified_message_per_imported_person(
    engine: Engine, session: Session, settings: Settings
) -> None:
    local = settings.model_copy(update={"webhook_allow_local": True})
    with webhook_receiver(200) as receiver:
        secret = add_endpoint(session, local, receiver.url, "subscriber.created")
        run_import(
            session,
            local,
            "email,name,consented_at\n"
            "ann@example.com,Ann,2025-03-01\nbob@example.com,Bob,\ncy@example.com,,\n",
        )
        report = deliver_due(engine, settings=local)
    assert report.delivered == 3
    payloads = [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]
    ids = {
        a: lifecycle.get_by_email(session, email=a).id
        for a in ("ann@example.com", "bob@example.com", "cy@example.com")
    }
    # The shape lifecycle gives a sign-up: the id and the address, nothing more.
    assert sorted((p["type"], p["data"]["email"], p["data"]) for p in payloads) == [
        ("subscriber.created", a, {"subscriber_id": ids[a], "email": a}) for a in sorted(ids)
    ]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 3


@sqlite_only
def test_rows_imported_with_consent_proof_are_also_announced_confirmed(
    session: Session, settings: Settings
) -> None:
    add_endpoint(session, settings, "https://hooks.example.com/all")
    run_import(session, settings, "email,consented_at\nann@example.com,2025-03-01\nbob@x.io,\n")
    ann = lifecycle.get_by_email(session, email="ann@example.com").id
    bob = lifecycle.get_by_email(session, email="bob@x.io").id
    assert queued(session) == [
        ("subscriber.created", {"subscriber_id": ann, "email": "ann@example.com"}),
        ("subscriber.created", {"subscriber_id": bob, "email": "bob@x.io"}),
        ("subscriber.confirmed", {"subscriber_id": ann, "email": "ann@example.com"}),
    ]


def test_an_import_without_endpoints_writes_no_messages(
    session: Session, settings: Settings
) -> None:
    report = run_import(session, settings, "email,consented_at\nann@example.com,2025-03-01\n")
    assert report.active == 1
    assert queued(session) == []


@sqlite_only
def test_endpoints_disabled_or_wanting_other_events_get_no_messages(
    session: Session, settings: Settings
) -> None:
    add_endpoint(session, settings, "https://hooks.example.com/campaigns", "campaign.sent")
    add_endpoint(session, settings, "https://hooks.example.com/off")
    off = session.exec(select(WebhookEndpoint).where(WebhookEndpoint.url.endswith("/off"))).one()
    off.disabled_at = utcnow()
    session.commit()
    run_import(session, settings, "email,consented_at\nann@example.com,2025-03-01\n")
    assert queued(session) == []


@sqlite_only
def test_refused_rows_write_no_messages(session: Session, settings: Settings) -> None:
    """Suppressed, already on the list, leaving in the file itself, malformed, duplicated:
    only the one new person is announced."""
    make_subscriber(session, "old@example.com")
    suppress(session, email="gone@example.com", reason=SuppressionReason.UNSUBSCRIBE)
    session.commit()
    add_endpoint(session, settings, "https://hooks.example.com/all")
    before = queued(session)
    report = run_import(
        session,
        settings,
        "email,status\nold@example.com,\ngone@example.com,\nleft@example.com,unsubscribed\n"
        "not-an-address,\nnew@example.com,\nNEW@example.com,\n",
    )
    assert (report.pending, report.unchanged, report.suppressed) == (1, 1, 2)
    new = lifecycle.get_by_email(session, email="new@example.com").id
    assert queued(session)[len(before) :] == [
        ("subscriber.created", {"subscriber_id": new, "email": "new@example.com"})
    ]


@sqlite_only
def test_messages_are_written_with_one_statement_per_chunk(
    sqlite_engine: Engine, session: Session, settings: Settings
) -> None:
    """2,500 rows, three chunks: three INSERTs into webhook_message, not one per row."""
    add_endpoint(session, settings, "https://hooks.example.com/created", "subscriber.created")
    inserts: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO webhook_message"):
            inserts.append(len(params) if isinstance(params, list) else 1)

    sa.event.listen(sqlite_engine, "before_cursor_execute", count)
    try:
        rows = "".join(f"p{n}@x.io\n" for n in range(2 * IMPORT_CHUNK + IMPORT_CHUNK // 2))
        run_import(session, settings, "email\n" + rows)
    finally:
        sa.event.remove(sqlite_engine, "before_cursor_execute", count)
    assert inserts == [IMPORT_CHUNK, IMPORT_CHUNK, IMPORT_CHUNK // 2]


def test_the_cli_import_is_delivered_by_webhooks_deliver(tmp_path: Path, monkeypatch: Any) -> None:
    """As a user does it: ``webhooks add``, ``subscribers import``, ``webhooks deliver``."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for key, value in {
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_WEBHOOK_ALLOW_LOCAL": "true",
    }.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "people.csv").write_text("email,consented_at\nann@example.com,2025-03-01\n")
    runner = CliRunner()
    try:
        with webhook_receiver(200) as receiver:
            added = json.loads(
                runner.invoke(app, ["webhooks", "add", receiver.url, "--json"]).stdout
            )
            imported = runner.invoke(app, ["subscribers", "import", "people.csv", "--json"])
            delivered = runner.invoke(app, ["webhooks", "deliver", "--json"])
    finally:
        db.dispose_engine(url)
    assert imported.exit_code == 0 and json.loads(imported.stdout)["active"] == 1
    assert json.loads(delivered.stdout)["delivered"] == 2
    types = [Webhook(added["secret"]).verify(r.body, r.headers)["type"] for r in receiver.received]
    assert types == ["subscriber.created", "subscriber.confirmed"]
