"""The people on the list as the console and the API see and change them (issue 14).

One function per thing a marketer does, each written to the audit log
(``newsletter.audit``) with who did it. The audit log names readers by subscriber id,
never by address: an erasure must leave no address behind, and the log is append-only.
Reading a person brings both rooms together: their subscription and consent history
(``subscribers.directory``) and what our emails recorded (deliveries and events).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from campaigns.tracking import subject_access
from campaigns.tracking.erasure import erase_person
from newsletter import audit
from newsletter.mail import Mailer
from newsletter.settings import Settings
from subscribers import directory, lifecycle
from subscribers.csv_io import ImportReport, import_csv
from subscribers.erasure import ErasureResult
from subscribers.models import ConsentSource
from subscribers.signup import SignUpResult, sign_up


@dataclass(frozen=True)
class Person:
    """A subscriber's record and history, the deliveries of our emails to them (newest
    first) and the provider events about them (newest first), as
    :func:`campaigns.tracking.subject_access.subject_access` lists them."""

    record: directory.SubscriberRecord
    deliveries: list[dict[str, Any]]
    events: list[dict[str, Any]]


def person(session: Session, *, subscriber_id: int) -> Person:
    """Everything the console shows about subscriber ``subscriber_id``; NotFound when
    there is none (erased, or never was)."""
    subscriber = lifecycle.get_subscriber(session, subscriber_id=subscriber_id)
    record = directory.subscriber_record(session, email=subscriber.email)
    access = subject_access.subject_access(session, subscriber_id=subscriber_id)
    return Person(
        record=record,
        deliveries=list(reversed(access["deliveries"])),
        events=list(reversed(access["events"])),
    )


def add(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer,
    email: str,
    name: str | None,
    actor: str,
    source: ConsentSource = ConsentSource.CONSOLE,
) -> SignUpResult:
    """Start double opt-in for ``email`` as an operator (``signup.sign_up``: a
    confirmation email, pending until clicked); Suppressed for a suppressed address,
    InvalidEmail for a malformed one."""
    result = sign_up(
        session, settings=settings, mailer=mailer, email=email, name=name, source=source
    )
    subscriber = result.subscriber
    audit.record(
        session,
        actor,
        "subscriber.add",
        "subscriber",
        subscriber.id if subscriber is not None else "-",
        after={"status": subscriber.status if subscriber else None, "outcome": result.outcome},
    )
    return result


def import_rows(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer | None,
    data: bytes,
    where: str,
    actor: str,
    on_row: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """``subscribers.csv_io.import_csv`` (good rows kept, bad rows reported, confirmation
    emails sent unless ``mailer`` is None), audit-logged with its counts."""
    report = import_csv(
        session,
        settings=settings,
        mailer=mailer,
        data=data,
        where=where,
        send_confirmations=mailer is not None,
        on_row=on_row,
    )
    counts = {k: v for k, v in report.as_dict().items() if k != "problems"}
    audit.record(
        session,
        actor,
        "subscriber.import",
        "csv",
        where,
        after={**counts, "bad_rows": len(report.problems)},
    )
    return report


def erase(session: Session, *, email: str, actor: str) -> ErasureResult:
    """Erase ``email`` (GDPR art. 17) as ``newsletter subscribers erase`` does: the record,
    history and event details go; the address stays only as a suppression hash. NotFound
    when nothing is held. The audit log keeps the subscriber id and the hash."""
    result, scrubbed = erase_person(session, email=email)
    audit.record(
        session,
        actor,
        "subscriber.erase",
        "subscriber",
        result.subscriber_id if result.subscriber_id is not None else "-",
        after={"email_hash": result.email_hash, "provider_events_scrubbed": scrubbed},
    )
    return result
