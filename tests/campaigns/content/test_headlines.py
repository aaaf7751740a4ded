"""An assembled issue's subject and preheader fit what inboxes show, the editor's length
hints (campaigns/content/assembly.py render_headlines and templates/email/*.txt.j2)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

from campaigns.content.assembly import assemble_week
from campaigns.content.snippet_import import import_snippets
from campaigns.editing import PREHEADER_HINT_MAX, SUBJECT_HINT_MAX, length_hints
from newsletter.mail import HOLE
from newsletter.settings import Settings
from tests.support.content import CONTENT_DIR, make_snippet

MONDAY = date(2026, 11, 23)


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    return settings.model_copy(update={"snippets_per_issue": 4, "max_per_category": 4})


def _assemble(session: Session, cfg: Settings, titles: list[str]) -> tuple[str, str]:
    for title in reversed(titles):  # the last made is the freshest: the lead
        make_snippet(session, cfg, title=title)
    campaign = assemble_week(session, settings=cfg, day=MONDAY).campaign
    return campaign.subject, campaign.preheader


def test_a_subject_too_long_with_the_name_is_the_lead_title_alone(
    session: Session, cfg: Settings
) -> None:
    lead = "Four gentle stretches for sciatic leg pain, in order"
    subject, _ = _assemble(session, cfg, [lead, "B", "C", "D"])
    assert subject == lead


def test_a_lead_title_past_the_limit_is_cut_at_a_word(session: Session, cfg: Settings) -> None:
    lead = "Sciatica: the signs that mean you should call a doctor today, not next week"
    subject, _ = _assemble(session, cfg, [lead, "B", "C", "D"])
    assert subject == "Sciatica: the signs that mean you should call a doctor…"
    assert len(subject) <= SUBJECT_HINT_MAX


def test_a_long_preheader_is_cut_at_a_word_to_130_with_its_prefix(
    session: Session, cfg: Settings
) -> None:
    titles = [
        "Lead",
        "Night-time leg cramps - practical ways to get back to sleep",
        "Sciatica: the signs that mean you should call a doctor today",
        "A five-point desk check for people who sit all day",
    ]
    _, preheader = _assemble(session, cfg, titles)
    assert len(preheader) <= PREHEADER_HINT_MAX
    assert preheader == (
        "Also this week: Night-time leg cramps - practical ways to get back to sleep · "
        "Sciatica: the signs that mean you should call a…"
    )


def test_the_sample_issue_s_headlines_pass_the_editor_s_length_hints(
    session: Session, cfg: Settings
) -> None:
    import_snippets(session, settings=cfg, source=str(CONTENT_DIR / "snippets"))
    campaign = assemble_week(session, settings=cfg, day=MONDAY).campaign
    assert [h.field for h in length_hints(campaign.subject, campaign.preheader) if not h.ok] == []


def test_a_placeholder_in_the_lead_title_stays_text_in_the_subject(
    session: Session, cfg: Settings
) -> None:
    subject, _ = _assemble(session, cfg, ["Stretches [%name%] can do", "B", "C", "D"])
    assert HOLE.search(subject) is None  # never filled with the reader's name
    assert subject.replace("\u2060", "").endswith("Stretches [%name%] can do")
