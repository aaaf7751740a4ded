"""The console's subscriber pages (web/console/subscribers.py): search, a person, add,
import with its report, export, erase (owners, twice), and viewers who only look."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import audit
from newsletter.accounts import Role
from newsletter.settings import Settings
from subscribers import lifecycle
from tests.support.console import EDITOR, OWNER, VIEWER, add_user, console_client, csrf_of, sign_in
from tests.support.subscribers import AppSlot, make_subscriber, messages_to


@pytest.fixture
def site(
    sqlite_settings: Settings, sqlite_engine: Engine, console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    for email, role in ((OWNER, Role.owner), (EDITOR, Role.editor), (VIEWER, Role.viewer)):
        add_user(sqlite_engine, email, role)
    with Session(sqlite_engine) as session:
        jane = make_subscriber(session, "jane@example.com", name="Jane")
        jane.topics = ["sciatica"]
        session.add(jane)
        session.commit()
        make_subscriber(session, "bob@example.org", status="unsubscribed")
        make_subscriber(session, "ann@example.com", status="pending")
    with console_client(console_server, sqlite_settings) as client:
        yield client


def _id(engine: Engine, email: str) -> int:
    with Session(engine) as session:
        found = lifecycle.find_by_email(session, email=email)
        assert found is not None and found.id is not None
        return found.id


def test_search_by_address_status_and_topic(site: httpx.Client) -> None:
    sign_in(site, VIEWER)
    everyone = site.get("/admin/subscribers").text
    assert "3 people" in everyone
    example_com = site.get("/admin/subscribers", params={"q": "EXAMPLE.com"}).text
    assert "jane@example.com" in example_com and "bob@example.org" not in example_com
    left = site.get("/admin/subscribers", params={"status": "unsubscribed"}).text
    assert "1 person" in left and "bob@example.org" in left
    sciatica = site.get("/admin/subscribers", params={"topic": "sciatica"}).text
    assert "1 person" in sciatica and "jane@example.com" in sciatica
    assert site.get("/admin/subscribers", params={"status": "gone"}).status_code == 400


def test_a_paused_reader_is_listed_as_active_and_paused_until_the_date(
    site: httpx.Client, sqlite_engine: Engine
) -> None:
    until = date.today() + timedelta(days=20)
    with Session(sqlite_engine) as session:
        resting = make_subscriber(session, "resting@example.com")
        resting.paused_until = until
        session.add(resting)
        ended = make_subscriber(session, "back@example.com")
        ended.paused_until = date.today() - timedelta(days=1)
        session.add(ended)
        session.commit()
    sign_in(site, VIEWER)
    page = site.get("/admin/subscribers", params={"status": "active"}).text
    assert f'active</span><span class="small">, paused until {until.isoformat()}</span>' in page
    assert page.count("paused until") == 1  # a pause that has ended is not shown


def test_a_persons_page_shows_consent_history(site: httpx.Client, sqlite_engine: Engine) -> None:
    sign_in(site, VIEWER)
    page = site.get(f"/admin/subscribers/{_id(sqlite_engine, 'jane@example.com')}")
    assert page.status_code == 200
    assert "Consent history" in page.text and "test fixture" in page.text
    assert "No issue sent to them yet." in page.text
    assert site.get("/admin/subscribers/999999").status_code == 404


def test_a_viewer_sees_no_change_buttons_and_cannot_post(
    site: httpx.Client, sqlite_engine: Engine
) -> None:
    sign_in(site, VIEWER)
    page = site.get("/admin/subscribers").text
    assert "Add someone" not in page and "Import a CSV" not in page and "Export" not in page
    token = csrf_of(site, "/admin/subscribers")
    added = site.post(
        "/admin/subscribers/add", data={"csrf_token": token, "email": "x@example.com"}
    )
    assert added.status_code == 403
    jane = _id(sqlite_engine, "jane@example.com")
    assert "Erase" not in site.get(f"/admin/subscribers/{jane}").text
    erase = site.post(
        f"/admin/subscribers/{jane}/erase",
        data={"csrf_token": token, "confirm_email": "jane@example.com"},
    )
    assert erase.status_code == 403
    assert site.get("/admin/subscribers/export").status_code == 403


def test_adding_someone_starts_double_opt_in_and_is_audited(
    site: httpx.Client, sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    sign_in(site, EDITOR)
    token = csrf_of(site, "/admin/subscribers")
    response = site.post(
        "/admin/subscribers/add",
        data={"csrf_token": token, "email": "New@Example.com", "name": "Nia"},
    )
    assert response.status_code == 303
    page = site.get(response.headers["location"]).text
    assert "A confirmation email is on its way" in page and "pending" in page
    assert len(messages_to(sqlite_settings, "new@example.com")) == 1
    with Session(sqlite_engine) as session:
        entry = audit.recent(session, limit=1).entries[0]
    assert (entry.actor, entry.action) == (EDITOR, "subscriber.add")
    assert entry.target_id == str(_id(sqlite_engine, "new@example.com"))


def test_a_refused_address_is_kept_with_the_name_next_to_one_line(
    site: httpx.Client, sqlite_settings: Settings
) -> None:
    sign_in(site, EDITOR)
    token = csrf_of(site, "/admin/subscribers")
    typed = {"email": "nia@example", "name": "Nia"}
    refused = site.post("/admin/subscribers/add", data={"csrf_token": token, **typed})
    assert refused.status_code == 400
    assert 'id="add-error">' in refused.text
    assert 'value="nia@example" aria-invalid="true"' in refused.text
    assert 'value="Nia"' in refused.text
    assert messages_to(sqlite_settings, "nia@example") == []


def test_a_search_pasted_with_a_tab_finds_the_address(site: httpx.Client) -> None:
    sign_in(site, VIEWER)
    found = site.get("/admin/subscribers", params={"q": "jane@example.com\t"})
    assert found.status_code == 200 and "jane@example.com" in found.text


def test_a_csv_import_shows_progress_then_the_bad_rows(site: httpx.Client) -> None:
    sign_in(site, EDITOR)
    token = csrf_of(site, "/admin/subscribers")
    csv = b"email,name\ngood@example.com,Good\nnot-an-address,Bad\n"
    response = site.post(
        "/admin/subscribers/import",
        data={"csrf_token": token},
        files={"file": ("people.csv", csv, "text/csv")},
    )
    assert response.status_code == 303
    deadline = time.monotonic() + 10
    while "Done:" not in (page := site.get(response.headers["location"]).text):
        assert 'http-equiv="refresh"' in page
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "2 rows read, 1 bad" in page
    assert re.search(r"<td class=\"num\">3</td><td>not-an-address</td>", page)
    assert "good@example.com" in site.get("/admin/subscribers", params={"q": "good"}).text


def test_export_downloads_the_list(site: httpx.Client) -> None:
    sign_in(site, EDITOR)
    response = site.get("/admin/subscribers/export", params={"status": "active"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="subscribers.csv"'
    assert "jane@example.com" in response.text and "bob@example.org" not in response.text


def test_erasing_needs_an_owner_the_confirmation_page_and_the_typed_address(
    site: httpx.Client, sqlite_engine: Engine
) -> None:
    jane = _id(sqlite_engine, "jane@example.com")
    sign_in(site, EDITOR)
    assert site.get(f"/admin/subscribers/{jane}/erase").status_code == 403
    site.cookies.clear()
    sign_in(site, OWNER)
    token = csrf_of(site, f"/admin/subscribers/{jane}/erase")
    wrong = site.post(
        f"/admin/subscribers/{jane}/erase",
        data={"csrf_token": token, "confirm_email": "bob@example.org"},
    )
    assert wrong.status_code == 400 and "nothing was erased" in wrong.text
    done = site.post(
        f"/admin/subscribers/{jane}/erase",
        data={"csrf_token": token, "confirm_email": "Jane@example.com"},
    )
    assert done.status_code == 303
    assert "was erased" in site.get(done.headers["location"]).text
    assert site.get(f"/admin/subscribers/{jane}").status_code == 404
    with Session(sqlite_engine) as session:
        entry = audit.recent(session, limit=1).entries[0]
    assert (entry.action, entry.target_id) == ("subscriber.erase", str(jane))
    assert "jane" not in str(entry.after)
