"""Delivering outgoing webhooks (issue 16 point 4): what is due, on the Standard
Webhooks specification's schedule (standardwebhooks.com), signed by its library.

:func:`deliver_due` sends what is due, outside any transaction: a JSON POST with
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256 by the
``standardwebhooks`` library, with the endpoint's ``whsec_`` secret). A 2xx answer is a
delivery; anything else (another status, a redirect, no answer within
``webhook_timeout_seconds``, an address newsletter/net.py's policy refuses) is retried
after :data:`RETRY_DELAYS`, then given up. An endpoint whose deliveries have failed
without a success for ``webhook_disable_after_days`` is disabled, with a warning in the
log and the reason on its row (``webhooks list``). Endpoints and the log:
campaigns/outgoing_webhooks.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from standardwebhooks.webhooks import Webhook

from newsletter import db, metrics, net
from newsletter.clock import as_utc, utcnow
from newsletter.errors import FetchFailed
from newsletter.settings import Settings
from newsletter.webhook_outbox import (
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

log = logging.getLogger(__name__)

# The specification's retry schedule after the first, immediate try.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
CLAIM = timedelta(minutes=2)  # a message being tried is hidden this long from other deliverers
BATCH = 100  # messages per round of deliver_due
ANSWER_MAX_BYTES = 16 * 1024  # what we read of a receiver's answer (and then drop)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
USER_AGENT = "newsletter-pipeline-webhooks/1 (Standard Webhooks)"


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` did; ``disabled``: ids of endpoints it disabled."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return self.delivered + self.retrying + self.failed


@dataclass(frozen=True)
class _Claimed:
    message_id: int
    msg_id: str
    payload: str
    endpoint_id: int
    url: str
    secret: str


@dataclass(frozen=True)
class _Answer:
    status_code: int | None
    error: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code <= 299


def deliver_due(
    engine: Engine, *, settings: Settings, now: datetime | None = None, limit: int = BATCH
) -> DeliveryReport:
    """Try every message due at ``now`` (at most ``limit``), each in its own short
    transactions: claimed, then posted with no transaction open, then recorded.

    ``now`` decides what is due and when the next try is (a controlled clock in tests);
    the signature's ``webhook-timestamp`` is always the real time of sending, which is
    what a receiver compares with its own clock. Several deliverers may run at once: a
    message is claimed by one only (compare-and-set on its next attempt time).
    """
    now = as_utc(now or utcnow())
    report = DeliveryReport()
    for claimed in _claim(engine, now, limit):
        if claimed.endpoint_id in report.disabled:
            continue  # disabled a moment ago in this round: its messages stay undelivered
        answer = _post(settings, claimed)
        with db.session_scope(engine) as session:
            _record(session, settings, claimed, answer, now, report)
    return report


def due_count(engine: Engine, *, now: datetime) -> int:
    """Messages due at ``now`` for enabled endpoints: the scheduler's cheap first look."""
    with db.session_scope(engine) as session:
        return int(session.execute(_due(now, sa.func.count())).scalar_one())


def _due(now: datetime, *columns: object) -> sa.Select:  # type: ignore[type-arg]
    return (
        sa.select(*columns)  # type: ignore[call-overload]
        .select_from(WebhookMessage)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookMessage.endpoint_id))
        .where(
            col(WebhookMessage.status) == MessageStatus.PENDING.value,
            col(WebhookMessage.next_attempt_at) <= now,
            col(WebhookEndpoint.disabled_at).is_(None),
        )
    )


def _claim(engine: Engine, now: datetime, limit: int) -> list[_Claimed]:
    claimed: list[_Claimed] = []
    with db.session_scope(engine) as session:
        db.begin_write(session)  # SQLite: the write lock first, then read what to claim
        query = _due(now, WebhookMessage, WebhookEndpoint).order_by(
            col(WebhookMessage.next_attempt_at), col(WebhookMessage.id)
        )
        for message, endpoint in session.execute(query.limit(limit)).all():
            taken = session.execute(
                sa.update(WebhookMessage)
                .where(
                    col(WebhookMessage.id) == message.id,
                    col(WebhookMessage.status) == MessageStatus.PENDING.value,
                    col(WebhookMessage.next_attempt_at) == message.next_attempt_at,
                )
                .values(next_attempt_at=now + CLAIM)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(
                    _Claimed(
                        message.id,
                        message.msg_id,
                        message.payload,
                        endpoint.id,
                        endpoint.url,
                        endpoint.secret,
                    )
                )
    return claimed


def _allow_private(settings: Settings, url: str) -> bool:
    """Webhooks' own decision, not ``fetch_allow_private`` (for intranet feeds): a private
    address only for a local receiver with ``webhook_allow_local``; link-local never."""
    host = (urlsplit(url).hostname or "").lower()
    return settings.webhook_allow_local and host in LOCAL_HOSTS


def sign(secret: str, msg_id: str, at: datetime, payload: str) -> dict[str, str]:
    """The specification's three headers for ``payload`` sent at ``at``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, payload),
    }


def _post(settings: Settings, claimed: _Claimed) -> _Answer:
    """POST one message; never raises for what the receiver or the network does."""
    headers = {"Content-Type": "application/json"}
    headers.update(sign(claimed.secret, claimed.msg_id, utcnow(), claimed.payload))
    began = time.monotonic()
    status: int | None = None
    error = ""
    try:
        with net.open_url(
            claimed.url,
            method="POST",
            body=claimed.payload.encode("utf-8"),
            headers=headers,
            deadline_seconds=settings.webhook_timeout_seconds,
            allow_private=_allow_private(settings, claimed.url),
            allow_link_local=False,  # 169.254.169.254 is a cloud's metadata service
            user_agent=USER_AGENT,
            max_redirects=0,  # a redirect is a failure: the receiver's URL is what we signed for
        ) as response:
            status = response.status
            response.read(ANSWER_MAX_BYTES)
    except FetchFailed as err:
        redirected = err.reason.startswith("more than 0 redirects")
        error = "answered with a redirect, which is not followed" if redirected else err.reason
    if status is not None and not 200 <= status <= 299:
        error = f"HTTP {status}"
    return _Answer(status, error, int((time.monotonic() - began) * 1000))


def _record(
    session: Session,
    settings: Settings,
    claimed: _Claimed,
    answer: _Answer,
    now: datetime,
    report: DeliveryReport,
) -> None:
    """The attempt's row, the message's next step and the endpoint's failure streak."""
    db.begin_write(session)
    message = session.get(WebhookMessage, claimed.message_id)
    endpoint = session.get(WebhookEndpoint, claimed.endpoint_id)
    if message is None or endpoint is None:  # removed while we were posting
        return
    message.attempts += 1
    if answer.delivered:
        outcome = MessageStatus.DELIVERED.value
        message.status, message.delivered_at, message.next_attempt_at = outcome, now, None
        endpoint.failing_since = None
        report.delivered += 1
    else:
        outcome = _failed(message, endpoint, settings, now, answer, report)
    session.add(message)
    session.add(endpoint)
    session.add(
        WebhookAttempt(
            message_id=claimed.message_id,
            endpoint_id=claimed.endpoint_id,
            at=now,
            status_code=answer.status_code,
            outcome=outcome,
            error=answer.error[:500],
            duration_ms=answer.duration_ms,
        )
    )
    metrics.webhook_attempt(outcome)


def _failed(
    message: WebhookMessage,
    endpoint: WebhookEndpoint,
    settings: Settings,
    now: datetime,
    answer: _Answer,
    report: DeliveryReport,
) -> str:
    """A failed try: retry on schedule, give up, or disable a long-failing endpoint."""
    endpoint.failing_since = endpoint.failing_since or now
    limit = timedelta(days=settings.webhook_disable_after_days)
    if endpoint.disabled_at is None and now - endpoint.failing_since >= limit:
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M}Z "
            f"(NEWSLETTER_WEBHOOK_DISABLE_AFTER_DAYS={settings.webhook_disable_after_days:g}); "
            f"last: {answer.error}"
        )
        log.warning(
            "outgoing webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason
        )
        message.status, message.next_attempt_at = MessageStatus.FAILED.value, None
        assert endpoint.id is not None
        report.disabled.append(endpoint.id)
        report.failed += 1
        return "disabled"
    if message.attempts <= len(RETRY_DELAYS):
        message.next_attempt_at = now + RETRY_DELAYS[message.attempts - 1]
        report.retrying += 1
        return "retrying"
    message.status, message.next_attempt_at = MessageStatus.FAILED.value, None
    report.failed += 1
    return MessageStatus.FAILED.value
