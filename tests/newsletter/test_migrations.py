"""The hand-written migrations produce exactly the schema the models describe."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import campaigns.models  # noqa: F401 - registers tables
import newsletter.models  # noqa: F401
import subscribers.models  # noqa: F401
from campaigns.content import sources  # noqa: F401 - snippet_source (issue 14)
from campaigns.delivery.workers import shared_rate  # noqa: F401 - send_rate_bucket (issue 17)
from newsletter import accounts, audit, db, webhook_outbox  # noqa: F401 - console_user, audit_log, webhooks
from subscribers import challenge, ratelimit  # noqa: F401 - registers their tables


def _ours(name: str | None, kind: str, _parent: object) -> bool:
    """procrastinate's tables (queue mode, PostgreSQL) are the library's, not our models."""
    return not (kind == "table" and (name or "").startswith("procrastinate_"))


def test_migrated_schema_matches_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _ours})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_sqlite_gets_no_procrastinate_schema(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        names = sa.inspect(connection).get_table_names()
    assert "send_rate_bucket" in names and not any(n.startswith("procrastinate") for n in names)


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision() == db.revisions()[-1]


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision() == db.revisions()[-1]


# (kind stored by 0003, raw event, bounce type in the payload) -> kind stored by 0004
EVENT_KINDS = [
    ("processed", "processed", None, "queued"),
    ("delivered", "delivered", None, "delivered"),
    ("deferred", "deferred", None, "deferred"),
    ("open", "open", None, "opened"),
    ("click", "click", None, "clicked"),
    ("bounce_hard", "bounce", "bounce", "bounced"),
    ("bounce_hard", "bounce", None, "bounced"),
    ("bounce_soft", "bounce", " Blocked ", "bounced"),
    ("dropped", "dropped", None, "rejected"),
    ("spam_report", "spamreport", None, "complained"),
    ("unsubscribe", "unsubscribe", None, "unsubscribed"),
    ("group_unsubscribe", "group_unsubscribe", None, "unsubscribed"),
    ("group_resubscribe", "group_resubscribe", None, "subscribed"),
    ("unknown", "account_review", None, "unknown"),
]
_event = sa.table(
    "tracking_event",
    sa.column("id", sa.Integer),
    sa.column("provider", sa.String),
    sa.column("event_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("raw_event", sa.String),
    sa.column("machine", sa.Boolean),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("payload", sa.JSON),
)


def _kinds(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(_event.c.kind).order_by(_event.c.id)).scalars())


@pytest.mark.parametrize("rounds", [1, 2], ids=["once", "twice"])
def test_0004_rewrites_stored_event_kinds_both_ways(engine: Engine, rounds: int) -> None:
    db.downgrade(engine, "0003")
    at = datetime(2026, 11, 24, 9, tzinfo=UTC)
    rows = [
        {
            "provider": "sendgrid",
            "event_id": f"e{number}",
            "kind": old,
            "raw_event": raw,
            "machine": False,
            "occurred_at": at,
            "received_at": at,
            "payload": {"event": raw, **({"type": bounce_type} if bounce_type else {})},
        }
        for number, (old, raw, bounce_type, _new) in enumerate(EVENT_KINDS)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(_event), rows)
    for _ in range(rounds):
        db.upgrade(engine)
        assert _kinds(engine) == [new for _old, _raw, _type, new in EVENT_KINDS]
        db.downgrade(engine, "0003")
        assert _kinds(engine) == [old for old, _raw, _type, _new in EVENT_KINDS]
    db.upgrade(engine)
