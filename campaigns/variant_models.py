"""Issue 16's tables for a campaign's second sends: subject-test variants and resends.

Kept apart from campaigns.models so that module stays short; campaigns.models imports
this one, so its tables are registered whenever campaigns.models is.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from newsletter.clock import utcnow
from newsletter.db import UTCDateTime

# Issue 16, points 2 and 3 (subject tests and resends): migration 0009g. New tables, so the
# hot ``delivery`` table keeps its columns (and its HOT updates).


class SubjectTest(SQLModel, table=True):
    """A campaign's subject test: who is in the sample, how long to wait, how to judge.

    ``phase``: ready (nothing queued) -> sample (the sample is queued and sending) ->
    waiting (sample sent; winner due at ``decide_at``) -> decided (winner chosen) -> rest
    (the rest of the audience queued with the winner).
    """

    __tablename__ = "subject_test"

    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
        )
    )
    sample_percent: int
    wait_seconds: int
    metric: str = Field(sa_type=sa.String(10))  # clicks | opens
    phase: str = Field(default="ready", sa_type=sa.String(10))
    sample_size: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="system", max_length=100)
    sample_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decide_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    winner: str | None = Field(default=None, sa_type=sa.String(1))
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, max_length=100)


class CampaignVariant(SQLModel, table=True):
    """One subject (and preheader) of a subject test, labelled A, B or C.

    ``html``/``text`` hold the variant's own rendering when its preheader differs from the
    campaign's (the preheader is inside the HTML); None means the campaign's own content.
    """

    __tablename__ = "campaign_variant"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "label", name="uq_campaign_variant_label"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer,
            sa.ForeignKey("campaign.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    label: str = Field(sa_type=sa.String(1))
    subject: str = Field(max_length=300)
    preheader: str = Field(default="", max_length=300)
    html: str | None = Field(default=None, sa_type=sa.Text)
    text: str | None = Field(default=None, sa_type=sa.Text)


class VariantDelivery(SQLModel, table=True):
    """Which variant a sample delivery got (by delivery id: it survives erasure, which
    only nulls the ledger's subscriber id). Rows of the rest are not here: they got the winner."""

    __tablename__ = "variant_delivery"

    delivery_id: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    campaign_id: int = Field(sa_column=Column(sa.Integer, nullable=False, index=True))
    label: str = Field(sa_type=sa.String(1))


class CampaignResend(SQLModel, table=True):
    """The one follow-up of a campaign to those who did not open it (campaign id is the key:
    at most one per campaign). When due, it becomes a campaign of its own
    (``resend_campaign_id``) whose ledger holds the non-openers."""

    __tablename__ = "campaign_resend"

    campaign_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
        )
    )
    subject: str = Field(max_length=300)
    after_seconds: int
    due_at: datetime = Field(index=True, sa_type=UTCDateTime)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    requested_by: str = Field(default="system", max_length=100)
    resend_campaign_id: int | None = Field(default=None)
    triggered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recipients: int | None = Field(default=None)
