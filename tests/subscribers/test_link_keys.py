"""A link belongs to one person forever (issue 12.2), over real HTTP under uvicorn on
SQLite and PostgreSQL: an erased person's confirm, unsubscribe and preferences links, or
those of an earlier sign-up of the same address, answer "this link is not valid" and
change nothing, even when the id names someone else now (as old SQLite handed it on)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import db
from newsletter.settings import Settings
from subscribers.erasure import erase
from subscribers.models import ConsentEvent, Subscriber, Suppression
from subscribers.tokens import Purpose, Tokens
from tests.support.servers import live_server
from tests.support.subscribers import make_subscriber, signed_up, sqlite_only
from web.app import create_app

INVALID = "is not valid"


@pytest.fixture
def base(settings: Settings, engine: Engine) -> Iterator[str]:
    with live_server(create_app(settings)) as url:
        yield url


def old_links(settings: Settings, person: Subscriber) -> dict[str, str]:
    tokens = Tokens(settings)
    return {
        "confirm": tokens.make(Purpose.CONFIRM, person),
        "unsubscribe": tokens.make(Purpose.UNSUBSCRIBE, person, campaign_id=1),
        "preferences": tokens.make(Purpose.PREFERENCES, person),
    }


def snapshot(session: Session, subscriber_id: int) -> tuple[object, ...]:
    session.expire_all()
    row = session.get(Subscriber, subscriber_id)
    assert row is not None
    events = session.exec(
        select(ConsentEvent.id).where(ConsentEvent.subscriber_id == subscriber_id)
    ).all()
    suppressed = session.exec(select(Suppression.email).where(Suppression.email == row.email))
    return (row.status, row.topics, row.confirmed_at, tuple(events), tuple(suppressed.all()))


def follow(base: str, links: dict[str, str]) -> list[httpx.Response]:
    """Every way in through the links: confirm, the unsubscribe page and its RFC 8058
    one-click POST as a mailbox provider sends it, the preferences page and its form."""
    return [
        httpx.get(f"{base}/confirm/{links['confirm']}"),
        httpx.get(f"{base}/unsubscribe/{links['unsubscribe']}"),
        httpx.post(
            f"{base}/unsubscribe/{links['unsubscribe']}",
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        httpx.get(f"{base}/preferences/{links['preferences']}"),
        httpx.post(f"{base}/preferences/{links['preferences']}", data={"topics": "sciatica"}),
    ]


def assert_dead(base: str, links: dict[str, str]) -> None:
    """The links name an id someone else holds now: each answers "not valid" (400)."""
    for response in follow(base, links):
        assert response.status_code == 400, (response.request.url, response.text[:300])
        assert INVALID in response.text, response.text[:300]


def test_an_erased_persons_links_do_nothing_to_the_next_sign_up(
    settings: Settings, session: Session, base: str
) -> None:
    jane = make_subscriber(session, "jane@example.com", status="pending")
    links = old_links(settings, jane)
    erase(session, email="jane@example.com")
    session.commit()
    stranger = signed_up(session, settings, "stranger@example.com").subscriber
    assert stranger.id != jane.id  # ids are never handed on, SQLite included
    before = snapshot(session, stranger.id)
    confirm, _page, _post, preferences, _form = follow(base, links)
    # The person is gone: confirm says the sign-up is gone (400), preferences that there
    # is nothing to change (409); the unsubscribe asks for what is already true of them
    # (nobody mails them) and touches no one.
    assert (confirm.status_code, preferences.status_code) == (400, 409)
    assert snapshot(session, stranger.id) == before
    assert before[0] == "pending"


def test_links_are_dead_even_when_the_id_names_someone_else_now(
    settings: Settings, session: Session, engine: Engine, base: str
) -> None:
    """A database migrated from an old SQLite may already hold a reused id: the link key
    still tells the two people apart."""
    jane = make_subscriber(session, "jane@example.com", status="active")
    links = old_links(settings, jane)
    jane_id = jane.id
    erase(session, email="jane@example.com")
    session.commit()
    stranger = Subscriber(id=jane_id, email="stranger@example.com", status="active")
    session.add(stranger)
    session.commit()
    before = snapshot(session, jane_id)
    assert_dead(base, links)
    assert snapshot(session, jane_id) == before
    assert before[0] == "active"


def test_the_same_address_signed_up_anew_does_not_answer_the_old_links(
    settings: Settings, session: Session, base: str
) -> None:
    first = make_subscriber(session, "jane@example.com", status="pending")
    links = old_links(settings, first)
    session.delete(first)  # an expired sign-up, cleaned away
    session.commit()
    first_id = first.id
    again = signed_up(session, settings, "jane@example.com").subscriber
    assert again.id != first_id
    before = snapshot(session, again.id)
    follow(base, links)
    assert snapshot(session, again.id) == before
    # And where the new row took the old id (an old SQLite database): "not valid".
    session.delete(again)
    session.flush()
    session.add(Subscriber(id=first_id, email="jane@example.com", status="pending"))
    session.commit()
    before = snapshot(session, first_id)
    assert_dead(base, links)
    assert snapshot(session, first_id) == before


def test_the_persons_own_links_still_work(settings: Settings, session: Session, base: str) -> None:
    jane = make_subscriber(session, "jane@example.com", status="pending")
    links = old_links(settings, jane)
    assert httpx.get(f"{base}/confirm/{links['confirm']}").status_code == 200
    response = httpx.post(
        f"{base}/unsubscribe/{links['unsubscribe']}",
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    session.expire_all()
    assert session.get(Subscriber, jane.id).status == "unsubscribed"


def test_every_subscriber_gets_a_random_link_key(session: Session, settings: Settings) -> None:
    from subscribers.csv_io import import_csv
    from tests.support.subscribers import outbox

    make_subscriber(session, "a@example.com")
    signed_up(session, settings, "b@example.com")
    import_csv(
        session,
        settings=settings,
        mailer=outbox(settings),
        data=b"email,name,consented_at\nc@example.com,C,2025-01-01\nd@example.com,D,2025-01-01\n",
    )
    session.commit()
    keys = session.exec(select(Subscriber.link_key)).all()
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)


# ---------------------------------------------------------------- migration 0008

_subscriber = sa.table(
    "subscriber",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("status", sa.String),
    sa.column("source", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("status_changed_at", sa.DateTime),
    sa.column("topics", sa.JSON),
    sa.column("soft_bounces", sa.Integer),
)
_event = sa.table(
    "consent_event",
    sa.column("subscriber_id", sa.Integer),
    sa.column("at", sa.DateTime),
    sa.column("to_status", sa.String),
    sa.column("reason", sa.String),
    sa.column("source", sa.String),
    sa.column("detail", sa.JSON),
)


def test_0008_gives_existing_rows_keys_and_keeps_their_history(engine: Engine) -> None:
    from datetime import datetime

    db.downgrade(engine, "0007")
    now = datetime(2026, 11, 1)
    with engine.begin() as conn:
        conn.execute(
            _subscriber.insert(),
            [
                dict(
                    id=i,
                    email=f"r{i}@example.com",
                    status="active",
                    source="import",
                    created_at=now,
                    status_changed_at=now,
                    topics=[],
                    soft_bounces=0,
                )
                for i in (1, 2, 3)
            ],
        )
        conn.execute(
            _event.insert(),
            [
                dict(
                    subscriber_id=i, at=now, to_status="active", reason="r", source="cli", detail={}
                )
                for i in (1, 2, 3)
            ],
        )
    db.upgrade(engine, "0008")
    assert db.current_revision(engine) == "0008"
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT link_key FROM subscriber")).scalars().all()
        events = conn.execute(sa.text("SELECT count(*) FROM consent_event")).scalar_one()
    assert len(set(keys)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)
    assert events == 3


@sqlite_only
def test_sqlite_never_hands_the_largest_deleted_id_on(session: Session) -> None:
    last = make_subscriber(session, "last@example.com")
    last_id = last.id
    erase(session, email="last@example.com")
    session.commit()
    assert make_subscriber(session, "next@example.com").id == last_id + 1
