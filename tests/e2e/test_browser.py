"""A real browser (Debian chromium via Playwright) through the subscriber journey:
sign up -> confirmation email from the outbox -> confirm -> RFC 8058 one-click
unsubscribe, plus a basic accessibility check of every page on the way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.content.preview import CHROMIUM_ARGS
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.suppression import find_suppression
from subscribers.tokens import Purpose, Tokens
from tests.conftest import CHROMIUM, NO_CHROMIUM
from tests.support.servers import free_port, live_server
from tests.support.subscribers import link, messages_to
from tests.support.web import arrived
from web.app import create_app

pytestmark = pytest.mark.browser
# Issue 16: the sign-up form's own script, which fills in the browser's time zone.
TIMEZONE_JS = "/static/signup-timezone.js"


# Colour and effective background of every visible text element, walking up to the first
# ancestor with an opaque background.
_COLOURS_JS = """
() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const bg = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll('h1, p, label, span, a, button, legend, li, option')]
    .filter(e => e.offsetParent !== null && e.textContent.trim())
    .filter(e => !e.closest('[aria-hidden=true]'))
    .map(e => ({text: e.textContent.trim().slice(0, 40),
                fg: rgb(getComputedStyle(e).color).slice(0, 3), bg: bg(e)}));
}
"""

# Form controls without a <label for=...> (hidden inputs and the honeypot excepted).
_UNLABELLED_JS = """
() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && !e.closest('[aria-hidden=true]'))
  .filter(e => !e.id || !document.querySelector(`label[for="${e.id}"]`))
  .map(e => e.name)
"""


def _luminance(rgb: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    light, dark = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def assert_accessible(page: Page, scripts: tuple[str, ...] = ()) -> None:
    """Language, labels, WCAG AA contrast; no script but the files named in ``scripts``."""
    assert page.get_attribute("html", "lang") == "en"
    assert page.evaluate(_UNLABELLED_JS) == []
    low = [
        (c["text"], round(contrast(c["fg"], c["bg"]), 2))
        for c in page.evaluate(_COLOURS_JS)
        if contrast(c["fg"], c["bg"]) < 4.5
    ]
    assert low == []
    assert page.locator("script").count() == len(scripts)
    assert [page.locator("script").nth(i).get_attribute("src") for i in range(len(scripts))] == [
        *scripts
    ]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def browser(chromium: Browser, chromium_path: str) -> Iterator[BrowserContext]:
    """A fresh context (no cookies, no cache) per test on one shared chromium."""
    context = chromium.new_context()
    yield context
    context.close()


def _serve(settings: Settings, **overrides: object) -> Iterator[tuple[str, Settings]]:
    port = free_port()
    cfg = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}", **overrides})
    with live_server(create_app(cfg), port) as base:
        yield base, cfg


# The pages without the sign-up form's anti-robot check, which is the one script of the
# site: its own test below drives it (test_the_form_solves_its_challenge_and_signs_up).
@pytest.fixture
def served(settings: Settings, engine: Engine) -> Iterator[tuple[str, Settings]]:
    """The app on each database kind (the full journey runs on both)."""
    yield from _serve(settings, signup_challenge=False)


@pytest.fixture
def served_sqlite(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> Iterator[tuple[str, Settings]]:
    """Pages only: the database kind does not matter here."""
    yield from _serve(sqlite_settings, signup_challenge=False)


def status_of(engine: Engine, address: str) -> Any:
    with Session(engine) as session:
        subscriber = lifecycle.find_by_email(session, email=address)
        suppression = find_suppression(session, email=address)
        return (
            subscriber.status if subscriber else None,
            suppression.reason if suppression else None,
        )


def test_sign_up_confirm_and_one_click_unsubscribe(
    playwright: Playwright, browser: BrowserContext, served: tuple[str, Settings], engine: Engine
) -> None:
    base, cfg = served
    page = browser.new_page()
    page.goto(f"{base}/subscribe")
    assert_accessible(page, scripts=(TIMEZONE_JS,))
    page.get_by_label("Email address").fill("reader@example.com")
    page.get_by_label("First name").fill("Robin")
    page.get_by_label(cfg.consent_text).check()
    page.get_by_role("button", name="Subscribe").click()
    assert page.locator("h1").inner_text() == "Please check your inbox"
    assert_accessible(page)
    assert status_of(engine, "reader@example.com") == ("pending", None)

    [confirmation] = arrived(cfg, "reader@example.com")
    page.goto(link(confirmation, "confirm"))
    assert page.locator("h1").inner_text() == "Thank you, you are subscribed"
    assert_accessible(page)
    assert status_of(engine, "reader@example.com") == ("active", None)

    welcome = messages_to(cfg, "reader@example.com")[-1]
    unsubscribe_url = welcome["List-Unsubscribe"].strip().strip("<>")
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # What a mailbox provider does: a bare POST, no cookies, no user, no redirects followed.
    request = playwright.request.new_context()
    response = request.post(
        unsubscribe_url, form={"List-Unsubscribe": "One-Click"}, max_redirects=0
    )
    assert response.status == 200
    assert "set-cookie" not in response.headers
    request.dispose()
    assert status_of(engine, "reader@example.com") == ("unsubscribed", "unsubscribe")


def test_unsubscribe_page_button_and_preferences_page(
    browser: BrowserContext, served_sqlite: tuple[str, Settings], sqlite_engine: Engine
) -> None:
    base, cfg = served_sqlite
    engine = sqlite_engine
    page = browser.new_page()
    page.goto(f"{base}/subscribe")
    page.get_by_label("Email address").fill("pat@example.com")
    page.get_by_label(cfg.consent_text).check()
    page.get_by_role("button", name="Subscribe").click()
    page.goto(link(arrived(cfg, "pat@example.com")[0], "confirm"))
    page.get_by_role("link", name="choose the topics you want or pause the newsletter").click()
    assert page.locator("h1").inner_text() == "Your preferences"
    assert_accessible(page)
    page.get_by_label("Sciatica").check()
    page.get_by_label(cfg.topics_consent_text).check()
    page.get_by_role("button", name="Save preferences").click()
    assert page.get_by_role("status").inner_text() == "Your preferences are saved."

    with Session(engine) as session:
        subscriber = lifecycle.get_by_email(session, email="pat@example.com")
    assert subscriber.topics == ["sciatica"]
    page.goto(Tokens(cfg).url(Purpose.UNSUBSCRIBE, subscriber))
    assert_accessible(page)
    assert status_of(engine, "pat@example.com") == ("active", None)
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert_accessible(page)
    assert status_of(engine, "pat@example.com") == ("unsubscribed", "unsubscribe")


def test_bad_link_page_is_clear_and_accessible(
    browser: BrowserContext, served_sqlite: tuple[str, Settings]
) -> None:
    base, _cfg = served_sqlite
    page = browser.new_page()
    response = page.goto(f"{base}/unsubscribe/tampered.token.value")
    assert response is not None and response.status == 400
    assert page.locator("h1").inner_text() == "This link does not work"
    assert_accessible(page)


@pytest.fixture
def served_with_challenge(settings: Settings, engine: Engine) -> Iterator[tuple[str, Settings]]:
    """The form as shipped, its anti-robot check on (a little easier than the default)."""
    yield from _serve(settings, signup_challenge_max_number=300, signup_challenge_cost=1000)


def test_the_form_solves_its_challenge_and_signs_up_by_keyboard(
    browser: BrowserContext, served_with_challenge: tuple[str, Settings], engine: Engine
) -> None:
    """Our script (web/static/signup-challenge.js) solves the challenge in Chromium; the
    reader fills the form and sends it with the keyboard alone, and is told what happens."""
    base, cfg = served_with_challenge
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(f"{base}/subscribe")
    assert_accessible(page, scripts=(TIMEZONE_JS, "/static/signup-challenge.js"))
    status = page.get_by_role("status")
    page.get_by_label("Email address").focus()
    page.keyboard.type("kim@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("Kim")
    page.keyboard.press("Tab")  # the time zone select, left as the browser says (issue 16)
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the consent box
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Subscribe"
    page.keyboard.press("Enter")
    page.locator("h1", has_text="Please check your inbox").wait_for(timeout=60_000)
    assert_accessible(page)
    assert status_of(engine, "kim@example.com") == ("pending", None)
    [confirmation] = arrived(cfg, "kim@example.com")
    assert link(confirmation, "confirm").startswith(f"{base}/confirm/")
    assert [line for line in console if "error" in line.lower()] == []
    del status


def test_the_solver_says_when_the_check_is_done(
    browser: BrowserContext, served_with_challenge: tuple[str, Settings], engine: Engine
) -> None:
    base, _ = served_with_challenge
    page = browser.new_page()
    page.goto(f"{base}/subscribe")
    done = page.get_by_role("status").filter(has_text="Anti-robot check done")
    done.wait_for(timeout=60_000)
    payload = page.locator("input[name=altcha]").input_value()
    assert payload and page.get_by_role("status").get_attribute("aria-live") == "polite"
