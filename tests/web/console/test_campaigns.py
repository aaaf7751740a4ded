"""The console's campaign pages (web/console/campaigns.py): the list, the editor and its
forms, the sandboxed previews, and the refusals (a viewer, a missing CSRF token, a
campaign that is sending)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import editing
from campaigns.models import Campaign, CampaignStatus
from newsletter import db
from newsletter.accounts import Role
from newsletter.clock import utcnow
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.console import (
    EDITOR,
    VIEWER,
    add_users_cheaply,
    csrf_of,
    sign_in,
)
from tests.support.content import make_campaign, make_snippet

S = CampaignStatus


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    root = tmp_path_factory.mktemp("console-campaigns")
    settings = make_settings(f"sqlite:///{root / 'console.db'}", root)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    add_users_cheaply(engine, {EDITOR: Role.editor, VIEWER: Role.viewer})
    yield engine, settings
    db.dispose_engine(settings.database_url)


def _draft(engine: Engine, settings: Settings, count: int = 2) -> tuple[int, list[int]]:
    with Session(engine) as session:
        snippets = [make_snippet(session, settings) for _ in range(count)]
        campaign = make_campaign(session, snippets)
        session.commit()
        return campaign.id or 0, [s.id or 0 for s in snippets]


def _order(engine: Engine, campaign_id: int) -> list[int]:
    with Session(engine) as session:
        return editing.snippet_ids(session, campaign_id=campaign_id)


def test_the_editor_shows_hints_findings_previews_and_buttons_for_every_snippet(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid, ids = _draft(*shared)
    page = editor.get(f"/admin/campaigns/{cid}")
    assert page.status_code == 200
    html = page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    assert '<label for="subject">Subject</label>' in html
    assert "14 characters; 40-130 read best; add a few words" in html  # "Preheader text"
    assert html.count("<iframe sandbox ") == 3  # desktop, mobile, text part
    for snippet_id in ids:
        assert 'aria-label="Move up: Article' in html and f'id="snippet-{snippet_id}"' in html
    assert "No findings: ready to send." in html


def test_the_preview_is_the_rendered_email_for_a_named_and_an_unnamed_reader(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid, _ = _draft(*shared)
    named = editor.get(f"/admin/campaigns/{cid}/preview?reader=named")
    unnamed = editor.get(f"/admin/campaigns/{cid}/preview?reader=unnamed")
    assert "Alex" in named.text and "Alex" not in unnamed.text
    assert "sandbox" in named.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in named.headers["content-security-policy"]
    assert named.headers["x-frame-options"] == "SAMEORIGIN"
    text = editor.get(f"/admin/campaigns/{cid}/preview.txt?reader=unnamed")
    assert text.headers["content-type"].startswith("text/plain") and "Unsubscribe" in text.text


def test_saving_the_subject_and_moving_a_snippet_redirect_back_to_the_editor(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, _ = shared
    cid, (first, second) = _draft(*shared)
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    saved = editor.post(
        f"/admin/campaigns/{cid}/headlines",
        data={"csrf_token": token, "subject": "Sciatica, eased", "preheader": "Read this"},
    )
    assert (saved.status_code, saved.headers["location"]) == (
        303,
        f"/admin/campaigns/{cid}?done=headlines",
    )
    moved = editor.post(
        f"/admin/campaigns/{cid}/snippets",
        data={"csrf_token": token, "snippet_id": second, "change": "up"},
    )
    assert moved.status_code == 303
    assert _order(engine, cid) == [second, first]
    assert "Subject and preheader saved." in editor.get(saved.headers["location"]).text


def test_a_subject_over_the_limit_is_kept_whole_and_refused_with_its_count(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: the field's maxlength cut a pasted subject mid-word and saved it."""
    cid, _ = _draft(*shared)
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    long = "Stretch " * 40  # 320 characters; 319 once stripped
    refused = editor.post(
        f"/admin/campaigns/{cid}/headlines",
        data={"csrf_token": token, "subject": long, "preheader": "Read this"},
    )
    assert refused.status_code == 400
    line = "The subject has 319 characters; at most 300."
    assert f'role="alert" id="headlines-error">{line}</p>' in refused.text
    assert (
        f'value="{long}"' in refused.text
        and 'maxlength="300"' not in refused.text.split('id="subject"', 1)[1].split(">", 1)[0]
    )
    hint = refused.text.split('id="subject-hint"', 1)[1].split("</p>", 1)[0]
    assert hint.split(">", 1)[1].startswith("319 characters")  # what was typed, not saved


def test_editing_a_sending_campaign_is_refused_with_the_reason(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        campaign = make_campaign(session, [make_snippet(session, settings)], status=S.SENDING)
        campaign.started_at = utcnow()
        session.commit()
        cid = campaign.id or 0
    page = editor.get(f"/admin/campaigns/{cid}").text
    assert "Editing is closed: campaign" in page and "is sending" in page
    assert "Save subject and preheader" not in page
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    refused = editor.post(
        f"/admin/campaigns/{cid}/headlines", data={"csrf_token": token, "subject": "Late"}
    )
    assert refused.status_code == 409
    assert "is sending: readers are getting this content now" in refused.text


def test_a_post_without_the_csrf_token_is_refused(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid, _ = _draft(*shared)
    response = editor.post(f"/admin/campaigns/{cid}/headlines", data={"subject": "Sneaky"})
    assert response.status_code == 403
    with Session(shared[0]) as session:
        assert session.get(Campaign, cid).subject == "Test issue"  # type: ignore[union-attr]


def test_a_viewer_sees_the_editor_but_every_change_is_refused(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid, _ = _draft(*shared)
    with httpx.Client(base_url=str(editor.base_url), follow_redirects=False) as viewer:
        sign_in(viewer, VIEWER)
        page = viewer.get(f"/admin/campaigns/{cid}")
        assert page.status_code == 200 and "Save subject and preheader" not in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        for path in ("headlines", "duplicate", "send", "reassemble"):
            response = viewer.post(
                f"/admin/campaigns/{cid}/{path}", data={"csrf_token": token, "subject": "x"}
            )
            assert response.status_code == 403, path


def test_the_list_shows_status_and_counts_and_duplicate_opens_the_copy(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid, ids = _draft(*shared)
    listing = editor.get("/admin/campaigns").text
    assert f'<a href="/admin/campaigns/{cid}">Test issue</a>' in listing
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    copy = editor.post(f"/admin/campaigns/{cid}/duplicate", data={"csrf_token": token})
    copy_id = int(copy.headers["location"].split("/")[-1].split("?")[0])
    assert copy_id != cid and _order(shared[0], copy_id) == ids


def test_the_first_snippet_cannot_move_up_nor_the_last_down(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: those two buttons were shown and did nothing."""
    cid, _ = _draft(*shared)
    page = editor.get(f"/admin/campaigns/{cid}").text
    titles = re.findall(r'aria-label="Remove: ([^"]+)"', page)
    assert len(titles) == 2
    assert f'aria-label="Move up: {titles[0]}"' not in page
    assert f'aria-label="Move down: {titles[0]}"' in page
    assert f'aria-label="Move up: {titles[1]}"' in page
    assert f'aria-label="Move down: {titles[1]}"' not in page
