"""Snippets, campaigns, the delivery ledger and tracking events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from newsletter.clock import utcnow
from newsletter.db import UTCDateTime


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class SnippetBase(SQLModel):
    title: str = Field(max_length=300)
    summary: str
    url: str = Field(max_length=2000, sa_column_kwargs={"unique": True})
    image_url: str | None = Field(default=None, max_length=2000)
    image_alt: str | None = Field(default=None, max_length=500)
    category: str = Field(default="general", max_length=100, index=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    author: str | None = Field(default=None, max_length=200)
    published_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    source: str = Field(default="manual", max_length=500)
    pinned: bool = False


class SnippetCreate(SnippetBase):
    pass


class SnippetPublic(SnippetBase):
    id: int
    created_at: datetime
    updated_at: datetime


class Snippet(SnippetBase, table=True):
    __tablename__ = "snippet"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignBase(SQLModel):
    subject: str = Field(max_length=300)
    preheader: str = Field(default="", max_length=300)


class CampaignCreate(CampaignBase):
    snippet_ids: list[int]


class CampaignPublic(CampaignBase):
    id: int
    week: str | None
    status: CampaignStatus
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


# Migration 0006: one live weekly issue per ISO week; a cancelled one may be replaced.
LIVE_WEEK = sa.text("status != 'cancelled'")


class Campaign(CampaignBase, table=True):
    __tablename__ = "campaign"
    __table_args__ = (
        sa.Index(
            "uq_campaign_week_live",
            "week",
            unique=True,
            sqlite_where=LIVE_WEEK,
            postgresql_where=LIVE_WEEK,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # ISO week ("2026-W48") of a weekly issue; None for an ad-hoc campaign.
    week: str | None = Field(default=None, max_length=10)
    status: str = Field(default=CampaignStatus.DRAFT, sa_type=sa.String(20), index=True)
    scheduled_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="system", max_length=100)
    # Rendered once per campaign, with placeholders for per-recipient values.
    html: str | None = Field(default=None, sa_type=sa.Text)
    text: str | None = Field(default=None, sa_type=sa.Text)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, sa_type=sa.Text)


class CampaignSnippet(SQLModel, table=True):
    __tablename__ = "campaign_snippet"

    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
        )
    )
    snippet_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("snippet.id"), primary_key=True, index=True)
    )
    position: int
    resent: bool = False  # filled in from an earlier issue because fresh ones ran out


class CampaignLog(SQLModel, table=True):
    """Every state change of a campaign, with who and why."""

    __tablename__ = "campaign_log"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer,
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        )
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    from_status: str | None = Field(default=None, sa_type=sa.String(20))
    to_status: str = Field(sa_type=sa.String(20))
    actor: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)


class Delivery(SQLModel, table=True):
    """One row per (campaign, subscriber): the ledger that makes sending exactly once."""

    __tablename__ = "delivery"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "subscriber_id", name="uq_delivery_campaign_subscriber"),
        # Migration 0003: no index holds a column that sending changes (status, message
        # id, sent_at), and PostgreSQL keeps room on each page for the new versions, so
        # marking a row sent is a HOT update there (no index entries).
        sa.Index("ix_delivery_campaign_id_id", "campaign_id", "id"),
        {"postgresql_with": {"fillfactor": 40}},
    )

    id: int | None = Field(default=None, primary_key=True)
    # No foreign keys on the ledger (migration 0002): their per-row checks were most of
    # the cost of queueing a million rows. Erasure nulls subscriber_id itself
    # (campaigns.tracking.erasure.erase_person), keeping the campaign's figures but not the person.
    campaign_id: int = Field(sa_column=Column(sa.Integer, nullable=False))
    subscriber_id: int | None = Field(sa_column=Column(sa.Integer, index=True))
    status: str = Field(default=DeliveryStatus.QUEUED, sa_type=sa.String(20))
    # Unindexed (migration 0003): events are matched by message id through DeliveryBatch.
    provider_message_id: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, sa_type=sa.Text)
    attempts: int = 0
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    clicked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    open_count: int = 0
    machine_open_count: int = 0
    click_count: int = 0
    bounce: str | None = Field(default=None, sa_type=sa.String(10))  # hard | soft
    complained: bool = False
    unsubscribed: bool = False


class DeliveryBatch(SQLModel, table=True):
    """One request the provider accepted under one message id: SendGrid's id -> our rows.

    Written with the rows it marks sent. Tracking resolves an event that lacks our custom
    args through it (message id -> campaign and delivery id range -> the address).
    """

    __tablename__ = "delivery_batch"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int
    first_delivery_id: int
    last_delivery_id: int
    message_id: str = Field(max_length=200, index=True)
    sent_at: datetime = Field(sa_type=UTCDateTime)


class TrackingEvent(SQLModel, table=True):
    """A provider event, normalised, with the raw event kept; applied once by event id."""

    __tablename__ = "tracking_event"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    kind: str = Field(sa_type=sa.String(30))
    raw_event: str = Field(max_length=50)
    campaign_id: int | None = Field(default=None, index=True)
    subscriber_id: int | None = Field(default=None, index=True)
    delivery_id: int | None = Field(default=None, index=True)
    machine: bool = False
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class CampaignArchiveExclusion(SQLModel, table=True):
    """Issue 15: a campaign left out of the public archive and its feed (migration 0009e).
    No row: listed once sent."""

    __tablename__ = "campaign_archive_exclusion"

    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
        )
    )
    excluded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    excluded_by: str = Field(max_length=100)
