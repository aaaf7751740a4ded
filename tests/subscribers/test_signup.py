"""Double opt-in: sign-up, the confirmation email, resend interval, confirm and welcome."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from newsletter.clock import utcnow
from newsletter.errors import InvalidEmail, NotFound, ProviderUnavailable, StateError, TokenExpired
from newsletter.mail import OutgoingMessage
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from subscribers.signup import ConfirmOutcome, SignUpOutcome, confirm, sign_up
from subscribers.suppression import is_suppressed
from subscribers.tokens import Purpose, Tokens
from tests.support.subscribers import (
    Nobody,
    html_of,
    link,
    messages,
    messages_to,
    outbox,
    signed_up,
    sqlite_only,
    text_of,
    token_of,
)


class FailingMailer:
    """A provider that is down (the one case a real provider cannot be made to do here)."""

    def send_message(self, message: OutgoingMessage) -> str:
        raise ProviderUnavailable("provider down", status=503)


def confirm_token(settings: Settings, address: str) -> str:
    return token_of(link(messages_to(settings, address)[-1], "confirm"))


def test_sign_up_creates_a_pending_subscriber(session: Session, settings: Settings) -> None:
    result = signed_up(session, settings, " Jane@Example.com ", name=" Jane ")
    assert result.outcome is SignUpOutcome.CREATED
    stored = session.get(Subscriber, result.subscriber.id)
    assert (stored.email, stored.name, stored.status, stored.source, stored.consent_version) == (
        "jane@example.com",
        "Jane",
        "pending",
        "form",
        settings.consent_version,
    )


def test_sign_up_records_the_consent_context(session: Session, settings: Settings) -> None:
    result = signed_up(
        session, settings, "jane@example.com", ip="198.51.100.7", user_agent="Firefox/130"
    )
    [event] = lifecycle.history(session, subscriber_id=result.subscriber.id)
    assert (
        event.from_status,
        event.to_status,
        event.reason,
        event.source,
        event.ip,
        event.user_agent,
        event.consent_version,
        event.detail,
    ) == (
        None,
        "pending",
        "signed up",
        "form",
        "198.51.100.7",
        "Firefox/130",
        settings.consent_version,
        {"consent_text": settings.consent_text},
    )


@sqlite_only
def test_sign_up_sends_one_confirmation_email(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com", name="Jane")
    [message] = messages(settings)
    assert message["To"] == "Jane <jane@example.com>"
    assert message["Subject"] == "Please confirm your subscription to Pain Relief Weekly"
    assert message["From"] == "Pain Relief Weekly <news@example.com>"


@sqlite_only
def test_confirmation_email_carries_only_the_confirm_link(
    session: Session, settings: Settings
) -> None:
    signed_up(session, settings, "jane@example.com")
    [message] = messages(settings)
    url = link(message, "confirm")
    assert set(re.findall(r'href="([^"]+)"', html_of(message))) == {url}
    assert re.findall(r"https?://\S+", text_of(message)) == ["http://127.0.0.1:8000.", url]


@sqlite_only
def test_confirmation_email_has_no_images_or_articles(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com")
    html = html_of(messages(settings)[0])
    assert "<img" not in html
    assert "Read the article" not in html


@sqlite_only
def test_confirmation_email_says_who_asks_and_why(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com")
    text = text_of(messages(settings)[0])
    assert settings.consent_text in text
    assert "asked for this address to receive Pain Relief Weekly" in text
    assert settings.postal_address in text
    assert "If you did not ask for this, ignore this email" in text


@sqlite_only
def test_confirmation_email_has_no_list_headers(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com")
    assert messages(settings)[0]["List-Unsubscribe"] is None


@sqlite_only
def test_invalid_address_stores_and_sends_nothing(session: Session, settings: Settings) -> None:
    with pytest.raises(InvalidEmail):
        sign_up(session, settings=settings, mailer=outbox(settings), email="not-an-address")
    assert session.exec(select(Subscriber)).all() == []
    assert messages(settings) == []


@sqlite_only
def test_repeat_within_the_interval_sends_nothing(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com")
    again = signed_up(session, settings, "jane@example.com")
    assert again.outcome is SignUpOutcome.THROTTLED
    assert len(messages(settings)) == 1


def test_repeat_after_the_interval_resends(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com")
    # Past the resend interval and the cap of one confirmation per address per hour.
    interval = max(timedelta(minutes=settings.confirmation_resend_minutes), timedelta(hours=1))
    later = utcnow() + interval + timedelta(seconds=1)
    again = signed_up(session, settings, "jane@example.com", now=later)
    assert again.outcome is SignUpOutcome.RESENT
    assert len(messages(settings)) == 2
    reasons = [e.reason for e in lifecycle.history(session, subscriber_id=again.subscriber.id)]
    assert reasons == ["signed up", "signed up again; confirmation resent"]


@sqlite_only
def test_sign_up_of_an_active_subscriber_sends_nothing(
    session: Session, settings: Settings
) -> None:
    signed_up(session, settings, "jane@example.com")
    confirm(
        session,
        settings=settings,
        mailer=outbox(settings),
        token=confirm_token(settings, "jane@example.com"),
    )
    session.commit()
    count = len(messages(settings))
    again = signed_up(session, settings, "jane@example.com")
    assert again.outcome is SignUpOutcome.ALREADY_ACTIVE
    assert len(messages(settings)) == count


def test_confirm_activates_and_records(session: Session, settings: Settings) -> None:
    result = signed_up(session, settings, "jane@example.com")
    confirmed = confirm(
        session,
        settings=settings,
        mailer=outbox(settings),
        token=confirm_token(settings, "jane@example.com"),
        ip="192.0.2.1",
        user_agent="Safari",
    )
    session.commit()
    assert confirmed.outcome is ConfirmOutcome.CONFIRMED
    stored = session.get(Subscriber, result.subscriber.id)
    assert stored.status == "active"
    assert stored.confirmed_at is not None
    last = lifecycle.history(session, subscriber_id=stored.id)[-1]
    assert (
        last.from_status,
        last.to_status,
        last.reason,
        last.ip,
        last.user_agent,
        last.consent_version,
    ) == (
        "pending",
        "active",
        "confirmed by email link",
        "192.0.2.1",
        "Safari",
        settings.consent_version,
    )


def test_confirm_sends_a_welcome_with_one_click_headers(
    session: Session, settings: Settings
) -> None:
    result = signed_up(session, settings, "jane@example.com")
    confirm(
        session,
        settings=settings,
        mailer=outbox(settings),
        token=confirm_token(settings, "jane@example.com"),
    )
    welcome = messages(settings)[-1]
    assert welcome["Subject"] == "Welcome to Pain Relief Weekly"
    unsubscribe = link(welcome, "unsubscribe")
    assert welcome["List-Unsubscribe"].strip() == f"<{unsubscribe}>"  # may be folded
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        Tokens(settings).verify(Purpose.UNSUBSCRIBE, token_of(unsubscribe)) == result.subscriber.id
    )
    assert "One email a week, on Tuesdays" in text_of(welcome)


@sqlite_only
def test_no_welcome_when_switched_off(session: Session, settings: Settings) -> None:
    cfg = settings.model_copy(update={"welcome_email": False})
    signed_up(session, cfg, "jane@example.com")
    confirm(session, settings=cfg, mailer=outbox(cfg), token=confirm_token(cfg, "jane@example.com"))
    assert len(messages(cfg)) == 1


@sqlite_only
def test_welcome_failure_does_not_undo_the_confirmation(
    session: Session, settings: Settings
) -> None:
    result = signed_up(session, settings, "jane@example.com")
    confirm(
        session,
        settings=settings,
        mailer=FailingMailer(),
        token=confirm_token(settings, "jane@example.com"),
    )
    session.commit()
    assert session.get(Subscriber, result.subscriber.id).status == "active"


@sqlite_only
def test_confirmation_failure_raises_for_the_door_to_roll_back(
    session: Session, settings: Settings
) -> None:
    with pytest.raises(ProviderUnavailable):
        sign_up(session, settings=settings, mailer=FailingMailer(), email="jane@example.com")


@sqlite_only
def test_confirm_twice_sends_one_welcome(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "jane@example.com")
    token = confirm_token(settings, "jane@example.com")
    confirm(session, settings=settings, mailer=outbox(settings), token=token)
    second = confirm(session, settings=settings, mailer=outbox(settings), token=token)
    assert second.outcome is ConfirmOutcome.ALREADY_ACTIVE
    assert len(messages(settings)) == 2


@sqlite_only
def test_expired_confirm_link_is_refused(session: Session, settings: Settings) -> None:
    result = signed_up(session, settings, "jane@example.com")
    old = Tokens(settings).make(
        Purpose.CONFIRM, result.subscriber, issued_at=utcnow() - timedelta(days=8)
    )
    with pytest.raises(TokenExpired):
        confirm(session, settings=settings, mailer=outbox(settings), token=old)


@sqlite_only
def test_confirm_link_of_a_removed_sign_up_is_not_found(
    session: Session, settings: Settings
) -> None:
    token = Tokens(settings).make(Purpose.CONFIRM, Nobody(12345))
    with pytest.raises(NotFound, match="please sign up again"):
        confirm(session, settings=settings, mailer=outbox(settings), token=token)


def test_old_confirm_link_never_resubscribes_after_unsubscribe(
    session: Session, settings: Settings
) -> None:
    result = signed_up(session, settings, "jane@example.com")
    token = confirm_token(settings, "jane@example.com")
    confirm(session, settings=settings, mailer=outbox(settings), token=token)
    lifecycle.unsubscribe(session, subscriber_id=result.subscriber.id, source="form")
    session.commit()
    with pytest.raises(StateError, match="left the list after the link was sent"):
        confirm(session, settings=settings, mailer=outbox(settings), token=token)
    assert is_suppressed(session, email="jane@example.com")


def test_unsubscribed_address_returns_only_through_a_new_opt_in(
    session: Session, settings: Settings
) -> None:
    result = signed_up(session, settings, "jane@example.com")
    confirm(
        session,
        settings=settings,
        mailer=outbox(settings),
        token=confirm_token(settings, "jane@example.com"),
    )
    lifecycle.unsubscribe(session, subscriber_id=result.subscriber.id, source="form")
    session.commit()

    again = signed_up(session, settings, "jane@example.com")
    assert again.outcome is SignUpOutcome.RETURNING
    assert again.subscriber.status == "pending"
    assert is_suppressed(session, email="jane@example.com")

    confirm(
        session,
        settings=settings,
        mailer=outbox(settings),
        token=confirm_token(settings, "jane@example.com"),
    )
    session.commit()
    assert session.get(Subscriber, result.subscriber.id).status == "active"
    assert not is_suppressed(session, email="jane@example.com")


def test_suppressed_address_without_a_row_can_sign_up_but_stays_suppressed(
    session: Session, settings: Settings
) -> None:
    from subscribers.models import SuppressionReason
    from subscribers.suppression import suppress

    suppress(session, email="gone@example.com", reason=SuppressionReason.ERASED)
    session.commit()
    result = signed_up(session, settings, "gone@example.com")
    assert result.outcome is SignUpOutcome.CREATED
    assert is_suppressed(session, email="gone@example.com")


def test_returning_sign_up_repeated_at_once_is_throttled(
    session: Session, settings: Settings
) -> None:
    subscriber = signed_up(session, settings, "jane@example.com").subscriber
    lifecycle.transition(session, subscriber, lifecycle.S.UNSUBSCRIBED, reason="x", source="cli")
    session.commit()
    first = signed_up(session, settings, "jane@example.com", now=utcnow() + timedelta(hours=1))
    second = signed_up(session, settings, "jane@example.com", now=utcnow() + timedelta(hours=1))
    assert (first.outcome, second.outcome) == (SignUpOutcome.RETURNING, SignUpOutcome.THROTTLED)
    assert len(messages(settings)) == 2
