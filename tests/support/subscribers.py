"""Helpers for the subscriber tests: the outbox as a mailbox, and a live uvicorn server."""

from __future__ import annotations

import email
import email.policy
import itertools
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from campaigns.delivery.providers.outbox import OutboxProvider
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from subscribers.signup import SignUpResult, sign_up


def outbox(settings: Settings) -> OutboxProvider:
    return OutboxProvider(settings.outbox_dir)


def messages(settings: Settings) -> list[EmailMessage]:
    """Every message in the outbox, oldest first (parsed from the .eml files)."""
    folder = Path(settings.outbox_dir)
    if not folder.exists():
        return []
    files = sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in files
    ]


def messages_to(settings: Settings, address: str) -> list[EmailMessage]:
    return [m for m in messages(settings) if address in str(m["To"])]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def link(message: EmailMessage, kind: str) -> str:
    """The first ``/<kind>/<token>`` link in the text part."""
    found = re.search(rf"https?://\S+/{kind}/[A-Za-z0-9._-]+", text_of(message))
    assert found, f"no {kind} link in {text_of(message)!r}"
    return found.group(0)


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def signed_up(session: Session, settings: Settings, address: str, **kwargs: Any) -> SignUpResult:
    result = sign_up(session, settings=settings, mailer=outbox(settings), email=address, **kwargs)
    session.commit()
    return result


def make_subscriber(
    session: Session,
    address: str = "jane@example.com",
    *,
    status: str = "active",
    name: str | None = None,
) -> Subscriber:
    """A subscriber row in ``status`` with its first history event, committed."""
    subscriber = Subscriber(email=address, name=name, status=status, source="form")
    session.add(subscriber)
    session.flush()
    lifecycle.record_event(
        session, subscriber, reason="test fixture", source="system", initial=True
    )
    session.commit()
    return subscriber


class AppSlot:
    """An ASGI app that forwards to whichever app a test plugs in, so one uvicorn server
    can serve a whole module (starting a server per test costs more than the test)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "no app plugged in"
        await self.app(scope, receive, send)


# For tests about parsing, pages or messages rather than storage: run them on SQLite only
# (overrides the sqlite+postgres parametrization of the ``database_url`` fixture).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def assert_history_exact(session: Session, subscriber: Subscriber) -> None:
    """The consent history is a chain: it starts from nothing, each row leaves the state
    the previous row entered, each change is an allowed move, and it ends in the status the
    row holds now. A row written from a stale read breaks the chain."""
    events = lifecycle.history(session, subscriber_id=subscriber.id)
    assert events, f"subscriber {subscriber.id} has no history"
    assert events[0].from_status is None, events[0]
    for before, after in itertools.pairwise(events):
        assert after.from_status == before.to_status, (
            f"subscriber {subscriber.id}: {after.reason!r} left {after.from_status}, "
            f"but the row before entered {before.to_status}"
        )
        if after.from_status != after.to_status:
            assert lifecycle.can_transition(
                lifecycle.S(after.from_status), lifecycle.S(after.to_status)
            ), after
    assert events[-1].to_status == subscriber.status, (subscriber.id, subscriber.status)


class Nobody:
    """A link owner no row matches: for links to an id that does not exist."""

    def __init__(self, subscriber_id: int) -> None:
        self.id = subscriber_id
        self.link_key = "5f1c9a3e7b2d4086e1f7a9c35b0d82e4"
