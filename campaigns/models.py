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
    # Issue 15: the receiving server put this recipient off (SMTP 4yz); tried again on its
    # own schedule (campaigns.delivery.deferrals, the row's DeliveryDeferral).
    DEFERRED = "deferred"


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
    # Issue 15: clicks by a machine (a security scanner), counted apart from click_count.
    machine_click_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


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
    # Migration 0010b: campaign and provider together (reports ask "did SendGrid report
    # on this campaign?"); it serves questions by campaign alone as well.
    __table_args__ = (
        sa.Index("ix_tracking_event_campaign_id_provider", "campaign_id", "provider"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    kind: str = Field(sa_type=sa.String(30))
    raw_event: str = Field(max_length=50)
    campaign_id: int | None = None
    subscriber_id: int | None = Field(default=None, index=True)
    delivery_id: int | None = Field(default=None, index=True)
    machine: bool = False
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WaveStatus(StrEnum):
    QUEUED = "queued"  # waiting for its instant
    RELEASED = "released"  # its readers are in the ledger
    SENT = "sent"  # shown only: released, and none of the campaign's rows still queued


class CampaignWave(SQLModel, table=True):
    """Issue 16 (local-time delivery): the readers of some zones, released at one instant.

    A campaign sent "at 07:00 in each reader's zone" has one wave per distinct UTC
    instant; zones that share an offset on that date share a wave.
    """

    __tablename__ = "campaign_wave"
    __table_args__ = (sa.Index("ix_campaign_wave_status_release_at", "status", "release_at"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer,
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        )
    )
    zones: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    local_time: str = Field(max_length=5)  # "07:00", the wall time asked for
    # The zones' hour had passed when scheduled: "now" or "next-day" (--late); None: on time.
    late: str | None = Field(default=None, max_length=10)
    release_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=WaveStatus.QUEUED, sa_type=sa.String(20))
    recipients: int = 0  # counted when scheduled, recounted when released
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# Issue 14 (the console's snippet library): a retired snippet is never picked again.
class SnippetRetirement(SQLModel, table=True):
    """A snippet taken out of use (migration 0009b); unretiring deletes the row."""

    __tablename__ = "snippet_retirement"

    snippet_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("snippet.id", ondelete="CASCADE"), primary_key=True
        )
    )
    retired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    retired_by: str = Field(max_length=100)


# Issue 15 (our own click and open tracking): migration 0009c.
class CampaignLink(SQLModel, table=True):
    """Issue 15: the article links of one campaign, numbered when the campaign is compiled
    for sending. A click redirect names a position here, never a URL, so only URLs that
    were in that campaign can be reached through ``/r/...`` (no open redirect)."""

    __tablename__ = "campaign_link"

    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
        )
    )
    position: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    url: str = Field(sa_type=sa.Text)  # as sent: UTM tags added


class CampaignTrackingOff(SQLModel, table=True):
    """Issue 15: a campaign sent without our click and open tracking
    (``campaigns track ID --off``); a table of its own, so ``campaign`` keeps its columns."""

    __tablename__ = "campaign_tracking_off"

    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
        )
    )
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# Issue 15 (deferrals of SMTP 4yz answers): migration 0009d.
class DeliveryDeferral(SQLModel, table=True):
    """Issue 15: a recipient the receiving server put off (SMTP 4yz), and when to try again.

    A table of its own, not columns of the hot ``delivery`` table: few rows ever have one.
    The row goes when its delivery is sent, bounces or fails for good.
    """

    __tablename__ = "delivery_deferral"

    delivery_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    campaign_id: int = Field(index=True)
    tries: int = 1  # how many times the receiving server put it off
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    reason: str = Field(default="", sa_type=sa.Text)


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


# Issue 16's subject-test and resend tables live in campaigns.variant_models: imported here
# so that importing campaigns.models registers every table (Alembic, create_all).
import campaigns.variant_models  # noqa: E402, F401
