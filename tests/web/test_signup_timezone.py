"""The reader's time zone on the sign-up form and the preferences page (issue 16), through
the app under uvicorn on 127.0.0.1 (Starlette's httpx.Client wants ``httpx2`` in this
Starlette; the house drives the real server with httpx anyway): the browser's zone in a
hidden field filled by our own script, a select as fallback, both checked against the
tz database."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.content.preview import CHROMIUM_ARGS
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, Tokens
from tests.support.servers import free_port, live_server
from tests.support.subscribers import AppSlot, make_subscriber, sqlite_only
from web.app import create_app


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    # The anti-robot challenge has its own tests (tests/web/test_challenge.py).
    return settings.model_copy(update={"signup_challenge": False, "timezone": "America/New_York"})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base


@pytest.fixture
def client(cfg: Settings, engine: Engine, server: tuple[AppSlot, str]) -> Iterator[httpx.Client]:
    slot, base = server
    slot.app = create_app(cfg.model_copy(update={"base_url": base}))
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        yield client
    slot.app = None


def sign_up(client: httpx.Client, address: str, status: int = 200, **fields: str) -> str:
    data = {"email": address, "name": "", "consent": "yes", "website": "", **fields}
    response = client.post("/subscribe", data=data)
    assert response.status_code == status
    return html.unescape(response.text)


def zone_of(engine: Engine, address: str) -> str | None:
    with Session(engine) as session:
        subscriber = lifecycle.find_by_email(session, email=address)
        assert subscriber is not None, address
        return subscriber.timezone


@sqlite_only
def test_the_form_has_a_labelled_zone_select_and_a_hidden_field_for_our_script(
    client: httpx.Client,
) -> None:
    page = client.get("/subscribe").text
    assert '<input type="hidden" id="timezone" name="timezone" value="">' in page
    assert '<label for="timezone_choice">Your time zone' in page
    assert '<option value="Asia/Tokyo">Asia/Tokyo</option>' in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/signup-timezone.js" defer>']


@sqlite_only
def test_our_script_is_served_by_the_app_and_allowed_by_the_csp(client: httpx.Client) -> None:
    script = client.get("/static/signup-timezone.js")
    assert script.status_code == 200
    assert "Intl.DateTimeFormat().resolvedOptions().timeZone" in script.text
    csp = client.get("/subscribe").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_the_browsers_zone_is_stored_with_the_sign_up(client: httpx.Client, engine: Engine) -> None:
    sign_up(client, "ann@example.com", timezone="Europe/Berlin", timezone_choice="")
    assert zone_of(engine, "ann@example.com") == "Europe/Berlin"


@sqlite_only
def test_a_zone_chosen_in_the_select_wins_over_the_browsers(
    client: httpx.Client, engine: Engine
) -> None:
    sign_up(client, "bob@example.com", timezone="Europe/Berlin", timezone_choice="Asia/Tokyo")
    assert zone_of(engine, "bob@example.com") == "Asia/Tokyo"


@sqlite_only
def test_no_zone_at_all_leaves_the_reader_on_the_lists(
    client: httpx.Client, engine: Engine
) -> None:
    sign_up(client, "cy@example.com")
    assert zone_of(engine, "cy@example.com") is None


@sqlite_only
def test_a_browser_value_that_is_no_iana_zone_is_dropped_not_an_error(
    client: httpx.Client, engine: Engine
) -> None:
    page = sign_up(client, "dee@example.com", timezone="GMT+2", timezone_choice="")
    assert "Check your inbox" in page
    assert zone_of(engine, "dee@example.com") is None


@sqlite_only
def test_a_chosen_zone_that_is_not_on_the_list_is_refused_with_one_line(
    client: httpx.Client, engine: Engine
) -> None:
    page = sign_up(client, "eve@example.com", 400, timezone_choice="Mars/Olympus_Mons")
    assert "Please choose your time zone from the list." in page
    with Session(engine) as session:
        assert lifecycle.find_by_email(session, email="eve@example.com") is None


def preferences_url(cfg: Settings, engine: Engine, zone: str | None) -> tuple[str, int]:
    with Session(engine, expire_on_commit=False) as session:
        reader = make_subscriber(session, "fay@example.com")
        reader.timezone = zone
        session.add(reader)
        session.commit()
        assert reader.id is not None
        return f"/preferences/{Tokens(cfg).make(Purpose.PREFERENCES, reader)}", reader.id


def test_the_preferences_page_changes_the_zone(
    client: httpx.Client, cfg: Settings, engine: Engine
) -> None:
    url, reader_id = preferences_url(cfg, engine, "Pacific/Chatham")
    page = client.get(url).text
    assert '<option value="Pacific/Chatham" selected>Pacific/Chatham</option>' in page
    assert "The newsletter's (America/New_York)" in page
    saved = client.post(url, data={"pause_weeks": "", "timezone_choice": "Europe/London"})
    assert "Your preferences are saved." in saved.text
    with Session(engine) as session:
        reader = session.get(Subscriber, reader_id)
        assert reader is not None and reader.timezone == "Europe/London"


@sqlite_only
def test_the_preferences_page_refuses_an_unknown_zone_and_keeps_the_old(
    client: httpx.Client, cfg: Settings, engine: Engine
) -> None:
    url, reader_id = preferences_url(cfg, engine, "Asia/Tokyo")
    posted = client.post(url, data={"pause_weeks": "", "timezone_choice": "Nowhere/Special"})
    assert posted.status_code == 400
    assert "Time zone 'Nowhere/Special' is not an IANA time zone name" in html.unescape(posted.text)
    with Session(engine) as session:
        reader = session.get(Subscriber, reader_id)
        assert reader is not None and reader.timezone == "Asia/Tokyo"


@pytest.mark.browser
@sqlite_only
def test_in_chromium_our_script_sends_the_browsers_zone(
    client: httpx.Client, engine: Engine, chromium_path: str
) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(timezone_id="Europe/Berlin").new_page()
            page.goto(f"{client.base_url}/subscribe")
            page.get_by_label("Email address").fill("gus@example.com")
            page.get_by_label("Yes, send me").check()
            page.get_by_role("button", name="Subscribe").click()
            page.locator("h1", has_text="Please check your inbox").wait_for()
        finally:
            browser.close()
    # (Chromium names some zones by their older tz link, Asia/Kolkata as Asia/Calcutta:
    # both are tz names zoneinfo loads, so either is kept.)
    assert zone_of(engine, "gus@example.com") == "Europe/Berlin"
