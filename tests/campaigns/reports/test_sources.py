"""Where a report's figures come from: the questions asked of the event table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.reports.sources import has_provider_events


def _plan_of_what(session: Session, ask: Any) -> str:
    """The plan of the one statement ``ask()`` runs; PostgreSQL told not to scan the
    (small, in a test) table whole, as it would not a large one."""
    bind = session.connection()
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(bind, "before_cursor_execute", keep)
    try:
        ask()
    finally:
        sa.event.remove(bind, "before_cursor_execute", keep)
    [(statement, params)] = seen
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = bind.exec_driver_sql(f"EXPLAIN {statement}", params).scalars().all()
    else:
        rows = [row[-1] for row in bind.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)]
    return "\n".join(rows)


def test_whether_a_provider_reported_is_answered_from_one_index(session: Session) -> None:
    """An SMTP campaign's own opens and clicks (a million rows) were read one by one to
    find that none came from SendGrid: the index holds campaign and provider together."""
    plan = _plan_of_what(session, lambda: has_provider_events(session, 1))
    assert "ix_tracking_event_campaign_id_provider" in plan
