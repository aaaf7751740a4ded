"""Weekly assembly: which snippets an issue gets, and in what order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, select

from campaigns.content.assembly import assemble_week, iso_week
from campaigns.models import Campaign, CampaignStatus
from newsletter.errors import ContentError
from newsletter.settings import Settings
from tests.content_helpers import make_campaign, make_snippet, with_templates

MONDAY = date(2026, 11, 23)  # ISO week 2026-W48


def ids(issue_items: list) -> list[int]:
    return [i.snippet.id for i in issue_items]


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    return settings.model_copy(update={"snippets_per_issue": 3, "max_per_category": 2})


def test_iso_week_uses_the_iso_year_at_the_year_boundary() -> None:
    assert iso_week(date(2027, 1, 1)) == "2026-W53"
    assert iso_week(MONDAY) == "2026-W48"


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
