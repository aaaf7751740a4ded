"""Confirmation caps: at most one confirmation email per address per hour and three per
week, whatever the IP, the door or the path (issue 12, point 12); the form answers the
same whether a mail went or not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.clock import utcnow
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.csv_io import import_csv
from subscribers.erasure import erase
from subscribers.housekeeping import expire_pending, prune_confirmation_sends
from subscribers.models import ConfirmationSend, ConsentSource, Subscriber, SuppressionReason
from subscribers.signup import SignUpOutcome, confirm, confirmations_left, sign_up
from subscribers.suppression import suppress
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings
from tests.support.servers import free_port, live_server
from tests.support.subscribers import messages, messages_to, outbox, signed_up
from web.app import create_app  # moves to web.app with the web door's rebuild

JANE = "jane@example.com"


def at(start: datetime, **delta: float) -> datetime:
    return start + timedelta(**delta)


def outcomes(session: Session, settings: Settings, start: datetime, *offsets: dict) -> list[str]:
    return [
        signed_up(session, settings, JANE, now=at(start, **offset), ip=f"198.51.100.{n}").outcome
        for n, offset in enumerate(offsets)
    ]


def test_one_confirmation_per_hour_whatever_the_ip(session: Session, settings: Settings) -> None:
    start = utcnow()
    # 20 minutes is past the 15-minute resend interval, but not past the hourly cap.
    assert outcomes(
        session, settings, start, {}, {"minutes": 20}, {"minutes": 59}, {"minutes": 61}
    ) == ["created", "throttled", "throttled", "resent"]
    assert len(messages_to(settings, JANE)) == 2


def test_three_confirmations_per_week(session: Session, settings: Settings) -> None:
    start = utcnow()
    hourly = [{"hours": 1.01 * n} for n in range(5)]
    assert outcomes(session, settings, start, *hourly) == [
        "created",
        "resent",
        "resent",
        "throttled",
        "throttled",
    ]
    assert outcomes(session, settings, start, {"days": 6}, {"days": 7, "hours": 1.02}) == [
        "throttled",
        "resent",
    ]
    assert len(messages_to(settings, JANE)) == 4


def test_the_caps_come_from_the_settings(tmp_path: Path, database_url: str, engine: Engine) -> None:
    loose = make_settings(database_url, tmp_path, confirm_max_per_hour=3, confirm_max_per_week=4)
    with Session(engine, expire_on_commit=False) as session:
        start = utcnow()
        minutes = [{"minutes": 16 * n} for n in range(5)]
        assert outcomes(session, loose, start, *minutes) == [
            "created",
            "resent",
            "resent",
            "throttled",  # a fourth within the hour
            "resent",  # 64 minutes after the first: the fourth of the week
        ]


def test_cap_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    default = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (default.confirm_max_per_hour, default.confirm_max_per_week) == (1, 3)
    monkeypatch.setenv("NEWSLETTER_CONFIRM_MAX_PER_HOUR", "2")
    monkeypatch.setenv("NEWSLETTER_CONFIRM_MAX_PER_WEEK", "5")
    cfg = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (cfg.confirm_max_per_hour, cfg.confirm_max_per_week) == (2, 5)


def test_every_path_counts_toward_the_same_caps(session: Session, settings: Settings) -> None:
    """An import's confirmation, then the operator, then the form: one mail in the hour."""
    report = import_csv(
        session, settings=settings, mailer=outbox(settings), data=f"email\n{JANE}\n".encode()
    )
    session.commit()
    assert report.confirmations_sent == 1
    cli = sign_up(
        session,
        settings=settings,
        mailer=outbox(settings),
        email=JANE,
        source=ConsentSource.CLI,
        now=utcnow() + timedelta(minutes=30),
    )
    form = signed_up(session, settings, JANE, now=utcnow() + timedelta(minutes=45))
    assert (cli.outcome, form.outcome) == (SignUpOutcome.THROTTLED, SignUpOutcome.THROTTLED)
    assert len(messages(settings)) == 1


def test_a_returning_reader_is_capped_too(session: Session, settings: Settings) -> None:
    first = signed_up(session, settings, JANE).subscriber
    lifecycle.unsubscribe(session, subscriber_id=first.id, source="form")
    session.commit()
    again = signed_up(session, settings, JANE, now=utcnow() + timedelta(minutes=30))
    # Nothing changed: still unsubscribed, as no confirmation could go.
    assert (again.outcome, again.subscriber.status) == (SignUpOutcome.THROTTLED, "unsubscribed")
    assert len(messages(settings)) == 1


def test_a_click_answers_the_requests_so_a_reader_can_come_straight_back(
    session: Session, settings: Settings
) -> None:
    """Only the inbox's owner can click: their answered requests stop counting, so leaving
    by mistake and signing up again at once gets a confirmation, while a stranger's
    unanswered ones still cap it."""
    first = signed_up(session, settings, JANE).subscriber
    token = Tokens(settings).make(Purpose.CONFIRM, first)
    confirm(session, settings=settings, mailer=outbox(settings), token=token)
    lifecycle.unsubscribe(session, subscriber_id=first.id, source="form")
    session.commit()
    assert session.exec(select(ConfirmationSend)).all() == []
    again = signed_up(session, settings, JANE)
    assert again.outcome is SignUpOutcome.RETURNING
    assert signed_up(session, settings, JANE, now=utcnow() + timedelta(minutes=20)).outcome is (
        SignUpOutcome.THROTTLED
    )


def test_the_count_survives_an_expired_sign_up(
    tmp_path: Path, database_url: str, engine: Engine
) -> None:
    """Expiry deletes a first-time sign-up with its history; the caps still count its mail."""
    quick = make_settings(database_url, tmp_path, pending_expiry_days=1)
    with Session(engine, expire_on_commit=False) as session:
        start = utcnow()
        assert outcomes(session, quick, start, {}, {"hours": 1.01}, {"hours": 2.02}) == [
            "created",
            "resent",
            "resent",
        ]
        assert expire_pending(session, settings=quick, now=at(start, days=1, hours=3)) == 1
        session.commit()
        assert session.exec(select(Subscriber)).all() == []
        again = signed_up(session, quick, JANE, now=at(start, days=1, hours=4))
        assert again.outcome is SignUpOutcome.THROTTLED
        assert len(messages(quick)) == 3


def test_the_count_survives_erasure(session: Session, settings: Settings) -> None:
    signed_up(session, settings, JANE)
    erase(session, email=JANE)
    session.commit()
    assert signed_up(session, settings, JANE).outcome is SignUpOutcome.THROTTLED
    assert len(messages(settings)) == 1
    # Only the hash of the address is kept, like the suppression list's.
    stored = session.exec(select(ConfirmationSend)).all()
    assert [len(row.email_hash) for row in stored] == [64]


def test_housekeeping_prunes_what_no_cap_counts(session: Session, settings: Settings) -> None:
    signed_up(session, settings, JANE)
    assert prune_confirmation_sends(session, now=utcnow() + timedelta(days=6)) == 0
    assert prune_confirmation_sends(session, now=utcnow() + timedelta(days=7, minutes=1)) == 1
    assert confirmations_left(session, settings=settings, email=JANE)


# ---------------------------------------------------------------- the form's answer


@pytest.fixture
def site(settings: Settings, engine: Engine) -> Iterator[httpx.Client]:
    port = free_port()
    cfg = settings.model_copy(
        update={"base_url": f"http://127.0.0.1:{port}", "signup_challenge": False}
    )
    with live_server(create_app(cfg), port) as base, httpx.Client(base_url=base) as client:
        yield client


def main(response: httpx.Response) -> str:
    found = re.search(r"<main.*?</main>", response.text, re.S)
    assert found, response.text
    return found.group(0)


def test_the_form_answers_the_same_whether_a_mail_went_or_not(
    site: httpx.Client, session: Session, settings: Settings
) -> None:
    suppress(session, email="spam@example.com", reason=SuppressionReason.COMPLAINT)
    session.commit()
    form = {"consent": "yes"}
    sent = site.post("/subscribe", data={**form, "email": JANE})
    capped = site.post("/subscribe", data={**form, "email": JANE})
    blocked = site.post("/subscribe", data={**form, "email": "spam@example.com"})
    assert [r.status_code for r in (sent, capped, blocked)] == [200, 200, 200]
    assert main(sent) == main(capped) == main(blocked)
    assert [str(m["To"]) for m in messages(settings)] == [JANE]
