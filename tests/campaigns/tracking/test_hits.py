"""campaigns/tracking/hits.py: what a buffered hit holds before the writer takes it."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.tracking.hits import USER_AGENT_MAX, Recorder
from newsletter.settings import Settings
from tests.support.links import redirects, sent_issue
from tests.support.subscribers import messages_to


def test_a_100_kb_user_agent_is_held_as_300_characters(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        sent_issue(session, sqlite_settings, readers=1, links=1)
    link = redirects(messages_to(sqlite_settings, "reader0@example.com")[0])[0]
    token, position = link.rsplit("/", 2)[-2:]
    recorder = Recorder(sqlite_engine, sqlite_settings)
    agent = "Mozilla/5.0 " + "x" * 100_000
    recorder.click(token, int(position), method="GET", user_agent=agent, ip="192.0.2.1")
    (hit,) = recorder._buffer  # the buffer itself: what memory holds until a flush
    assert USER_AGENT_MAX == 300
    assert hit.user_agent == agent[:300]
