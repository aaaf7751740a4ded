"""Double opt-in: sign up (pending + confirmation email), confirm (active + welcome).

A sign-up never reveals whether the address is known: callers get an outcome for logs
and tests, and doors show the same page for every outcome. An address that left (or
was suppressed) comes back only here, and only once the new confirmation is clicked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from newsletter.clock import utcnow
from newsletter.errors import NotFound, ProviderError, StateError
from newsletter.mail import Mailer
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.addresses import clean_name, normalise_email
from subscribers.emails import confirmation_message, welcome_message
from subscribers.models import ConsentSource, Subscriber, SubscriberStatus
from subscribers.suppression import lift
from subscribers.tokens import Purpose, Tokens

S = SubscriberStatus
log = logging.getLogger(__name__)


class SignUpOutcome(StrEnum):
    CREATED = "created"  # new pending subscriber, confirmation sent
    RESENT = "resent"  # still pending, confirmation sent again
    THROTTLED = "throttled"  # still pending, a confirmation went out too recently
    RETURNING = "returning"  # had left; pending again, confirmation sent
    ALREADY_ACTIVE = "already_active"  # nothing to do


@dataclass(frozen=True)
class SignUpResult:
    subscriber: Subscriber
    outcome: SignUpOutcome

    @property
    def confirmation_sent(self) -> bool:
        return self.outcome in (
            SignUpOutcome.CREATED,
            SignUpOutcome.RESENT,
            SignUpOutcome.RETURNING,
        )


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_ACTIVE = "already_active"


@dataclass(frozen=True)
class ConfirmResult:
    subscriber: Subscriber
    outcome: ConfirmOutcome


def send_confirmation(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer,
    subscriber: Subscriber,
    now: datetime | None = None,
) -> str:
    """Send the confirmation request and note when; returns the provider's message id."""
    message_id = mailer.send_message(confirmation_message(settings, subscriber))
    subscriber.confirmation_sent_at = now or utcnow()
    session.add(subscriber)
    session.flush()
    return message_id


def _resend_due(settings: Settings, subscriber: Subscriber, now: datetime) -> bool:
    sent = subscriber.confirmation_sent_at
    if sent is None:
        return True
    if sent.tzinfo is None:  # SQLite hands back naive UTC
        sent = sent.replace(tzinfo=now.tzinfo)
    return now - sent >= timedelta(minutes=settings.confirmation_resend_minutes)


def sign_up(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer,
    email: str,
    name: str | None = None,
    source: ConsentSource = ConsentSource.FORM,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> SignUpResult:
    """Start (or restart) double opt-in for ``email``; raises InvalidEmail/InvalidInput."""
    address = normalise_email(email)
    clean = clean_name(name)
    now = now or utcnow()
    consent = {
        "source": source,
        "ip": ip,
        "user_agent": user_agent,
        "consent_version": settings.consent_version,
    }
    subscriber = lifecycle.find_by_email(session, email=address)

    if subscriber is None:
        subscriber = Subscriber(
            email=address,
            name=clean,
            status=S.PENDING.value,
            source=source.value,
            consent_version=settings.consent_version,
            created_at=now,
            status_changed_at=now,
        )
        session.add(subscriber)
        session.flush()
        lifecycle.record_event(
            session,
            subscriber,
            reason="signed up",
            initial=True,
            at=now,
            detail={"consent_text": settings.consent_text},
            **consent,
        )
        send_confirmation(session, settings=settings, mailer=mailer, subscriber=subscriber, now=now)
        return SignUpResult(subscriber, SignUpOutcome.CREATED)

    status = S(subscriber.status)
    if status is S.ACTIVE:
        return SignUpResult(subscriber, SignUpOutcome.ALREADY_ACTIVE)

    if status is S.PENDING:
        if not _resend_due(settings, subscriber, now):
            return SignUpResult(subscriber, SignUpOutcome.THROTTLED)
        if clean:
            subscriber.name = clean
        subscriber.consent_version = settings.consent_version
        lifecycle.record_event(
            session,
            subscriber,
            reason="signed up again; confirmation resent",
            at=now,
            detail={"consent_text": settings.consent_text},
            **consent,
        )
        send_confirmation(session, settings=settings, mailer=mailer, subscriber=subscriber, now=now)
        return SignUpResult(subscriber, SignUpOutcome.RESENT)

    # Unsubscribed, bounced or complained: a fresh double opt-in. Repeats are throttled
    # by the pending branch above, since the subscriber is pending from here on.
    if clean:
        subscriber.name = clean
    subscriber.consent_version = settings.consent_version
    subscriber.source = source.value
    lifecycle.transition(
        session,
        subscriber,
        S.PENDING,
        reason="signed up again after leaving",
        at=now,
        detail={"consent_text": settings.consent_text},
        **consent,
    )
    send_confirmation(session, settings=settings, mailer=mailer, subscriber=subscriber, now=now)
    return SignUpResult(subscriber, SignUpOutcome.RETURNING)


def confirm(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer,
    token: str,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> ConfirmResult:
    """Activate the subscriber a confirm token names; lifts any suppression of the address.

    Raises TokenExpired/TokenInvalid for a bad link, NotFound when the pending sign-up
    expired and was deleted, StateError when the person has left since the link was sent.
    """
    subscriber_id = Tokens(settings).verify(Purpose.CONFIRM, token)
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("this sign-up has expired or was removed; please sign up again")
    status = S(subscriber.status)
    if status is S.ACTIVE:
        return ConfirmResult(subscriber, ConfirmOutcome.ALREADY_ACTIVE)
    if status is not S.PENDING:
        raise StateError("this address left the list after the link was sent; please sign up again")
    now = now or utcnow()
    subscriber.confirmed_at = now
    lifecycle.transition(
        session,
        subscriber,
        S.ACTIVE,
        reason="confirmed by email link",
        source=subscriber.source,
        ip=ip,
        user_agent=user_agent,
        consent_version=subscriber.consent_version,
        at=now,
    )
    lift(session, email=subscriber.email)
    if settings.welcome_email:
        # The confirmation stands even if the welcome cannot be sent right now.
        try:
            mailer.send_message(welcome_message(settings, subscriber))
        except ProviderError as err:
            log.warning("welcome email to subscriber %s failed: %s", subscriber.id, err)
    return ConfirmResult(subscriber, ConfirmOutcome.CONFIRMED)
