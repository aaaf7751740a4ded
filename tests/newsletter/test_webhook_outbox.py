"""newsletter/webhook_outbox.py: the outbox's pruning keeps what is still to be sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.webhook_outbox import (
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
    emit,
    prune,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_prune_drops_old_finished_messages_and_their_attempts_but_keeps_pending_ones(
    sqlite_engine: Engine,
) -> None:
    with Session(sqlite_engine) as session:
        session.add(WebhookEndpoint(url="https://example.com/h", events=[], secret="whsec_AAAA"))
        session.flush()
        old = NOW - timedelta(days=31)
        for status in MessageStatus:  # pending, delivered, failed: a month old
            emit(session, WebhookEvent.CAMPAIGN_SENT, {"campaign_id": 1}, at=old)
            session.exec(select(WebhookMessage)).all()[-1].status = status.value
        emit(session, WebhookEvent.CAMPAIGN_SENT, {"campaign_id": 2}, at=NOW)  # pending, new
        delivered = session.exec(select(WebhookMessage)).all()[1]
        assert delivered.id is not None
        session.add(WebhookAttempt(message_id=delivered.id, endpoint_id=1, outcome="delivered"))
        session.flush()
        assert prune(session, now=NOW, retention_days=30) == 2
        left = session.exec(select(WebhookMessage.status, WebhookMessage.created_at)).all()
        assert sorted(left) == [("pending", old), ("pending", NOW)]
        assert session.exec(select(WebhookAttempt)).all() == []
