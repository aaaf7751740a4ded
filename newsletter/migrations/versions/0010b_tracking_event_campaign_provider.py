"""The event table's campaign index also holds the provider.

Revision ID: 0010b
Revises: 0010a
Create Date: 2026-12-01

A report asks whether a provider that reports deliveries (SendGrid) sent events back for
a campaign (campaigns.reports.sources.has_provider_events). With an index on the campaign
alone, an SMTP campaign's own opens and clicks, a row each, were all read to find none:
hundreds of thousands for a large list, on every report page. ``(campaign_id, provider)``
answers it from the index, and serves every question by campaign alone as the old index
did, so it replaces it: one index per event written, as before.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010b"
down_revision: str | None = "0010a"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tracking_event_campaign_id_provider", "tracking_event", ["campaign_id", "provider"]
    )
    op.drop_index("ix_tracking_event_campaign_id", table_name="tracking_event")


def downgrade() -> None:
    op.create_index("ix_tracking_event_campaign_id", "tracking_event", ["campaign_id"])
    op.drop_index("ix_tracking_event_campaign_id_provider", table_name="tracking_event")
