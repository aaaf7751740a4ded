"""Stored event kinds in the field's words: django-anymail's EventType, not SendGrid's nouns.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``tracking_event.kind`` held our first vocabulary, half SendGrid's (``processed``,
``dropped``, ``spam_report``, ``group_unsubscribe``...). It now holds anymail's
(``campaigns.tracking.events.EventKind``): the rows are rewritten, no column changes.

=====================  =====================
before (0003)          after (0004)
=====================  =====================
processed              queued
open                   opened
click                  clicked
bounce_hard            bounced
bounce_soft            bounced
dropped                rejected
spam_report            complained
unsubscribe            unsubscribed
group_unsubscribe      unsubscribed
group_resubscribe      subscribed
delivered, deferred,   unchanged
unknown
=====================  =====================

Downgrading splits the merged kinds again from what each row kept: ``raw_event`` (the
provider's event name) tells ``group_unsubscribe`` from ``unsubscribe``, and the raw
payload's bounce ``type`` tells a soft bounce (SendGrid's "blocked") from a hard one,
exactly as the 0003 code decided it when the event arrived.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

RENAMED = {
    "processed": "queued",
    "open": "opened",
    "click": "clicked",
    "bounce_hard": "bounced",
    "bounce_soft": "bounced",
    "dropped": "rejected",
    "spam_report": "complained",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "group_resubscribe": "subscribed",
}
# One old kind for each new one, where the rename was one to one.
RESTORED = {
    "queued": "processed",
    "opened": "open",
    "clicked": "click",
    "rejected": "dropped",
    "complained": "spam_report",
    "subscribed": "group_resubscribe",
}

_event = sa.table(
    "tracking_event",
    sa.column("kind", sa.String(30)),
    sa.column("raw_event", sa.String(50)),
    sa.column("payload", sa.JSON),
)


def _rename(kind: str, to: str, *conditions: sa.ColumnElement[bool]) -> None:
    op.execute(sa.update(_event).where(_event.c.kind == kind, *conditions).values(kind=to))


def upgrade() -> None:
    for old, new in RENAMED.items():
        _rename(old, new)


def downgrade() -> None:
    bounce_type = sa.func.lower(sa.func.trim(_event.c.payload["type"].as_string()))
    raw_event = sa.func.lower(sa.func.trim(_event.c.raw_event))
    _rename("bounced", "bounce_soft", bounce_type == "blocked")
    _rename("bounced", "bounce_hard")
    _rename("unsubscribed", "group_unsubscribe", raw_event == "group_unsubscribe")
    _rename("unsubscribed", "unsubscribe")
    for new, old in RESTORED.items():
        _rename(new, old)
