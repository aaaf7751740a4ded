"""Factories for delivery tests: many subscribers inserted set-based, a rendered campaign."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.delivery.ledger import queue_deliveries
from campaigns.delivery.providers.base import BulkContent, Recipient
from campaigns.models import Campaign, CampaignStatus, Delivery
from newsletter.mail import NAME, NAME_HTML, PREFERENCES_URL, UNSUBSCRIBE_URL

API_KEY = "SG.test-key"

HTML = (
    "<!doctype html><html><body><p>Hello [%name_html%],</p>"
    "<p>This week: five stretches for sciatica that need no equipment at all. "
    * 3
    + "</p>\n.a line that starts with a dot\n"
    '<p>Caf\u00e9 cr\u00e8me &amp; co. <a href="https://example.com/a?x=1&amp;y=2">Read</a></p>'
    '<p><a href="[%preferences_url%]">Preferences</a> | '
    '<a href="[%unsubscribe_url%]">Unsubscribe</a></p></body></html>'
)
TEXT = (
    "Hello [%name%],\n\nThis week: five stretches for sciatica.\n"
    ".a line that starts with a dot\nCaf\u00e9 cr\u00e8me\n\n"
    "Preferences: [%preferences_url%]\nUnsubscribe: [%unsubscribe_url%]\n"
)


def add_subscribers(
    engine: Engine, count: int, *, start: int = 1, status: str = "active", name: bool = True
) -> None:
    """Insert ``count`` subscribers user<i>@example.com in one INSERT ... SELECT."""
    pg = engine.dialect.name == "postgresql"
    topics = "CAST('[]' AS JSON)" if pg else "'[]'"
    name_sql = "'Reader ' || i" if name else "NULL"
    statement = sa.text(
        "INSERT INTO subscriber (email, name, status, source, created_at, status_changed_at, "
        "topics, soft_bounces) "
        "WITH RECURSIVE n(i) AS (SELECT CAST(:start AS INTEGER) "
        "UNION ALL SELECT i + 1 FROM n WHERE i < :stop) "
        f"SELECT 'user' || i || '@example.com', {name_sql}, :status, 'import', "
        f"CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, {topics}, 0 FROM n"
    )
    with engine.begin() as conn:
        conn.execute(statement, {"start": start, "stop": start + count - 1, "status": status})


def queued_rows(session: Session, engine: Engine, count: int) -> tuple[int, list[Delivery]]:
    """``count`` subscribers queued for a sending campaign: (its id, the rows in id order)."""
    add_subscribers(engine, count)
    campaign = make_campaign(session, status=CampaignStatus.SENDING)
    queue_deliveries(session, campaign=campaign)
    session.commit()
    rows = session.exec(select(Delivery).order_by(Delivery.id)).all()  # type: ignore[arg-type]
    return campaign.id or 0, list(rows)


def as_job(rows: list[Delivery]) -> list[Recipient]:
    """Ledger rows as the provider's recipients (values made elsewhere: none here)."""
    return [
        Recipient(r.id or 0, r.subscriber_id or 0, f"r{r.id}@example.com", None, {}) for r in rows
    ]


def make_campaign(
    session: Session, *, status: CampaignStatus = CampaignStatus.SCHEDULED, subject: str = "Weekly"
) -> Campaign:
    campaign = Campaign(subject=subject, status=status, html=HTML, text=TEXT)
    session.add(campaign)
    session.commit()
    return campaign


def content(*, campaign_id: int = 7, test: bool = False) -> BulkContent:
    return BulkContent(
        campaign_id=campaign_id,
        subject="Pain Relief Weekly: stretches",
        html=HTML,
        text=TEXT,
        from_email="news@example.com",
        from_name="Pain Relief Weekly",
        reply_to=None,
        list_id="Pain Relief Weekly <weekly.newsletter.example.com>",
        test=test,
    )


def recipient(index: int, *, email: str | None = None, name: str | None = "Ann") -> Recipient:
    return Recipient(
        delivery_id=1000 + index,
        subscriber_id=index,
        email=email or f"r{index}@example.com",
        name=name,
        values={
            UNSUBSCRIBE_URL: f"http://127.0.0.1:8000/unsubscribe/tok{index}.x=y",
            PREFERENCES_URL: f"http://127.0.0.1:8000/preferences/tok{index}",
            NAME: name or "",
            NAME_HTML: (name or "").replace("&", "&amp;"),
        },
    )
