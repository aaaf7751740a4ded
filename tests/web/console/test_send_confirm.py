"""Send now in the console (web/console/campaigns.py): a confirmation step naming the
audience and any earlier send of the same content; only the confirmed form sends. Also
the test-send field's "Name <address>" entries and the status line's wording."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import subject_tests, weekly_plan
from campaigns.models import Campaign, CampaignStatus
from newsletter import db
from newsletter.accounts import Role
from newsletter.clock import utcnow
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.console import EDITOR, add_users_cheaply, csrf_of
from tests.support.content import make_campaign, make_snippet
from tests.support.subscribers import make_subscriber, messages_to

S = CampaignStatus


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    root = tmp_path_factory.mktemp("console-send")
    settings = make_settings(f"sqlite:///{root / 'console.db'}", root)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    add_users_cheaply(engine, {EDITOR: Role.editor})
    with Session(engine) as session:
        make_subscriber(session, "ann@example.com")
        make_subscriber(session, "bob@example.com")
        make_subscriber(session, "gone@example.com", status="unsubscribed")
        paused = make_subscriber(session, "resting@example.com")
        paused.paused_until = date.today() + timedelta(days=30)
        session.add(paused)
        session.commit()
    yield engine, settings
    db.dispose_engine(settings.database_url)


def _campaign(engine: Engine, settings: Settings, subject: str, **fields: object) -> int:
    with Session(engine) as session:
        campaign = make_campaign(session, [make_snippet(session, settings)], subject=subject)
        for name, value in fields.items():
            setattr(campaign, name, value)
        session.commit()
        return campaign.id or 0


def _status(engine: Engine, campaign_id: int) -> str:
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status


def test_send_now_without_confirmation_shows_the_audience_and_sends_nothing(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    cid = _campaign(engine, settings, "Fresh news")
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    page = editor.post(f"/admin/campaigns/{cid}/send", data={"csrf_token": token})
    assert page.status_code == 200
    assert f"Send campaign {cid} now?" in page.text
    assert "<strong>2 readers</strong>" in page.text  # not the unsubscribed or paused one
    assert 'name="confirm" value="yes"' in page.text and "already went out" not in page.text
    assert _status(engine, cid) == "draft"


def test_the_confirmed_send_hands_the_campaign_to_the_scheduler(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    cid = _campaign(engine, settings, "Confirmed news")
    token = csrf_of(editor, f"/admin/campaigns/{cid}/send")
    sent = editor.post(f"/admin/campaigns/{cid}/send", data={"csrf_token": token, "confirm": "yes"})
    assert (sent.status_code, sent.headers["location"]) == (
        303,
        f"/admin/campaigns/{cid}/progress",
    )
    assert _status(engine, cid) == "scheduled"


def test_the_confirmed_send_still_needs_the_csrf_token(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    cid = _campaign(engine, settings, "Forged news")
    refused = editor.post(f"/admin/campaigns/{cid}/send", data={"confirm": "yes"})
    assert refused.status_code == 403
    assert _status(engine, cid) == "draft"


def test_the_confirmation_warns_that_a_duplicate_repeats_a_sent_campaign(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    original = _campaign(
        engine, settings, "Already out", status=S.SENT, started_at=utcnow(), finished_at=utcnow()
    )
    token = csrf_of(editor, f"/admin/campaigns/{original}")
    copy = editor.post(f"/admin/campaigns/{original}/duplicate", data={"csrf_token": token})
    copy_id = int(copy.headers["location"].split("/")[-1].split("?")[0])
    page = editor.get(f"/admin/campaigns/{copy_id}/send").text
    assert "This content already went out" in page
    assert f"Campaign {original}</a> had the same subject and snippets (sent, sent on " in page
    assert _status(engine, copy_id) == "draft"


def test_a_test_send_takes_name_and_address_entries(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    cid = _campaign(engine, settings, "Proof me")
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    sent = editor.post(
        f"/admin/campaigns/{cid}/test-send",
        data={"csrf_token": token, "to": "me@example.com, Editor <ed@example.com>"},
    )
    assert sent.status_code == 303, sent.text
    assert messages_to(settings, "me@example.com") and messages_to(settings, "ed@example.com")


def test_the_status_line_says_was_scheduled_for_a_paused_and_sent_on_for_a_sent_campaign(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    at = utcnow() + timedelta(days=2)
    paused = _campaign(engine, settings, "Held", status=S.PAUSED, scheduled_at=at)
    done = _campaign(
        engine,
        settings,
        "Gone",
        status=S.SENT,
        scheduled_at=at - timedelta(days=9),
        started_at=at - timedelta(days=9),
        finished_at=at - timedelta(days=8),
    )
    for path in (f"/admin/campaigns/{paused}", f"/admin/campaigns/{paused}/sending"):
        page = editor.get(path).text
        assert '<span class="muted">was scheduled for ' in page and 'muted">for ' not in page
    finished = weekly_plan.format_local(at - timedelta(days=8), settings)
    sent_page = editor.get(f"/admin/campaigns/{done}").text
    assert f'<span class="muted">sent on {finished}</span>' in sent_page


def test_the_confirmation_of_a_sent_campaign_offers_no_send(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    done = _campaign(engine, settings, "Gone out", status=S.SENT, finished_at=utcnow())
    page = editor.get(f"/admin/campaigns/{done}/send").text
    assert "is sent: Send now cannot start from there." in page
    assert 'name="confirm" value="yes"' not in page


def test_the_confirmation_names_preflight_errors_and_offers_no_send(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, _settings = shared
    with Session(engine) as session:
        empty = make_campaign(session, [], subject="Empty issue")
        session.commit()
        cid = empty.id or 0
    page = editor.get(f"/admin/campaigns/{cid}/send").text
    assert "campaign: the campaign has no snippets" in page
    assert 'name="confirm" value="yes"' not in page


def test_a_test_send_reads_a_quoted_name_with_a_comma(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    cid = _campaign(engine, settings, "Proof for Ed")
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    sent = editor.post(
        f"/admin/campaigns/{cid}/test-send",
        data={"csrf_token": token, "to": '"Ed, Jr" <jr@example.com>; me2@example.com'},
    )
    assert sent.status_code == 303, sent.text
    assert messages_to(settings, "jr@example.com") and messages_to(settings, "me2@example.com")


def test_the_confirmation_says_a_subject_test_goes_first_with_its_subjects(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: the page named the campaign's own subject and everyone."""
    engine, settings = shared
    cid = _campaign(engine, settings, "Own subject")
    with Session(engine) as session:
        subject_tests.create_test(
            session, campaign_id=cid, subjects=["Stretch A", "Stretch B"], preheaders=[],
            sample_percent=50, wait=timedelta(hours=6), metric="opens", actor=EDITOR,
        )  # fmt: skip
        session.commit()
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    page = editor.post(f"/admin/campaigns/{cid}/send", data={"csrf_token": token}).text
    assert "A subject test goes first: 50 % of these readers (about 1) get one of" in page
    assert "A: <strong>Stretch A</strong>" in page and "B: <strong>Stretch B</strong>" in page
    assert "After 6 hours, the subject with the most opens goes to everyone else" in page
    assert "Subject: <strong>Own subject</strong>" not in page
    assert "That is about 1 reader per subject: too few to tell" in page  # 2 readers, 50 %


def test_the_confirmation_shows_preflight_warnings_above_the_button(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: the snippet's [%name%] warning was in the editor only."""
    engine, settings = shared
    with Session(engine) as session:
        snippet = make_snippet(session, settings, title="Your plan, [%name%]")
        cid = make_campaign(session, [snippet], subject="Plans").id
        session.commit()
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    page = editor.post(f"/admin/campaigns/{cid}/send", data={"csrf_token": token}).text
    warned = page.split('id="preflight-warnings">', 1)[1].split("</div>", 1)[0]
    assert "[%name%] is shown to readers as written" in warned
    assert page.index('id="preflight-warnings"') < page.index('name="confirm" value="yes"')
