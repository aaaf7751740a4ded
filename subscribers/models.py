"""Subscribers, their append-only consent history and the suppression list."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlmodel import JSON, Column, Field, SQLModel

from newsletter.clock import utcnow
from newsletter.db import UTCDateTime


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class ConsentSource(StrEnum):
    FORM = "form"
    IMPORT = "import"
    API = "api"
    CLI = "cli"
    PROVIDER = "provider"  # webhook events: bounces, complaints, unsubscribes
    SYSTEM = "system"
    CONSOLE = "console"  # a marketer in the console at /admin/ (issue 14)


class SuppressionReason(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    INVALID = "invalid"
    MANUAL = "manual"
    ERASED = "erased"


def new_link_key() -> str:
    """A subscriber's link nonce: 16 random bytes as 32 hex digits. Every signed link
    carries it (subscribers.tokens), so links die with the row they were made for."""
    return secrets.token_hex(16)


class RandomLinkKey(sa.sql.expression.FunctionElement[str]):
    """The database's own random 32 hex digits (the server default of ``link_key``), so a
    row inserted by raw SQL (bulk loads, the benchmark) gets a key of its own too."""

    type = sa.String(32)
    inherit_cache = True


@compiles(RandomLinkKey, "sqlite")
def _random_key_sqlite(element: RandomLinkKey, compiler: Any, **kw: Any) -> str:
    return "lower(hex(randomblob(16)))"


@compiles(RandomLinkKey, "postgresql")
def _random_key_postgresql(element: RandomLinkKey, compiler: Any, **kw: Any) -> str:
    return "md5(random()::text || clock_timestamp()::text)"


class SubscriberBase(SQLModel):
    email: str = Field(max_length=320, sa_column_kwargs={"unique": True}, index=False)
    name: str | None = Field(default=None, max_length=200)


class SubscriberCreate(SubscriberBase):
    source: ConsentSource = ConsentSource.FORM
    ip: str | None = None
    user_agent: str | None = None


class SubscriberPublic(SubscriberBase):
    id: int
    status: SubscriberStatus
    source: str
    created_at: datetime
    confirmed_at: datetime | None
    topics: list[str]
    paused_until: date | None
    # Issue 16 (local-time delivery): the reader's IANA zone; None = the list's.
    timezone: str | None = None


class Subscriber(SubscriberBase, table=True):
    __tablename__ = "subscriber"
    # AUTOINCREMENT: SQLite would otherwise hand an erased person's id to the next row.
    __table_args__ = (
        sa.Index("ix_subscriber_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    link_key: str = Field(
        default_factory=new_link_key,
        max_length=32,
        sa_column_kwargs={"server_default": RandomLinkKey()},
    )
    status: str = Field(default=SubscriberStatus.PENDING, sa_type=sa.String(20))
    source: str = Field(default=ConsentSource.FORM, sa_type=sa.String(20))
    consent_version: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    confirmation_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    topics_consent_version: str | None = Field(default=None, max_length=64)
    topics_consented_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paused_until: date | None = None
    soft_bounces: int = 0
    # Issue 16 (local-time delivery): the reader's IANA time zone; None = the list's.
    timezone: str | None = Field(default=None, max_length=64)


class ConsentEvent(SQLModel, table=True):
    """One state change or consent act; rows are only ever added (erasure deletes them)."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(
        sa_column=Column(
            sa.Integer,
            sa.ForeignKey("subscriber.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        )
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    from_status: str | None = Field(default=None, sa_type=sa.String(20))
    to_status: str = Field(sa_type=sa.String(20))
    reason: str = Field(max_length=200)
    source: str = Field(sa_type=sa.String(20))
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    consent_version: str | None = Field(default=None, max_length=64)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Suppression(SQLModel, table=True):
    """Addresses we must never mail; after erasure only the hash remains."""

    __tablename__ = "suppression"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    email: str | None = Field(default=None, max_length=320, index=True)
    reason: str = Field(sa_type=sa.String(20))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConfirmationSend(SQLModel, table=True):
    """One confirmation email sent and not yet answered by a click, by the hash of the
    address: what the per-address caps count. Keyed by hash (like the suppression list) so
    the count survives the deletion of an expired sign-up or an erasure; rows older than a
    week serve no cap and are pruned."""

    __tablename__ = "confirmation_send"
    __table_args__ = (sa.Index("ix_confirmation_send_hash_sent_at", "email_hash", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TrackingOptOut(SQLModel, table=True):
    """Issue 15: a reader who asked not to be tracked (the preferences page): plain links
    and no open pixel in every newsletter. A table of its own rather than a column on the
    busy ``subscriber`` table; erased with the subscriber (ON DELETE CASCADE)."""

    __tablename__ = "tracking_opt_out"

    subscriber_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True
        )
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
