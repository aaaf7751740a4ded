"""Double opt-in: sign up (pending + confirmation email), confirm (active + welcome).

A sign-up never reveals whether the address is known: callers get an outcome for logs
and tests, and doors show the same page for every outcome, whether a mail went or not.
An address that left (or was suppressed) comes back only here, and only once the new
confirmation is clicked.

What a stranger can do with someone else's address is bounded: every mail passes the one
suppression guard (:func:`subscribers.suppression.refusal`), and confirmation emails to
one address are capped per hour and per week whatever the IP
(``NEWSLETTER_CONFIRM_MAX_PER_HOUR`` / ``_PER_WEEK``, counted in ``confirmation_send``
until a click answers them).
Concurrent requests for one address are serialised on its row
(:func:`subscribers.atomic.lock_subscriber`), so none answers 500 or undoes another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, delete, select

from newsletter import db
from newsletter.clock import utcnow
from newsletter.errors import NotFound, ProviderError, StateError
from newsletter.mail import Mailer
from newsletter.settings import Settings
from subscribers import atomic, lifecycle
from subscribers.addresses import clean_name, email_hash, normalise_email
from subscribers.emails import confirmation_message, welcome_message
from subscribers.models import ConfirmationSend, ConsentSource, Subscriber, SubscriberStatus
from subscribers.suppression import Mail, check_may_mail, lift, refusal
from subscribers.tokens import Purpose, Tokens

S = SubscriberStatus
log = logging.getLogger(__name__)


class SignUpOutcome(StrEnum):
    CREATED = "created"  # new pending subscriber, confirmation sent
    RESENT = "resent"  # still pending, confirmation sent again
    THROTTLED = "throttled"  # a confirmation went out too recently (interval or caps)
    RETURNING = "returning"  # had left; pending again, confirmation sent
    ALREADY_ACTIVE = "already_active"  # nothing to do
    SUPPRESSED = "suppressed"  # the form asked for a blocked address: nothing sent


@dataclass(frozen=True)
class SignUpResult:
    subscriber: Subscriber | None  # None only when SUPPRESSED and nothing is stored
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


# ---------------------------------------------------------------- confirmation emails


def confirmations_left(
    session: Session, *, settings: Settings, email: str, now: datetime | None = None
) -> bool:
    """True while ``email`` got fewer than ``settings.confirm_max_per_hour`` unanswered
    confirmation emails in the hour before ``now`` and fewer than ``confirm_max_per_week``
    in the week before, from any sign-up, IP, command or import.

    Unanswered: a click on a confirmation link proves the inbox's owner wanted them, so
    :func:`confirm` clears the count (someone who left by mistake can come straight back);
    only the owner can do that, so a stranger still gets no further than the caps.
    """
    now = now or utcnow()
    sent = session.exec(
        select(ConfirmationSend.sent_at).where(
            ConfirmationSend.email_hash == email_hash(email),
            col(ConfirmationSend.sent_at) > now - timedelta(weeks=1),
        )
    ).all()
    last_hour = sum(1 for at in sent if at > now - timedelta(hours=1))
    return last_hour < settings.confirm_max_per_hour and len(sent) < settings.confirm_max_per_week


def send_confirmation(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer,
    subscriber: Subscriber,
    now: datetime | None = None,
    self_service: bool = False,
) -> str | None:
    """Send the confirmation request and note when; returns the provider's message id, or
    None when the address has had its share of confirmations (nothing sent).

    Raises Suppressed when the suppression guard refuses the address (``self_service``:
    the person asked on the form) and ProviderError when the provider fails.
    """
    check_may_mail(
        session, email=subscriber.email, mail=Mail.CONFIRMATION, self_service=self_service
    )
    when = now or utcnow()
    if not confirmations_left(session, settings=settings, email=subscriber.email, now=when):
        return None
    message_id = mailer.send_message(confirmation_message(settings, subscriber))
    subscriber.confirmation_sent_at = when
    session.add(subscriber)
    session.add(ConfirmationSend(email_hash=email_hash(subscriber.email), sent_at=when))
    session.flush()
    return message_id


def _resend_due(settings: Settings, subscriber: Subscriber, now: datetime) -> bool:
    sent = subscriber.confirmation_sent_at
    if sent is None:
        return True
    if sent.tzinfo is None:  # SQLite hands back naive UTC
        sent = sent.replace(tzinfo=now.tzinfo)
    return now - sent >= timedelta(minutes=settings.confirmation_resend_minutes)


# ---------------------------------------------------------------- sign-up


@dataclass(frozen=True)
class _Ask:
    """One sign-up request, as the door passed it."""

    settings: Settings
    mailer: Mailer
    address: str
    name: str | None
    source: ConsentSource
    ip: str | None
    user_agent: str | None
    now: datetime | None
    timezone: str | None = None  # issue 16: the reader's IANA zone

    @property
    def self_service(self) -> bool:
        return self.source is ConsentSource.FORM

    def consent(self) -> dict:
        return {
            "source": self.source,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "consent_version": self.settings.consent_version,
            "detail": {"consent_text": self.settings.consent_text},
        }


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
    timezone: str | None = None,
) -> SignUpResult:
    """Start (or restart) double opt-in for ``email``.

    ``timezone`` (issue 16) is the reader's IANA zone name, already checked
    (newsletter.timezones); None keeps the one stored, if any.

    Raises InvalidEmail/InvalidInput for bad input, and Suppressed when an operator
    (``source`` other than the form) names a suppressed address; the form gets the
    SUPPRESSED outcome instead, so its page does not tell.
    """
    ask = _Ask(
        settings=settings,
        mailer=mailer,
        address=normalise_email(email),
        name=clean_name(name),
        source=source,
        ip=ip,
        user_agent=user_agent,
        now=now,
        timezone=timezone,
    )
    # Each turn either answers or saw a concurrent request change what it read: another
    # sign-up inserted the address first (answer as for a known address), or an expiry
    # or an erasure deleted the row before it could be taken (answer as for a new one).
    db.begin_write(session)
    for _ in range(3):
        known = lifecycle.find_by_email(session, email=ask.address)
        if known is None:
            created = _sign_up_new(session, ask)
            if created is not None:
                return created
            continue
        assert known.id is not None
        try:
            subscriber = atomic.lock_subscriber(session, subscriber_id=known.id)
        except NotFound:
            session.expunge(known)  # SQLite may hand its id to the next insert
            continue
        return _sign_up_known(session, ask, subscriber)
    raise StateError("this address changed while signing up; please try again")


def _blocked(session: Session, ask: _Ask) -> bool:
    """The suppression guard for this request: True (the form) or Suppressed (others)."""
    if ask.self_service:
        found = refusal(session, email=ask.address, mail=Mail.CONFIRMATION, self_service=True)
        return found is not None
    check_may_mail(session, email=ask.address, mail=Mail.CONFIRMATION)
    return False


def _send(session: Session, ask: _Ask, subscriber: Subscriber, now: datetime) -> None:
    send_confirmation(
        session,
        settings=ask.settings,
        mailer=ask.mailer,
        subscriber=subscriber,
        now=now,
        self_service=ask.self_service,
    )


def _sign_up_new(session: Session, ask: _Ask) -> SignUpResult | None:
    """A first sign-up; None when a concurrent one inserted the address first."""
    if _blocked(session, ask):
        return SignUpResult(None, SignUpOutcome.SUPPRESSED)
    now = ask.now or utcnow()
    subscriber = Subscriber(
        email=ask.address,
        name=ask.name,
        timezone=ask.timezone,
        status=S.PENDING.value,
        source=ask.source.value,
        consent_version=ask.settings.consent_version,
        created_at=now,
        status_changed_at=now,
    )
    if not atomic.add_new(session, subscriber):
        return None
    lifecycle.record_event(
        session, subscriber, reason="signed up", initial=True, at=now, **ask.consent()
    )
    if not confirmations_left(session, settings=ask.settings, email=ask.address, now=now):
        return SignUpResult(subscriber, SignUpOutcome.THROTTLED)
    _send(session, ask, subscriber, now)
    return SignUpResult(subscriber, SignUpOutcome.CREATED)


def _sign_up_known(session: Session, ask: _Ask, subscriber: Subscriber) -> SignUpResult:
    """A sign-up of an address on the list; ``subscriber`` is locked."""
    status = S(subscriber.status)
    if status is S.ACTIVE:
        return SignUpResult(subscriber, SignUpOutcome.ALREADY_ACTIVE)
    if _blocked(session, ask):
        return SignUpResult(subscriber, SignUpOutcome.SUPPRESSED)
    now = ask.now or utcnow()
    due = status is not S.PENDING or _resend_due(ask.settings, subscriber, now)
    if not due or not confirmations_left(
        session, settings=ask.settings, email=ask.address, now=now
    ):
        return SignUpResult(subscriber, SignUpOutcome.THROTTLED)
    if ask.name:
        subscriber.name = ask.name
    if ask.timezone:
        subscriber.timezone = ask.timezone
    subscriber.consent_version = ask.settings.consent_version
    if status is S.PENDING:
        lifecycle.record_event(
            session,
            subscriber,
            reason="signed up again; confirmation resent",
            at=now,
            **ask.consent(),
        )
        _send(session, ask, subscriber, now)
        return SignUpResult(subscriber, SignUpOutcome.RESENT)
    # Unsubscribed, bounced or complained: a fresh double opt-in. Repeats are throttled
    # by the pending branch above, since the subscriber is pending from here on.
    subscriber.source = ask.source.value
    lifecycle.transition(
        session,
        subscriber,
        S.PENDING,
        reason="signed up again after leaving",
        at=now,
        **ask.consent(),
    )
    _send(session, ask, subscriber, now)
    return SignUpResult(subscriber, SignUpOutcome.RETURNING)


# ---------------------------------------------------------------- confirm


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
    """Activate the subscriber a confirm token names; lifts the suppression of the address
    when the person may end it themselves (see suppression.lift).

    Raises TokenExpired/TokenInvalid for a bad link, NotFound when the pending sign-up
    expired and was deleted, StateError when the person has left since the link was sent
    (also when the unsubscribe came a moment before this click: it is never undone).
    """
    subscriber_id = Tokens(settings).check(session, Purpose.CONFIRM, token).subscriber_id
    try:
        subscriber = atomic.lock_subscriber(session, subscriber_id=subscriber_id)
    except NotFound as err:
        raise NotFound("this sign-up has expired or was removed; please sign up again") from err
    status = S(subscriber.status)
    if status is S.ACTIVE:
        return ConfirmResult(subscriber, ConfirmOutcome.ALREADY_ACTIVE)
    if status is not S.PENDING:
        raise StateError("this address left the list after the link was sent; please sign up again")
    now = now or utcnow()
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
    subscriber.confirmed_at = now
    session.add(subscriber)
    lift(session, email=subscriber.email)
    session.execute(
        delete(ConfirmationSend).where(
            col(ConfirmationSend.email_hash) == email_hash(subscriber.email)
        )
    )
    if settings.welcome_email:
        _welcome(session, settings=settings, mailer=mailer, subscriber=subscriber)
    return ConfirmResult(subscriber, ConfirmOutcome.CONFIRMED)


def _welcome(
    session: Session, *, settings: Settings, mailer: Mailer, subscriber: Subscriber
) -> None:
    """Send the welcome unless the guard refuses; the confirmation stands either way."""
    blocked = refusal(session, email=subscriber.email, mail=Mail.WELCOME)
    if blocked is not None:
        log.info("no welcome to subscriber %s: suppressed (%s)", subscriber.id, blocked.reason)
        return
    try:
        mailer.send_message(welcome_message(settings, subscriber))
    except ProviderError as err:
        log.warning("welcome email to subscriber %s failed: %s", subscriber.id, err)
