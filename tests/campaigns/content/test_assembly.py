"""Weekly assembly: which snippets an issue gets, and in what order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from campaigns.content.assembly import assemble_week, find_week
from campaigns.models import Campaign, CampaignLog, CampaignSnippet, CampaignStatus, Snippet
from newsletter import db
from newsletter.errors import ContentError
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.content import make_campaign, make_snippet, with_templates

MONDAY = date(2026, 11, 23)  # ISO week 2026-W48


def ids(issue_items: list) -> list[int]:
    return [i.snippet.id for i in issue_items]


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    return settings.model_copy(update={"snippets_per_issue": 3, "max_per_category": 2})


def test_the_freshest_snippets_come_first(session: Session, cfg: Settings) -> None:
    _, b, c, d = (make_snippet(session, cfg, category=f"c{i}") for i in range(4))
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert ids(issue.items) == [d.id, c.id, b.id]
    assert issue.campaign.week == "2026-W48"
    assert issue.created is True


def test_at_most_k_snippets_per_category(session: Session, cfg: Settings) -> None:
    other = make_snippet(session, cfg, category="sleep")
    cramps = [make_snippet(session, cfg, category="cramps") for _ in range(3)]
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert ids(issue.items) == [cramps[2].id, cramps[1].id, other.id]


def test_the_pinned_snippet_is_featured_first(session: Session, cfg: Settings) -> None:
    pinned = make_snippet(session, cfg, category="a", pinned=True)
    newer = [make_snippet(session, cfg, category=c) for c in ("b", "c", "d")]
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert ids(issue.items) == [pinned.id, newer[2].id, newer[1].id]


def test_the_second_week_repeats_no_snippet(session: Session, cfg: Settings) -> None:
    for i in range(6):
        make_snippet(session, cfg, category=f"c{i % 3}")
    first = assemble_week(session, settings=cfg, day=MONDAY)
    second = assemble_week(session, settings=cfg, day=date(2026, 11, 30))
    assert second.campaign.week == "2026-W49"
    assert set(ids(first.items)).isdisjoint(ids(second.items))


def test_too_few_fresh_snippets_is_a_clear_error_and_no_campaign(
    session: Session, cfg: Settings
) -> None:
    make_snippet(session, cfg, category="a")
    make_snippet(session, cfg, category="a")
    make_snippet(session, cfg, category="a")
    with pytest.raises(ContentError, match=r"2 fit, 3 needed .*at most 2 per category"):
        assemble_week(session, settings=cfg, day=MONDAY)
    assert session.exec(select(Campaign)).all() == []


def test_fill_with_resent_uses_the_least_recently_sent_marked_as_such(
    session: Session, cfg: Settings
) -> None:
    older_sent = make_snippet(session, cfg, category="x")
    newer_sent = make_snippet(session, cfg, category="y")
    make_campaign(session, [older_sent], week="2026-W40", status=CampaignStatus.SENT)
    make_campaign(session, [newer_sent], week="2026-W41", status=CampaignStatus.SENT)
    fresh = [make_snippet(session, cfg, category=c) for c in ("a", "b")]
    filled = cfg.model_copy(update={"fill_with_resent": True})
    issue = assemble_week(session, settings=filled, day=MONDAY)
    assert ids(issue.items) == [fresh[1].id, fresh[0].id, older_sent.id]
    assert [i.resent for i in issue.items] == [False, False, True]


def test_without_fill_sent_snippets_are_never_reused(session: Session, cfg: Settings) -> None:
    sent = [make_snippet(session, cfg, category=c) for c in ("x", "y")]
    make_campaign(session, sent, week="2026-W40", status=CampaignStatus.SENT)
    make_snippet(session, cfg, category="a")
    with pytest.raises(ContentError, match="NEWSLETTER_FILL_WITH_RESENT"):
        assemble_week(session, settings=cfg, day=MONDAY)


def test_a_cancelled_issue_frees_its_snippets(session: Session, cfg: Settings) -> None:
    snippets = [make_snippet(session, cfg, category=c) for c in ("a", "b", "c")]
    make_campaign(session, snippets, week="2026-W40", status=CampaignStatus.CANCELLED)
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert sorted(ids(issue.items)) == sorted(s.id for s in snippets)


def test_assembling_the_same_week_twice_returns_the_existing_campaign(
    session: Session, cfg: Settings
) -> None:
    for c in ("a", "b", "c", "d", "e", "f"):
        make_snippet(session, cfg, category=c)
    first = assemble_week(session, settings=cfg, day=MONDAY)
    again = assemble_week(session, settings=cfg, day=date(2026, 11, 29))  # Sunday, same week
    assert (again.campaign.id, again.created) == (first.campaign.id, False)
    assert ids(again.items) == ids(first.items)
    assert len(session.exec(select(Campaign)).all()) == 1


def test_selection_is_deterministic_for_equal_dates(session: Session, cfg: Settings) -> None:
    same = "2026-11-10T08:00:00+00:00"
    for slug in ("c", "a", "d", "b"):
        make_snippet(
            session, cfg, url=f"https://blog.example.com/{slug}", published_at=same, category=slug
        )
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert [i.snippet.url.rsplit("/", 1)[1] for i in issue.items] == ["a", "b", "c"]


def test_default_subject_is_the_name_plus_the_lead_headline(
    session: Session, cfg: Settings
) -> None:
    for title in ("Third", "Second", "Lead story"):
        make_snippet(session, cfg, title=title, category=title)
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert issue.campaign.subject == "Pain Relief Weekly: Lead story"
    assert issue.campaign.preheader == "Also this week: Second · Third"


def test_subject_template_can_be_overridden(
    session: Session, cfg: Settings, tmp_path: Path
) -> None:
    custom = with_templates(
        cfg, tmp_path / "mine", {"email/subject.txt.j2": "{{ week }} | {{ lead.title | upper }}\n"}
    )
    for title in ("b", "c", "a"):
        make_snippet(session, custom, title=title, category=title)
    issue = assemble_week(session, settings=custom, day=MONDAY)
    assert issue.campaign.subject == "2026-W48 | A"
    assert issue.campaign.preheader.startswith("Also this week:")  # the shipped default


# ---------------------------------------------------------------- two assemblers, one week


def lose_the_race_for(session: Session, engine: Engine, week: str) -> None:
    """When ``session`` is about to insert ``week``'s campaign, another assembler (its own
    connection and transaction) commits that week's campaign first."""

    def winner_first(flushing: Session, _context: Any, _instances: Any) -> None:
        if any(isinstance(o, Campaign) and o.week == week for o in flushing.new):
            with Session(engine) as other:
                other.add(Campaign(subject="Winner", week=week, created_by="other"))
                other.commit()

    event.listen(session, "before_flush", winner_first)


def skip_on_sqlite(engine: Engine) -> None:
    """The race can only be lost on PostgreSQL: on SQLite the savepoint takes the write lock
    first (db.begin_write), so no other assembler commits the week in between; it waits,
    then finds this one's issue."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite: assembly holds the write lock, so this race cannot happen")


def test_losing_the_race_for_the_week_returns_the_winners_issue(
    session: Session, engine: Engine, cfg: Settings
) -> None:
    skip_on_sqlite(engine)
    for c in ("a", "b", "c"):
        make_snippet(session, cfg, category=c)
    session.commit()
    lose_the_race_for(session, engine, "2026-W48")
    issue = assemble_week(session, settings=cfg, day=MONDAY)
    assert (issue.campaign.subject, issue.created, issue.items) == ("Winner", False, [])
    session.commit()
    with Session(engine) as fresh:
        assert [c.subject for c in fresh.exec(select(Campaign)).all()] == ["Winner"]


def test_assembly_commits_nothing_of_its_own(
    session: Session, engine: Engine, cfg: Settings
) -> None:
    """The savepoint stays inside the caller's transaction, also on SQLite, whose driver
    would otherwise start (and on release commit) a transaction at the SAVEPOINT."""
    for c in ("a", "b", "c"):
        make_snippet(session, cfg, category=c)
    session.commit()
    assert assemble_week(session, settings=cfg, day=MONDAY).created
    session.rollback()
    with Session(engine) as fresh:
        assert fresh.exec(select(Campaign)).all() == []


@pytest.fixture
def pg_cfg(postgres_url: str, tmp_path: Path) -> Iterator[Settings]:
    """PostgreSQL only: on SQLite a transaction that has written holds the write lock, so
    the other assembler waits for it and cannot win the race."""
    engine = db.get_engine(postgres_url)
    db.upgrade(engine)
    yield make_settings(postgres_url, tmp_path, snippets_per_issue=3, max_per_category=2)


def test_losing_the_race_keeps_the_callers_earlier_uncommitted_work(pg_cfg: Settings) -> None:
    engine = db.get_engine(pg_cfg.database_url)
    with Session(engine, expire_on_commit=False) as session:
        mine = [make_snippet(session, pg_cfg, category=c) for c in ("a", "b", "c")]  # not committed
        lose_the_race_for(session, engine, "2026-W48")
        issue = assemble_week(session, settings=pg_cfg, day=MONDAY)
        assert (issue.campaign.subject, issue.created) == ("Winner", False)
        assert session.get(Snippet, mine[0].id) is mine[0]
        session.commit()
    with Session(engine) as fresh:
        stored = fresh.exec(select(Snippet.title).order_by(Snippet.id)).all()
        assert stored == [s.title for s in mine]
        assert [c.subject for c in fresh.exec(select(Campaign)).all()] == ["Winner"]


# ---------------------------------------------------------------- a cancelled issue


def cancel(session: Session, cfg: Settings, campaign: Campaign) -> None:
    from campaigns import actions

    assert campaign.id is not None
    actions.cancel(session, settings=cfg, campaign_id=campaign.id, actor="test")
    session.commit()


def test_a_cancelled_issue_is_replaced_by_a_fresh_one_when_asked(
    session: Session, cfg: Settings
) -> None:
    for c in ("a", "b", "c"):
        make_snippet(session, cfg, category=c)
    first = assemble_week(session, settings=cfg, day=MONDAY)
    session.commit()
    cancel(session, cfg, first.campaign)
    again = assemble_week(session, settings=cfg, day=MONDAY, replace_cancelled=True)
    session.commit()
    assert again.created is True
    assert (again.campaign.week, again.campaign.status) == ("2026-W48", CampaignStatus.DRAFT)
    assert again.campaign.id != first.campaign.id
    assert again.replaces is not None and again.replaces.id == first.campaign.id
    assert again.to_dict()["replaces"] == first.campaign.id
    # A cancelled issue used nothing: its snippets are fresh for the replacement.
    assert ids(again.items) == ids(first.items)
    # From now on the week's issue is the replacement, which is not replaced again.
    third = assemble_week(session, settings=cfg, day=MONDAY, replace_cancelled=True)
    assert (third.campaign.id, third.created, third.replaces) == (again.campaign.id, False, None)


def test_the_scheduler_keeps_a_cancelled_issue_cancelled(session: Session, cfg: Settings) -> None:
    """Without replace_cancelled (the weekly job), a week someone called off stays off."""
    for c in ("a", "b", "c"):
        make_snippet(session, cfg, category=c)
    first = assemble_week(session, settings=cfg, day=MONDAY)
    session.commit()
    cancel(session, cfg, first.campaign)
    kept = assemble_week(session, settings=cfg, day=MONDAY)
    assert (kept.campaign.id, kept.campaign.status, kept.created) == (
        first.campaign.id,
        CampaignStatus.CANCELLED,
        False,
    )
    assert session.exec(select(Campaign)).all() == [first.campaign]


def test_only_one_live_campaign_per_week(session: Session, cfg: Settings) -> None:
    snippet = make_snippet(session, cfg)
    make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.CANCELLED)
    make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.CANCELLED)
    make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.SENT)
    session.commit()
    with pytest.raises(IntegrityError):
        make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.DRAFT)
    session.rollback()


def test_the_week_finds_its_live_issue_before_cancelled_ones(
    session: Session, cfg: Settings
) -> None:
    snippet = make_snippet(session, cfg)
    old = make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.CANCELLED)
    live = make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.SENT)
    newer = make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.CANCELLED)
    session.commit()
    assert find_week(session, week="2026-W48") == live
    assert old.id is not None and newer.id is not None and live.id is not None
    again = assemble_week(session, settings=cfg, day=MONDAY, replace_cancelled=True)
    assert (again.campaign.id, again.created) == (live.id, False)


def test_losing_the_race_to_replace_a_cancelled_issue_returns_the_winner(
    session: Session, engine: Engine, cfg: Settings
) -> None:
    skip_on_sqlite(engine)
    for c in ("a", "b", "c"):
        make_snippet(session, cfg, category=c)
    first = assemble_week(session, settings=cfg, day=MONDAY)
    session.commit()
    cancel(session, cfg, first.campaign)
    lose_the_race_for(session, engine, "2026-W48")
    issue = assemble_week(session, settings=cfg, day=MONDAY, replace_cancelled=True)
    assert (issue.campaign.subject, issue.created, issue.replaces) == ("Winner", False, None)


# ---------------------------------------------------------------- migration 0006


def test_0006_keeps_the_issues_snippets_and_logs_and_downgrades_to_one_per_week(
    engine: Engine, cfg: Settings
) -> None:
    """SQLite rebuilds the campaign table for 0006; the rows that reference it through
    ON DELETE CASCADE (campaign_snippet, campaign_log) must survive that."""
    db.downgrade(engine, "0004")
    with Session(engine) as session:
        snippet = make_snippet(session, cfg)
        cancelled = make_campaign(
            session, [snippet], week="2026-W48", status=CampaignStatus.CANCELLED
        )
        session.add(CampaignLog(campaign_id=cancelled.id, to_status="cancelled", actor="t"))
        session.commit()
        cancelled_id, snippet_id = cancelled.id, snippet.id
    db.upgrade(engine)
    with Session(engine) as session:
        snippet = session.get(Snippet, snippet_id)
        assert snippet is not None
        assert session.exec(select(CampaignSnippet.campaign_id)).all() == [cancelled_id]
        assert session.exec(select(CampaignLog.campaign_id)).all() == [cancelled_id]
        replacement = make_campaign(session, [snippet], week="2026-W48", status=CampaignStatus.SENT)
        other_week = make_campaign(
            session, [snippet], week="2026-W49", status=CampaignStatus.CANCELLED
        )
        session.commit()
        kept = {replacement.id: "2026-W48", other_week.id: "2026-W49", cancelled_id: None}
    db.downgrade(engine, "0004")
    with Session(engine) as session:
        rows = session.exec(sa.select(Campaign.__table__.c.id, Campaign.__table__.c.week))
        assert dict(rows.all()) == kept
        assert len(session.exec(select(CampaignSnippet.campaign_id)).all()) == 3
    db.upgrade(engine)
