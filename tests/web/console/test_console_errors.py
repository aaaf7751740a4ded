"""Console refusals (web/errors.py, console surface): a console page that says what to do
in a marketer's words and links back to the page they came from (same origin only); an
unknown console path or a malformed id is the console's 404 page, not JSON. The API's
JSON errors stay as they were."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import db
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.console import EDITOR, add_users_cheaply, csrf_of
from tests.support.content import make_campaign, make_snippet


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    root = tmp_path_factory.mktemp("console-errors")
    settings = make_settings(f"sqlite:///{root / 'console.db'}", root)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    add_users_cheaply(engine, {EDITOR: Role.editor})
    yield engine, settings
    db.dispose_engine(settings.database_url)


def _draft(shared: tuple[Engine, Settings]) -> int:
    engine, settings = shared
    with Session(engine) as session:
        campaign = make_campaign(session, [make_snippet(session, settings)])
        session.commit()
        return campaign.id or 0


def _schedule_in_the_past(editor: httpx.Client, cid: int, referer: str) -> httpx.Response:
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    return editor.post(
        f"/admin/campaigns/{cid}/schedule",
        data={"csrf_token": token, "at": "2020-01-01T09:00"},
        headers={"Referer": referer},
    )


def _resume_a_draft(editor: httpx.Client, cid: int, referer: str) -> httpx.Response:
    """A refusal that is not about what was typed: the error map's page (409)."""
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    return editor.post(
        f"/admin/campaigns/{cid}/resume",
        data={"csrf_token": token},
        headers={"Referer": referer},
    )


def _post_form(editor: httpx.Client, page: str, action: str, **data: str) -> httpx.Response:
    """Post a form of ``page`` (its CSRF token read from it) to ``action``."""
    return editor.post(action, data={"csrf_token": csrf_of(editor, page), **data})


def test_a_refusal_links_back_to_the_page_the_marketer_came_from(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    came_from = str(editor.base_url).rstrip("/") + "/admin/campaigns?status=draft"
    refused = _resume_a_draft(editor, cid, came_from)
    assert refused.status_code == 409
    assert '<a href="/admin/campaigns?status=draft">Go back</a>' in refused.text


def test_a_refusal_never_links_back_to_another_site(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    for referer in ("https://evil.example/admin/campaigns/1", "//evil.example/admin/"):
        refused = _resume_a_draft(editor, cid, referer)
        assert f'<a href="/admin/campaigns/{cid}">Go back</a>' in refused.text  # the path's
        assert "evil.example" not in refused.text


def test_without_a_referer_a_refusal_links_to_the_page_above_the_one_refused(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """Our pages send Referrer-Policy: no-referrer, so browsers send no Referer."""
    cid = _draft(shared)
    refused = _resume_a_draft(editor, cid, "")
    assert f'<a href="/admin/campaigns/{cid}">Go back</a>' in refused.text


def test_a_time_refused_draws_the_editor_again_with_the_time_typed(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    refused = _schedule_in_the_past(editor, cid, "")
    assert refused.status_code == 400
    assert '<h2 id="h-headlines">' in refused.text  # the editor itself, not an error page
    assert 'value="2020-01-01T09:00" aria-invalid="true"' in refused.text
    assert 'id="schedule-error">' in refused.text


def test_a_refused_subject_keeps_what_was_typed_in_both_fields(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    page = f"/admin/campaigns/{cid}"
    typed = {"subject": "x" * 301, "preheader": "A preheader typed with care"}
    refused = _post_form(editor, page, f"{page}/headlines", **typed)
    assert refused.status_code == 400
    assert 'id="headlines-error">The subject has 301 characters; at most 300.' in refused.text
    assert f'value="{"x" * 301}"' in refused.text
    assert 'value="A preheader typed with care"' in refused.text


def test_a_refused_test_address_is_kept_to_be_corrected(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    page = f"/admin/campaigns/{cid}"
    refused = _post_form(editor, page, f"{page}/test-send", to="ed@example.com, nope")
    assert refused.status_code == 400
    assert 'value="ed@example.com, nope"' in refused.text
    assert 'id="test-send-error">' in refused.text


def test_a_refusal_links_past_a_button_address_to_the_page_above_it(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """/sending/subject-test takes only POSTs: the link skips it for /sending."""
    cid = _draft(shared)
    token = csrf_of(editor, f"/admin/campaigns/{cid}/sending")
    refused = editor.post(
        f"/admin/campaigns/{cid}/sending/subject-test/winner",
        data={"csrf_token": token, "label": "A"},
    )
    assert refused.status_code in (404, 409)  # this campaign has no subject test
    assert f'<a href="/admin/campaigns/{cid}/sending">Go back</a>' in refused.text


def test_a_visit_to_a_button_address_is_a_console_page_naming_the_allowed_method(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    visited = editor.get(f"/admin/campaigns/{cid}/schedule")
    assert (visited.status_code, visited.headers["allow"]) == (405, "POST")
    assert visited.headers["content-type"].startswith("text/html")
    assert "a button&#39;s, not a page. Go back and use the button on the page." in visited.text
    assert f'<a href="/admin/campaigns/{cid}">Go back</a>' in visited.text


def test_the_api_still_answers_a_wrong_method_in_json(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    answer = editor.get("/api/campaigns/1/schedule")
    assert answer.status_code == 405
    assert answer.json() == {"detail": "Method Not Allowed"}


def test_an_unknown_console_page_links_to_the_dashboard(editor: httpx.Client) -> None:
    assert '<a href="/admin/">Back to the dashboard</a>' in editor.get("/admin/nope").text


def test_a_time_in_the_past_says_what_to_do_without_the_field_prefix(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    refused = _schedule_in_the_past(editor, _draft(shared), "")
    assert "is in the past. Pick a date and time in the future, then schedule again." in (
        refused.text
    )
    assert "field &#39;at&#39;" not in refused.text


def test_a_bad_test_address_says_how_to_type_addresses(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    refused = editor.post(
        f"/admin/campaigns/{cid}/test-send", data={"csrf_token": token, "to": "not-an-address"}
    )
    assert refused.status_code == 400
    assert "Type addresses such as you@example.com or Editor &lt;ed@example.com&gt;" in (
        refused.text
    )
    assert "field &#39;to&#39;" not in refused.text


def test_too_few_snippets_to_reassemble_names_no_setting(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    cid = _draft(shared)
    token = csrf_of(editor, f"/admin/campaigns/{cid}")
    refused = editor.post(f"/admin/campaigns/{cid}/reassemble", data={"csrf_token": token})
    assert refused.status_code >= 400
    assert "NEWSLETTER_FILL_WITH_RESENT" not in refused.text
    assert "ask whoever runs the newsletter to allow reusing older snippets" in refused.text


@pytest.mark.parametrize("path", ["/admin/nope", "/admin/campaigns/abc"])
def test_an_unknown_console_path_is_the_console_404_page(editor: httpx.Client, path: str) -> None:
    response = editor.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in response.headers
    assert "There is no such page in the console." in response.text
    assert "Input should be a valid integer" not in response.text


def test_an_unknown_api_path_still_answers_json(editor: httpx.Client) -> None:
    response = editor.get("/api/nope")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_a_date_field_refused_by_fastapi_is_said_with_its_label(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A browser checks these first; one that did not still gets a line a marketer reads."""
    page = f"/admin/campaigns/{_draft(shared)}/sending"
    refused = _post_form(editor, page, f"{page}/local-time", local_time="09:00", on="2026-13-40")
    assert refused.status_code == 400
    assert "Date: type a date such as 2026-12-01." in refused.text
    assert "Input should be" not in refused.text and "field 'on'" not in refused.text


def test_a_refused_test_send_opens_with_the_line_linked_to_its_form_naming_it_once(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    """A marketer's review: the line sat under the two previews, out of sight, and said
    "'me@example': 'me@example' is not a valid email address"."""
    cid = _draft(shared)
    page = f"/admin/campaigns/{cid}"
    refused = _post_form(editor, page, f"{page}/test-send", to="me@example").text
    summary = refused.split('id="problem-summary">', 1)[1].split("</p>", 1)[0]
    assert summary.startswith('<strong>Not done:</strong> <a href="#test-send-error">')
    assert refused.index('id="problem-summary"') < refused.index("<iframe")
    assert summary.count("me@example") == 1
