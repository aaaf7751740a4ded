"""Editing a campaign before it goes out (campaigns/editing.py): what changes, what is
refused and why, and the audit row each change leaves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from campaigns import editing
from campaigns.content.assembly import issue_items, render_headlines
from campaigns.content.snippet_library import retire
from campaigns.models import Campaign, CampaignLog, CampaignStatus, Snippet
from newsletter import db
from newsletter.audit import AuditEntry
from newsletter.errors import CampaignLocked, InvalidInput, NotFound
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.content import make_campaign, make_snippet

S = CampaignStatus


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    """One SQLite database for the tests that only add rows (a migration per test is slow)."""
    root = tmp_path_factory.mktemp("editing")
    settings = make_settings(f"sqlite:///{root / 'editing.db'}", root)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    yield engine, settings
    db.dispose_engine(settings.database_url)


def _ids(session: Session, campaign: Campaign) -> list[int]:
    return editing.snippet_ids(session, campaign_id=campaign.id or 0)


def _audits(session: Session, action: str) -> list[AuditEntry]:
    return list(
        session.exec(
            select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.id))
        ).all()
    )


def test_an_edit_changes_subject_preheader_and_order_and_is_audited(
    session: Session, settings: Settings
) -> None:
    a, b, c = (make_snippet(session, settings) for _ in range(3))
    campaign = make_campaign(session, [a, b, c])
    campaign.html, campaign.text = "<p>old</p>", "old"
    view = editing.edit_campaign(
        session,
        settings=settings,
        campaign_id=campaign.id or 0,
        actor="jane@example.com",
        subject="  Five stretches for a stiff back ",
        preheader="Short, gentle and done at your desk: this week's best reading",
        snippet_ids_in_order=[c.id or 0, a.id or 0, b.id or 0],
    )
    session.commit()
    assert (view.subject, _ids(session, campaign)) == (
        "Five stretches for a stiff back",
        [c.id, a.id, b.id],
    )
    assert (campaign.html, campaign.text) == (None, None)  # rendered again before use
    [entry] = _audits(session, "campaign.edit")
    assert entry.actor == "jane@example.com"
    assert entry.before == {
        "subject": "Test issue",
        "preheader": "Preheader text",
        "snippet_ids": [a.id, b.id, c.id],
    }
    assert entry.after is not None and entry.after["snippet_ids"] == [c.id, a.id, b.id]


@pytest.mark.parametrize(
    ("status", "started", "reason"),
    [
        (S.SENDING, True, "is sending"),
        (S.SENT, True, "was sent"),
        (S.PAUSED, True, "was paused while sending"),
        (S.CANCELLED, False, "was cancelled"),
    ],
)
def test_an_edit_of_a_campaign_whose_content_is_fixed_is_refused_with_the_reason(
    shared: tuple[Engine, Settings], status: S, started: bool, reason: str
) -> None:
    sqlite_engine, sqlite_settings = shared
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session, [make_snippet(session, sqlite_settings)], status=status)
        if started:
            from newsletter.clock import utcnow

            campaign.started_at = utcnow()
        session.commit()
        with pytest.raises(CampaignLocked, match=f"campaign {campaign.id} {reason}.*duplicate"):
            editing.edit_campaign(
                session,
                settings=sqlite_settings,
                campaign_id=campaign.id or 0,
                actor="jane@example.com",
                subject="New",
            )


def test_a_paused_campaign_that_never_started_is_still_editable(
    shared: tuple[Engine, Settings],
) -> None:
    sqlite_engine, sqlite_settings = shared
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session, [make_snippet(session, sqlite_settings)], status=S.PAUSED)
        view = editing.edit_campaign(
            session,
            settings=sqlite_settings,
            campaign_id=campaign.id or 0,
            actor="a",
            subject="New",
        )
        assert view.subject == "New"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": "Two\r\nBcc: x@example.com"}, "subject"),
        ({"preheader": "line\nbreak"}, "preheader"),
        ({"subject": "   "}, "subject"),
        ({"snippet_ids_in_order": []}, "snippet_ids"),
    ],
)
def test_bad_headlines_and_empty_issues_are_refused_naming_the_field(
    shared: tuple[Engine, Settings], changes: dict[str, object], field: str
) -> None:
    sqlite_engine, sqlite_settings = shared
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session, [make_snippet(session, sqlite_settings)])
        with pytest.raises(InvalidInput) as err:
            editing.edit_campaign(
                session,
                settings=sqlite_settings,
                campaign_id=campaign.id or 0,
                actor="a",
                **changes,  # type: ignore[arg-type]
            )
        assert err.value.field == field


def test_moving_a_snippet_up_and_down_stops_at_either_end(shared: tuple[Engine, Settings]) -> None:
    sqlite_engine, sqlite_settings = shared
    with Session(sqlite_engine) as session:
        a, b, c = (make_snippet(session, sqlite_settings) for _ in range(3))
        campaign = make_campaign(session, [a, b, c])

        def move(snippet: Snippet, offset: int) -> None:
            editing.move_snippet(
                session,
                settings=sqlite_settings,
                campaign_id=campaign.id or 0,
                snippet_id=snippet.id or 0,
                offset=offset,
                actor="a",
            )

        move(c, -1)
        assert _ids(session, campaign) == [a.id, c.id, b.id]
        move(a, -1)
        assert _ids(session, campaign) == [a.id, c.id, b.id]
        move(a, 1)
        assert _ids(session, campaign) == [c.id, a.id, b.id]


def test_swapping_a_snippet_is_remove_then_add_at_the_end(shared: tuple[Engine, Settings]) -> None:
    engine, settings = shared
    with Session(engine) as session:
        a, b, spare = (make_snippet(session, settings) for _ in range(3))
        campaign = make_campaign(session, [a, b])
        where = {"settings": settings, "campaign_id": campaign.id or 0, "actor": "a"}
        editing.remove_snippet(session, snippet_id=a.id or 0, **where)  # type: ignore[arg-type]
        editing.add_snippet(session, snippet_id=spare.id or 0, **where)  # type: ignore[arg-type]
        assert _ids(session, campaign) == [b.id, spare.id]
        editing.remove_snippet(session, snippet_id=b.id or 0, **where)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="at least one snippet"):
            editing.remove_snippet(session, snippet_id=spare.id or 0, **where)  # type: ignore[arg-type]
        with pytest.raises(NotFound, match="snippets do not exist: 999"):
            editing.add_snippet(session, snippet_id=999, **where)  # type: ignore[arg-type]


def test_duplicate_makes_an_ad_hoc_draft_with_the_same_content_even_of_a_sent_issue(
    shared: tuple[Engine, Settings],
) -> None:
    sqlite_engine, sqlite_settings = shared
    with Session(sqlite_engine) as session:
        a, b = (make_snippet(session, sqlite_settings) for _ in range(2))
        sent = make_campaign(session, [b, a], week="2026-W48", status=S.SENT)
        copy = editing.duplicate(
            session, settings=sqlite_settings, campaign_id=sent.id or 0, actor="jane@example.com"
        )
        session.commit()
        copied = session.get(Campaign, copy.id)
        assert copied is not None
        assert (copied.status, copied.week, copied.subject, _ids(session, copied)) == (
            S.DRAFT,
            None,
            sent.subject,
            [b.id, a.id],
        )
        log = session.exec(select(CampaignLog).where(CampaignLog.campaign_id == copy.id)).one()
        assert log.reason == f"duplicated from campaign {sent.id}"
        assert _audits(session, "campaign.duplicate")[0].before == {"from_campaign": sent.id}


def test_reassemble_skips_retired_snippets_and_follows_an_unedited_subject(
    session: Session, settings: Settings
) -> None:
    settings = settings.model_copy(update={"snippets_per_issue": 2, "max_per_category": 5})
    old, newer, newest = (make_snippet(session, settings) for _ in range(3))
    items = [old, newer]
    campaign = make_campaign(session, items, week="2026-W49")
    campaign.subject, campaign.preheader = render_headlines(
        settings, week="2026-W49", items=issue_items(session, campaign=campaign)
    )
    retire(session, snippet_id=newer.id or 0, actor="a")
    editing.reassemble(session, settings=settings, campaign_id=campaign.id or 0, actor="a")
    session.commit()
    assert _ids(session, campaign) == [newest.id, old.id]
    assert campaign.subject.endswith(f": {newest.title}")  # the template names the lead


def test_reassemble_keeps_a_subject_the_marketer_wrote(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:  # a fresh database: reassembly reads the whole library
    settings = sqlite_settings.model_copy(update={"snippets_per_issue": 1})
    with Session(sqlite_engine) as session:
        first = make_snippet(session, settings)
        make_snippet(session, settings)
        campaign = make_campaign(session, [first], subject="My own words")
        editing.reassemble(session, settings=settings, campaign_id=campaign.id or 0, actor="a")
        assert campaign.subject == "My own words"


def test_length_hints_say_when_a_subject_or_preheader_reads_badly_in_an_inbox() -> None:
    short, good = editing.length_hints("Back pain: five fixes", "Too short")
    assert (short.ok, good.ok) == (True, False)
    assert good.message == "9 characters; 40-130 read best; add a few words"
    long_subject, fine = editing.length_hints("x" * 61, "y" * 80)
    assert (long_subject.ok, fine.ok) == (False, True)
    assert "shorten it" in long_subject.message
