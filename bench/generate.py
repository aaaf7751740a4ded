"""The benchmark's data: N eligible subscribers, some who must not get mail, and an issue.

Subscribers go straight into the database with set-based inserts (``executemany`` in
chunks on SQLite, ``COPY`` on PostgreSQL): a million ORM objects would take minutes and
measure the generator, not the pipeline. Besides the N eligible readers, about 2% more
rows must be left out by the audience query (pending, unsubscribed, bounced, paused,
suppressed), and about 10% of the eligible ones chose topics, so the real filters run.

The snippets are a realistic week: eight articles with images in four categories, of
which the issue takes six.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from campaigns.content.snippets import add_snippet
from newsletter.clock import utcnow
from newsletter.db import session_scope
from newsletter.settings import Settings
from subscribers.addresses import email_hash
from subscribers.models import (
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)

CHUNK = 20_000
CATEGORIES = ("back-pain", "sciatica", "leg-cramps", "neck-pain")
TOPIC_CHOICE = ["back-pain", "sciatica", "leg-cramps"]  # overlaps any issue of 3+ categories
FIRST = (
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Eva",
    "François",
    "Grace",
    "Hiro",
    "Ingrid",
    "José",
    "Kai",
    "Lena",
    "Mårten",
    "Noor",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Søren",
)
LAST = (
    "Smith",
    "García",
    "Nguyen",
    "Müller",
    "O'Brien",
    "Kowalski",
    "Silva",
    "Tanaka",
    "Dubois",
    "Rossi",
    "Andersson",
    "Okafor",
    "Cohen",
    "Novak",
    "Björk",
    "Patel",
)
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
COLUMNS = (
    "email", "name", "status", "source", "consent_version", "created_at", "confirmed_at",
    "status_changed_at", "topics", "topics_consent_version", "topics_consented_at",
    "paused_until", "soft_bounces",
)  # fmt: skip
ARTICLES = (
    ("Five gentle stretches for a stiff lower back", "back-pain"),
    ("Why sitting still hurts more than moving", "back-pain"),
    ("Sciatica or something else? How to tell", "sciatica"),
    ("The nerve-glide exercise physiotherapists teach first", "sciatica"),
    ("Night-time leg cramps: what helps and what does not", "leg-cramps"),
    ("Magnesium for cramps: the evidence so far", "leg-cramps"),
    ("Desk set-up for a happier neck", "neck-pain"),
    ("Pillows, posture and the morning neck ache", "neck-pain"),
)
SUMMARY = (
    "A plain-language guide from our physiotherapy editors: what the research says, "
    "which simple habits help most people, which warning signs mean you should see a "
    "doctor at once, and a short routine you can try today in ten minutes at home."
)


@dataclass(frozen=True)
class Population:
    eligible: int
    ineligible: int
    snippet_ids: list[int]


def _name(i: int) -> str | None:
    if i % 10 < 3:
        return None  # many sign-ups never give a name
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"


def _eligible_rows(size: int, now: Any, consent: str, topics_consent: str) -> Iterator[tuple]:
    no_topics, with_topics = "[]", json.dumps(TOPIC_CHOICE)
    for i in range(size):
        chose = i % 10 == 7
        yield (
            f"reader{i:07d}@{DOMAINS[i % len(DOMAINS)]}", _name(i),
            SubscriberStatus.ACTIVE.value, ConsentSource.IMPORT.value, consent, now, now, now,
            with_topics if chose else no_topics, topics_consent if chose else None,
            now if chose else None, None, 0,
        )  # fmt: skip


def _ineligible_rows(count: int, now: Any, consent: str, paused: Any) -> Iterator[tuple]:
    """Rows the audience query must leave out; every fifth is active but suppressed."""
    statuses = (
        SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED,
        SubscriberStatus.ACTIVE, SubscriberStatus.ACTIVE,
    )  # fmt: skip
    for i in range(count):
        kind = i % 5
        yield (
            ineligible_email(i), _name(i), statuses[kind].value, ConsentSource.FORM.value,
            consent, now, None if kind == 0 else now, now, "[]", None, None,
            paused if kind == 3 else None, 0,
        )  # fmt: skip


def ineligible_email(i: int) -> str:
    return f"left-out{i:06d}@example.org"


def _chunks(rows: Iterator[tuple], size: int = CHUNK) -> Iterator[list[tuple]]:
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert_sqlite(engine: Engine, table: str, columns: tuple[str, ...], rows: Iterator) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for chunk in _chunks(rows):
            cursor.executemany(sql, chunk)
        raw.commit()
    finally:
        raw.close()


def _insert_postgres(engine: Engine, table: str, columns: tuple[str, ...], rows: Iterator) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _db_values(engine: Engine, now: datetime, paused: date) -> tuple[Any, Any]:
    """``now`` and ``paused`` as the DBAPI wants them (SQLite: SQLAlchemy's text format)."""
    if engine.dialect.name != "sqlite":
        return now, paused
    dialect = engine.dialect
    stamp = Subscriber.__table__.c.created_at.type.bind_processor(dialect)
    day = Subscriber.__table__.c.paused_until.type.bind_processor(dialect)
    return (stamp(now) if stamp else now), (day(paused) if day else paused)


def add_subscribers(engine: Engine, *, settings: Settings, size: int) -> int:
    """Insert ``size`` eligible subscribers and ~2% who must be left out; return the latter."""
    ineligible = max(5, size // 50)
    now, paused = _db_values(engine, utcnow(), (utcnow() + timedelta(days=60)).date())
    insert = _insert_postgres if engine.dialect.name == "postgresql" else _insert_sqlite
    rows = _eligible_rows(size, now, settings.consent_version, settings.topics_consent_version)
    insert(engine, "subscriber", COLUMNS, rows)
    insert(engine, "subscriber", COLUMNS,
           _ineligible_rows(ineligible, now, settings.consent_version, paused))  # fmt: skip
    suppressed = (
        (email_hash(ineligible_email(i)), ineligible_email(i),
         SuppressionReason.COMPLAINT.value, now)
        for i in range(4, ineligible, 5)
    )  # fmt: skip
    insert(engine, "suppression", ("email_hash", "email", "reason", "created_at"), suppressed)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE subscriber"))
            connection.execute(sa.text("ANALYZE suppression"))
    return ineligible


def add_articles(engine: Engine, *, settings: Settings) -> list[int]:
    """This week's eight articles, through the same function an editor's import uses."""
    now = utcnow()
    ids = []
    with session_scope(engine) as session:
        for n, (title, category) in enumerate(ARTICLES):
            snippet = add_snippet(
                session,
                settings=settings,
                data={
                    "title": title,
                    "summary": SUMMARY,
                    "url": f"https://painrelief.example.com/articles/{category}/{n + 1}",
                    "image_url": f"https://images.example.com/articles/{n + 1}-1200x630.jpg",
                    "image_alt": f"Illustration for: {title}",
                    "category": category,
                    "tags": [category, "self-care"],
                    "author": f"{FIRST[n]} {LAST[n]}",
                    "published_at": now - timedelta(hours=6 * (n + 1)),
                    "source": "bench",
                },
            )
            assert snippet.id is not None
            ids.append(snippet.id)
    return ids


def populate(engine: Engine, *, settings: Settings, size: int) -> Population:
    ineligible = add_subscribers(engine, settings=settings, size=size)
    snippet_ids = add_articles(engine, settings=settings)
    return Population(eligible=size, ineligible=ineligible, snippet_ids=snippet_ids)


def count_subscribers(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(
            Subscriber.__table__)).scalar_one())  # fmt: skip
