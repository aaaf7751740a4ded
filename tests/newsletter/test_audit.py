"""The audit log (newsletter/audit.py): append, read newest first, page through."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from newsletter import audit
from newsletter.accounts import Role


def test_an_entry_keeps_who_what_and_before_after(session: Session) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    audit.record(
        session,
        "ann@example.com",
        "campaign.schedule",
        "campaign",
        7,
        before={"status": "draft", "scheduled_at": None},
        after={"status": "scheduled", "scheduled_at": at, "role": Role.owner},
    )
    session.commit()
    (entry,) = audit.recent(session).entries
    assert (entry.actor, entry.action, entry.target_type, entry.target_id) == (
        "ann@example.com",
        "campaign.schedule",
        "campaign",
        "7",
    )
    assert entry.before == {"status": "draft", "scheduled_at": None}
    assert entry.after == {"status": "scheduled", "scheduled_at": at.isoformat(), "role": "owner"}
    assert entry.at.tzinfo is not None


def test_recent_pages_newest_first_and_counts_all(session: Session) -> None:
    for number in range(5):
        audit.record(session, "cli", "subscriber.add", "subscriber", f"p{number}@example.com")
    first = audit.recent(session, limit=2)
    second = audit.recent(session, limit=2, offset=2)
    assert first.total == 5
    assert [e.target_id for e in first.entries] == ["p4@example.com", "p3@example.com"]
    assert [e.target_id for e in second.entries] == ["p2@example.com", "p1@example.com"]


def test_recent_clamps_a_silly_limit(session: Session) -> None:
    audit.record(session, "cli", "user.create", "console_user", "a@example.com")
    page = audit.recent(session, limit=0, offset=-3)
    assert (page.limit, page.offset, len(page.entries)) == (1, 0, 1)
