"""One suppression guard in front of every mail the subscriber room starts (issue 12, point 4).

Each way mail to an address can start is tried with an erased address and with a
suppressed one: the sign-up form, ``subscribers add`` (the room function and the real
command), a CSV import, a resent confirmation and the welcome. Only the person's own
sign-up on the form may ask an address that left by choice (or was erased) to confirm
again; a complaint or a hard bounce blocks every mail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from newsletter.clock import utcnow
from newsletter.errors import Suppressed
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.csv_io import import_csv
from subscribers.erasure import erase
from subscribers.models import ConsentSource, Subscriber, SuppressionReason
from subscribers.signup import SignUpOutcome, confirm, send_confirmation, sign_up
from subscribers.suppression import (
    Mail,
    check_may_mail,
    find_suppression,
    is_suppressed,
    lift,
    refusal,
    refusals,
    suppress,
)
from subscribers.tokens import Purpose, Tokens
from tests.support.subscribers import make_subscriber, messages, messages_to, outbox, signed_up

R = SuppressionReason
NEWSLETTER = Path(sys.executable).parent / "newsletter"


def erased(session: Session, address: str = "gone@example.com") -> str:
    make_subscriber(session, address)
    erase(session, email=address)
    session.commit()
    return address


def blocked(session: Session, reason: R, address: str = "blocked@example.com") -> str:
    suppress(session, email=address, reason=reason)
    session.commit()
    return address


def add(session: Session, settings: Settings, address: str):
    """What `newsletter subscribers add ADDRESS` calls."""
    return sign_up(
        session, settings=settings, mailer=outbox(settings), email=address, source=ConsentSource.CLI
    )


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("reason", "form_may_ask_to_confirm"),
    [
        (R.UNSUBSCRIBE, True),
        (R.ERASED, True),
        (R.SOFT_BOUNCES, True),
        (R.HARD_BOUNCE, False),
        (R.INVALID, False),
        (R.COMPLAINT, False),
        (R.MANUAL, False),
    ],
)
def test_the_rule_for_each_reason(
    session: Session, reason: R, form_may_ask_to_confirm: bool
) -> None:
    address = blocked(session, reason)
    form = refusal(session, email=address, mail=Mail.CONFIRMATION, self_service=True)
    assert (form is None) is form_may_ask_to_confirm
    assert refusal(session, email=address, mail=Mail.CONFIRMATION) is not None
    assert refusal(session, email=address, mail=Mail.WELCOME) is not None
    assert refusal(session, email=address, mail=Mail.WELCOME, self_service=True) is not None
    assert refusal(session, email="free@example.com", mail=Mail.WELCOME) is None


def test_refusals_checks_a_whole_chunk_in_one_go(session: Session) -> None:
    blocked(session, R.COMPLAINT, "a@example.com")
    blocked(session, R.UNSUBSCRIBE, "b@example.com")
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    assert sorted(refusals(session, emails=emails, mail=Mail.CONFIRMATION)) == [
        "a@example.com",
        "b@example.com",
    ]
    form = refusals(session, emails=emails, mail=Mail.CONFIRMATION, self_service=True)
    assert sorted(form) == ["a@example.com"]


def test_check_may_mail_names_the_reason(session: Session) -> None:
    address = erased(session)
    with pytest.raises(Suppressed, match=r"suppression list \(erased\).*signing up on the form"):
        check_may_mail(session, email=address, mail=Mail.CONFIRMATION)


def test_a_confirmed_opt_in_lifts_only_what_the_person_may_end(session: Session) -> None:
    blocked(session, R.UNSUBSCRIBE, "left@example.com")
    blocked(session, R.COMPLAINT, "spam@example.com")
    assert lift(session, email="left@example.com") is True
    assert lift(session, email="spam@example.com") is False
    assert find_suppression(session, email="spam@example.com").reason == "complaint"


# ---------------------------------------------------------------- the sign-up form


def test_form_sign_up_of_an_erased_address_asks_once_to_confirm(
    session: Session, settings: Settings
) -> None:
    """Erasure is the person's choice, and so is coming back: one confirmation request,
    and the address stays suppressed until it is clicked (tests/subscribers/test_erasure.py)."""
    address = erased(session)
    result = signed_up(session, settings, address)
    assert result.outcome is SignUpOutcome.CREATED
    assert len(messages_to(settings, address)) == 1
    assert is_suppressed(session, email=address)


@pytest.mark.parametrize("reason", [R.HARD_BOUNCE, R.COMPLAINT])
def test_form_sign_up_of_a_blocked_address_sends_and_stores_nothing(
    session: Session, settings: Settings, reason: R
) -> None:
    address = blocked(session, reason)
    result = signed_up(session, settings, address)
    assert (result.outcome, result.subscriber, result.confirmation_sent) == (
        SignUpOutcome.SUPPRESSED,
        None,
        False,
    )
    assert messages(settings) == []
    assert session.exec(select(Subscriber)).all() == []


def test_form_sign_up_of_a_reader_who_complained_sends_nothing(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session, "spam@example.com")
    lifecycle.record_complaint(session, subscriber_id=subscriber.id)
    session.commit()
    result = signed_up(session, settings, "spam@example.com")
    assert result.outcome is SignUpOutcome.SUPPRESSED
    assert session.get(Subscriber, subscriber.id).status == "complained"
    assert messages(settings) == []


# ---------------------------------------------------------------- subscribers add


def test_add_refuses_an_erased_address(session: Session, settings: Settings) -> None:
    address = erased(session)
    with pytest.raises(Suppressed, match=r"gone@example.com is on the suppression list \(erased\)"):
        add(session, settings, address)
    session.rollback()
    assert messages(settings) == []
    assert session.exec(select(Subscriber)).all() == []


def test_add_refuses_a_reader_who_unsubscribed(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session, "left@example.com")
    lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    session.commit()
    with pytest.raises(Suppressed, match=r"\(unsubscribe\)"):
        add(session, settings, "left@example.com")
    session.rollback()
    assert session.get(Subscriber, subscriber.id).status == "unsubscribed"
    assert messages(settings) == []


def test_the_add_command_refuses_an_erased_address_in_one_line(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    address = erased(session)
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": settings.database_url,
        "NEWSLETTER_OUTBOX_DIR": str(settings.outbox_dir),
        "NEWSLETTER_SECRET_KEY": settings.secret_key or "",
        "NEWSLETTER_POSTAL_ADDRESS": settings.postal_address or "",
        "NEWSLETTER_PROVIDER": "outbox",
    }
    done = subprocess.run(
        [str(NEWSLETTER), "subscribers", "add", address],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done
    assert done.stderr.startswith("error: gone@example.com is on the suppression list (erased)")
    assert len(done.stderr.strip().splitlines()) == 1
    assert messages(settings) == []


# ---------------------------------------------------------------- CSV import


@pytest.mark.parametrize("kind", ["erased", "hard bounce"])
def test_import_neither_adds_nor_mails_a_suppressed_address(
    session: Session, settings: Settings, kind: str
) -> None:
    address = erased(session) if kind == "erased" else blocked(session, R.HARD_BOUNCE)
    report = import_csv(
        session,
        settings=settings,
        mailer=outbox(settings),
        data=f"email,name\n{address},X\nnew@example.com,Y\n".encode(),
    )
    session.commit()
    assert (report.suppressed, report.pending, report.confirmations_sent) == (1, 1, 1)
    assert [m["To"] for m in messages(settings)] == ["Y <new@example.com>"]
    assert lifecycle.find_by_email(session, email=address) is None


# ---------------------------------------------------------------- resent confirmations


def test_resend_to_a_pending_address_suppressed_since_is_refused(
    session: Session, settings: Settings
) -> None:
    """A sign-up added by an operator, then the address complained (a forwarded mail, a
    provider's feedback loop): neither the form nor the operator may mail it again."""
    assert add(session, settings, "pending@example.com").outcome is SignUpOutcome.CREATED
    session.commit()
    blocked(session, R.COMPLAINT, "pending@example.com")
    later = utcnow() + timedelta(hours=2)  # past the resend interval and the hourly cap
    again = signed_up(session, settings, "pending@example.com", now=later)
    assert again.outcome is SignUpOutcome.SUPPRESSED
    with pytest.raises(Suppressed, match=r"\(complaint\)"):
        sign_up(
            session,
            settings=settings,
            mailer=outbox(settings),
            email="pending@example.com",
            source=ConsentSource.CLI,
            now=later,
        )
    session.rollback()
    assert len(messages(settings)) == 1


def test_send_confirmation_itself_refuses_a_suppressed_address(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session, "direct@example.com", status="pending")
    blocked(session, R.UNSUBSCRIBE, "direct@example.com")
    with pytest.raises(Suppressed):
        send_confirmation(
            session, settings=settings, mailer=outbox(settings), subscriber=subscriber
        )
    assert messages(settings) == []


# ---------------------------------------------------------------- the welcome


def test_no_welcome_to_an_address_blocked_before_the_click(
    session: Session, settings: Settings
) -> None:
    subscriber = signed_up(session, settings, "late@example.com").subscriber
    blocked(session, R.COMPLAINT, "late@example.com")
    token = Tokens(settings).make(Purpose.CONFIRM, subscriber)
    confirm(session, settings=settings, mailer=outbox(settings), token=token)
    session.commit()
    subjects = [m["Subject"] for m in messages_to(settings, "late@example.com")]
    assert subjects == ["Please confirm your subscription to Pain Relief Weekly"]
    # The click is recorded; the complaint still stops every mail, the welcome included.
    assert session.get(Subscriber, subscriber.id).status == "active"
    assert find_suppression(session, email="late@example.com").reason == "complaint"


def test_welcome_after_a_return_the_person_confirmed(session: Session, settings: Settings) -> None:
    address = erased(session)
    subscriber = signed_up(session, settings, address).subscriber
    token = Tokens(settings).make(Purpose.CONFIRM, subscriber)
    confirm(session, settings=settings, mailer=outbox(settings), token=token)
    session.commit()
    subjects = [m["Subject"] for m in messages_to(settings, address)]
    assert subjects[-1] == "Welcome to Pain Relief Weekly"
    assert not is_suppressed(session, email=address)
