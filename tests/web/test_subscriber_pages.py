"""The subscriber pages under a real uvicorn on 127.0.0.1, driven by httpx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.clock import utcnow
from newsletter.db import dispose_engine
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.erasure import erase
from subscribers.models import Subscriber
from subscribers.suppression import find_suppression, is_suppressed
from subscribers.tokens import Purpose, Tokens
from tests.support.servers import free_port, live_server
from tests.support.subscribers import (
    AppSlot,
    link,
    messages,
    messages_to,
    sqlite_only,
)
from tests.support.web import arrived
from web.app import create_app

FORM = "application/x-www-form-urlencoded"


@dataclass
class Site:
    client: httpx.Client
    settings: Settings
    engine: Engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def subscriber(self, address: str) -> Subscriber | None:
        with self.session() as session:
            return lifecycle.find_by_email(session, email=address)

    def subscribe(self, address: str, **extra: str) -> httpx.Response:
        data = {"email": address, "name": "", "consent": "yes", "website": "", **extra}
        return self.client.post("/subscribe", data=data)

    def confirmed(self, address: str) -> Subscriber:
        assert self.subscribe(address).status_code == 200
        url = link(arrived(self.settings, address)[-1], "confirm")
        assert self.client.get(url).status_code == 200
        subscriber = self.subscriber(address)
        assert subscriber is not None and subscriber.status == "active"
        return subscriber

    def token(self, purpose: Purpose, subscriber: Subscriber) -> str:
        return Tokens(self.settings).make(purpose, subscriber)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base


@pytest.fixture
def site(settings: Settings, engine: Engine, server: tuple[AppSlot, str]) -> Iterator[Site]:
    slot, base = server
    # The anti-robot challenge has its own tests (tests/web/test_challenge.py): here the
    # form's other rules are posted without one.
    cfg = settings.model_copy(
        update={"base_url": base, "signup_limit_per_hour": 5, "signup_challenge": False}
    )
    slot.app = create_app(cfg)
    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        yield Site(client, cfg, engine)
    slot.app = None


def h1(response: httpx.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert found, response.text
    return found.group(1).strip()


def main_text(response: httpx.Response) -> str:
    found = re.search(r"<main id=\"main\">(.*?)</main>", response.text, re.S)
    assert found
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


# ---------------------------------------------------------------- the form


@sqlite_only
def test_subscribe_form_is_accessible_html(site: Site) -> None:
    response = site.client.get("/subscribe")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="en">' in response.text
    for field in ("email", "name", "consent"):
        assert f'<label for="{field}"' in response.text or f'for="{field}">' in response.text
        assert f'id="{field}"' in response.text
    # Only our own script files (issue 16: the time zone), never an inline script.
    scripts = re.findall(r"<script[^>]*>", response.text)
    assert scripts == ['<script src="/static/signup-timezone.js" defer>']
    assert site.settings.consent_text in response.text


def test_sign_up_shows_check_your_inbox(site: Site) -> None:
    response = site.subscribe("jane@example.com")
    assert (response.status_code, h1(response)) == (200, "Please check your inbox")
    assert site.subscriber("jane@example.com").status == "pending"
    [message] = arrived(site.settings)
    assert link(message, "confirm").startswith(f"{site.settings.base_url}/confirm/")


@sqlite_only
def test_sign_up_records_ip_and_user_agent(site: Site) -> None:
    site.client.post(
        "/subscribe",
        headers={"User-Agent": "TestBrowser/1.0"},
        data={"email": "jane@example.com", "consent": "yes"},
    )
    subscriber = site.subscriber("jane@example.com")
    with site.session() as session:
        [event] = lifecycle.history(session, subscriber_id=subscriber.id)
    assert (event.ip, event.user_agent, event.source, event.consent_version) == (
        "127.0.0.1",
        "TestBrowser/1.0",
        "form",
        site.settings.consent_version,
    )


def test_answer_is_the_same_for_new_pending_and_active_addresses(site: Site) -> None:
    site.confirmed("active@example.com")
    site.subscribe("pending@example.com")
    answers = {
        site.subscribe(a).text
        for a in ("new@example.com", "pending@example.com", "active@example.com")
    }
    assert len(answers) == 1


@sqlite_only
def test_invalid_address_gets_the_form_back_with_the_reason(site: Site) -> None:
    response = site.subscribe("jane@@example.com", name="Jane")
    assert response.status_code == 400
    assert "is not a valid email address" in main_text(response)
    assert 'value="jane@@example.com"' in response.text
    assert 'value="Jane"' in response.text
    assert messages(site.settings) == []


@sqlite_only
def test_sql_looking_address_is_refused_and_escaped(site: Site) -> None:
    response = site.subscribe("x'\"><b>; DROP TABLE subscriber;--")
    assert response.status_code == 400
    assert "<b>;" not in response.text
    with site.session() as session:
        assert session.exec(select(Subscriber)).all() == []


@sqlite_only
def test_missing_consent_box_is_explained(site: Site) -> None:
    response = site.client.post("/subscribe", data={"email": "jane@example.com"})
    assert response.status_code == 400
    assert "Please tick the box to confirm that you want the newsletter." in response.text
    assert site.subscriber("jane@example.com") is None


@sqlite_only
def test_honeypot_answers_like_success_but_does_nothing(site: Site) -> None:
    response = site.subscribe("bot@example.com", website="http://spam.example")
    assert (response.status_code, h1(response)) == (200, "Please check your inbox")
    assert site.subscriber("bot@example.com") is None
    assert messages(site.settings) == []


@sqlite_only
def test_unknown_field_is_named_and_input_kept(site: Site) -> None:
    response = site.subscribe("jane@example.com", is_admin="1")
    assert response.status_code == 400
    assert "The form contained unexpected field(s) 'is_admin'; please use this form." in main_text(
        response
    ).replace("&#39;", "'")
    assert 'value="jane@example.com"' in response.text
    assert site.subscriber("jane@example.com") is None


@sqlite_only
def test_oversize_body_is_refused_cleanly(site: Site) -> None:
    big = "x" * (site.settings.form_max_bytes + 1)
    response = site.subscribe("jane@example.com", name=big)
    assert (response.status_code, h1(response)) == (413, "That was too much data")
    assert site.subscriber("jane@example.com") is None


@sqlite_only
def test_file_upload_is_refused(site: Site) -> None:
    response = site.client.post(
        "/subscribe",
        data={"email": "jane@example.com", "consent": "yes"},
        files={"file": ("a.txt", b"hello")},
    )
    assert response.status_code == 400
    assert "The form could not be read" in response.text


@sqlite_only
def test_multipart_sign_up_works(site: Site) -> None:
    response = site.client.post(
        "/subscribe", files={"email": (None, "jane@example.com"), "consent": (None, "yes")}
    )
    assert response.status_code == 200
    assert site.subscriber("jane@example.com").status == "pending"


@sqlite_only
def test_rate_limit_per_ip(site: Site) -> None:
    codes = [site.subscribe(f"p{i}@example.com").status_code for i in range(6)]
    assert codes == [200, 200, 200, 200, 200, 429]
    blocked = site.subscribe("late@example.com")
    assert h1(blocked) == "Too many sign-ups"
    assert 0 < int(blocked.headers["retry-after"]) <= site.settings.signup_limit_window_seconds
    assert site.subscriber("late@example.com") is None


@sqlite_only
def test_honeypot_posts_count_toward_the_rate_limit(site: Site) -> None:
    for i in range(5):
        site.subscribe(f"bot{i}@example.com", website="http://spam.example")
    assert site.subscribe("real@example.com").status_code == 429
    assert site.subscriber("real@example.com") is None


def test_rate_limit_state_belongs_to_each_database_not_each_app(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """Apps on one database (uvicorn workers, instances) share one count; an app on
    another database has its own. Nothing is kept in a process."""
    cfg = settings.model_copy(update={"signup_limit_per_hour": 1})
    first, second = create_app(cfg), create_app(cfg)
    elsewhere = cfg.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'other.db'}"})
    try:
        other = create_app(elsewhere)
        assert first.state.signup_limiter.hit("192.0.2.1") is None
        assert first.state.signup_limiter.hit("192.0.2.1") is not None
        assert second.state.signup_limiter.hit("192.0.2.1") is not None
        assert other.state.signup_limiter.hit("192.0.2.1") is None
    finally:
        dispose_engine(elsewhere.database_url)


# ---------------------------------------------------------------- confirm


def test_confirm_link_activates_and_thanks(site: Site) -> None:
    site.subscribe("jane@example.com")
    response = site.client.get(link(arrived(site.settings)[0], "confirm"))
    assert (response.status_code, h1(response)) == (200, "Thank you, you are subscribed")
    assert site.subscriber("jane@example.com").status == "active"
    assert f'href="{site.settings.base_url}/preferences/' in response.text


@sqlite_only
def test_confirm_again_says_already_subscribed(site: Site) -> None:
    site.subscribe("jane@example.com")
    url = link(arrived(site.settings)[0], "confirm")
    site.client.get(url)
    response = site.client.get(url)
    assert (response.status_code, h1(response)) == (200, "You are already subscribed")


@sqlite_only
def test_tampered_confirm_link_gets_a_clear_page(site: Site) -> None:
    site.subscribe("jane@example.com")
    url = link(arrived(site.settings)[0], "confirm")
    response = site.client.get(url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb"))
    assert (response.status_code, h1(response)) == (400, "This link does not work")
    assert main_text(response) == (
        "This link does not work This confirm link is not valid. Sign up again and we will "
        "send you a fresh confirmation link. Sign up again"
    )
    assert "Traceback" not in response.text


@sqlite_only
def test_expired_confirm_link_gets_a_clear_page(site: Site) -> None:
    site.subscribe("jane@example.com")
    subscriber = site.subscriber("jane@example.com")
    old = Tokens(site.settings).make(
        Purpose.CONFIRM, subscriber, issued_at=utcnow() - timedelta(days=8)
    )
    response = site.client.get(f"/confirm/{old}")
    assert (response.status_code, h1(response)) == (400, "This link has expired")
    assert site.subscriber("jane@example.com").status == "pending"


@sqlite_only
def test_unsubscribe_token_cannot_confirm(site: Site) -> None:
    site.subscribe("jane@example.com")
    subscriber = site.subscriber("jane@example.com")
    response = site.client.get(f"/confirm/{site.token(Purpose.UNSUBSCRIBE, subscriber)}")
    assert (response.status_code, h1(response)) == (400, "This link does not work")
    assert site.subscriber("jane@example.com").status == "pending"


@sqlite_only
def test_confirm_link_of_an_erased_sign_up_says_it_expired(site: Site) -> None:
    site.subscribe("jane@example.com")
    url = link(arrived(site.settings)[0], "confirm")
    with site.session() as session:
        erase(session, email="jane@example.com")
        session.commit()
    response = site.client.get(url)
    assert (response.status_code, h1(response)) == (400, "This sign-up has expired")
    assert 'href="/subscribe"' in response.text
    assert response.headers["cache-control"] == "no-store"


@sqlite_only
def test_confirm_link_after_leaving_is_no_longer_valid(site: Site) -> None:
    site.subscribe("jane@example.com")
    url = link(arrived(site.settings)[0], "confirm")
    subscriber = site.subscriber("jane@example.com")
    site.client.post(f"/unsubscribe/{site.token(Purpose.UNSUBSCRIBE, subscriber)}")
    response = site.client.get(url)
    assert (response.status_code, h1(response)) == (409, "This link is no longer valid")
    assert site.subscriber("jane@example.com").status == "unsubscribed"


# ---------------------------------------------------------------- unsubscribe


@sqlite_only
def test_unsubscribe_get_shows_one_button_and_changes_nothing(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    token = site.token(Purpose.UNSUBSCRIBE, subscriber)
    response = site.client.get(f"/unsubscribe/{token}")
    assert (response.status_code, h1(response)) == (200, "Unsubscribe from Pain Relief Weekly?")
    assert response.text.count("<button") == 1
    assert f'<form method="post" action="/unsubscribe/{token}">' in response.text
    assert site.subscriber("jane@example.com").status == "active"


def test_rfc8058_one_click_post_unsubscribes_at_once(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    token = site.token(Purpose.UNSUBSCRIBE, subscriber)
    response = httpx.post(
        f"{site.settings.base_url}/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": FORM},
        follow_redirects=False,
    )
    assert (response.status_code, h1(response)) == (200, "You are unsubscribed")
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert site.subscriber("jane@example.com").status == "unsubscribed"
    with site.session() as session:
        assert find_suppression(session, email="jane@example.com").reason == "unsubscribe"
        last = lifecycle.history(session, subscriber_id=subscriber.id)[-1]
    assert (last.reason, last.detail) == ("unsubscribed by link", {"one_click": True})


@sqlite_only
def test_rfc8058_one_click_as_multipart_works(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    token = site.token(Purpose.UNSUBSCRIBE, subscriber)
    response = site.client.post(
        f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert response.status_code == 200
    assert site.subscriber("jane@example.com").status == "unsubscribed"


@sqlite_only
def test_unsubscribe_link_from_the_welcome_email_works(site: Site) -> None:
    site.confirmed("jane@example.com")
    welcome = messages_to(site.settings, "jane@example.com")[-1]
    url = welcome["List-Unsubscribe"].strip()[1:-1]
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    response = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert site.subscriber("jane@example.com").status == "unsubscribed"


@sqlite_only
def test_second_unsubscribe_post_is_still_200(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    url = f"/unsubscribe/{site.token(Purpose.UNSUBSCRIBE, subscriber)}"
    first = site.client.post(url, data={"List-Unsubscribe": "One-Click"})
    second = site.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.text == second.text


def test_unsubscribe_of_an_erased_subscriber_is_still_200(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    with site.session() as session:
        erase(session, email="jane@example.com")
        session.commit()
    response = site.client.post(
        f"/unsubscribe/{site.token(Purpose.UNSUBSCRIBE, subscriber)}",
        data={"List-Unsubscribe": "One-Click"},
    )
    assert (response.status_code, h1(response)) == (200, "You are unsubscribed")


@sqlite_only
def test_tampered_unsubscribe_post_gets_a_clear_page(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    token = site.token(Purpose.UNSUBSCRIBE, subscriber)
    response = site.client.post(f"/unsubscribe/{token}x", data={"List-Unsubscribe": "One-Click"})
    assert (response.status_code, h1(response)) == (400, "This link does not work")
    assert "reply to any email and ask us" in response.text
    assert site.subscriber("jane@example.com").status == "active"


@sqlite_only
def test_confirm_token_cannot_unsubscribe(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(f"/unsubscribe/{site.token(Purpose.CONFIRM, subscriber)}")
    assert response.status_code == 400
    assert site.subscriber("jane@example.com").status == "active"


@sqlite_only
def test_oversize_one_click_body_still_unsubscribes(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/unsubscribe/{site.token(Purpose.UNSUBSCRIBE, subscriber)}",
        content=b"x" * (site.settings.form_max_bytes + 10),
        headers={"Content-Type": FORM},
    )
    assert response.status_code == 200
    assert site.subscriber("jane@example.com").status == "unsubscribed"


# ---------------------------------------------------------------- preferences


@sqlite_only
def test_preferences_form_lists_topics_and_their_consent(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.get(f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}")
    assert (response.status_code, h1(response)) == (200, "Your preferences")
    for slug in site.settings.topics:
        assert f'<label class="check" for="topic-{slug}">' in response.text
    assert site.settings.topics_consent_text in response.text
    assert '<label for="pause_weeks">' in response.text


def test_saving_topics_with_consent(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}",
        data={"topics": ["sciatica", "leg-cramps"], "topics_consent": "yes", "pause_weeks": ""},
    )
    assert response.status_code == 200
    assert "Your preferences are saved." in response.text
    assert site.subscriber("jane@example.com").topics == ["leg-cramps", "sciatica"]


@sqlite_only
def test_topics_without_consent_are_refused_and_choices_kept(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}", data={"topics": ["sciatica"]}
    )
    assert response.status_code == 400
    assert (
        "To tailor the newsletter to topics, please tick the consent box for topics."
        in response.text
    )
    assert 'value="sciatica" checked' in response.text
    assert site.subscriber("jane@example.com").topics == []


@sqlite_only
def test_pause_from_the_preferences_page(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}", data={"pause_weeks": "2"}
    )
    assert response.status_code == 200
    until = (utcnow().date() + timedelta(weeks=2)).isoformat()
    assert f"The newsletter is paused until {until}." in response.text
    assert site.subscriber("jane@example.com").paused_until.isoformat() == until


@sqlite_only
def test_preferences_unknown_field_is_refused(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}", data={"status": "active"}
    )
    assert response.status_code == 400
    assert "unexpected field(s)" in response.text


@sqlite_only
def test_preferences_of_someone_unsubscribed(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    site.client.post(f"/unsubscribe/{site.token(Purpose.UNSUBSCRIBE, subscriber)}")
    response = site.client.get(f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}")
    assert (response.status_code, h1(response)) == (409, "You are not subscribed")


@sqlite_only
def test_tampered_preferences_link_gets_a_clear_page(site: Site) -> None:
    response = site.client.get("/preferences/not-a-token")
    assert (response.status_code, h1(response)) == (400, "This link does not work")


def test_unsubscribed_address_stays_suppressed_until_a_new_confirmation(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    site.client.post(f"/unsubscribe/{site.token(Purpose.UNSUBSCRIBE, subscriber)}")
    site.subscribe("jane@example.com")
    with site.session() as session:
        assert is_suppressed(session, email="jane@example.com")
    again = arrived(site.settings, "jane@example.com", count=3)[-1]  # after the welcome
    site.client.get(link(again, "confirm"))
    with site.session() as session:
        assert not is_suppressed(session, email="jane@example.com")
    assert site.subscriber("jane@example.com").status == "active"


@sqlite_only
def test_saving_topics_keeps_a_running_pause(site: Site) -> None:
    """The pause field's first option ("Keep as it is", value "") leaves the pause alone."""
    subscriber = site.confirmed("jane@example.com")
    url = f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}"
    site.client.post(url, data={"pause_weeks": "2"})
    response = site.client.post(
        url, data={"topics": ["sciatica"], "topics_consent": "yes", "pause_weeks": ""}
    )
    until = (utcnow().date() + timedelta(weeks=2)).isoformat()
    assert response.status_code == 200
    assert f"The newsletter is paused until {until}." in response.text
    saved = site.subscriber("jane@example.com")
    assert (saved.topics, saved.paused_until.isoformat()) == (["sciatica"], until)


@sqlite_only
def test_resume_now_ends_a_pause(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    url = f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}"
    site.client.post(url, data={"pause_weeks": "2"})
    response = site.client.post(url, data={"pause_weeks": "0"})
    assert response.status_code == 200
    assert "is paused until" not in response.text
    assert site.subscriber("jane@example.com").paused_until is None


@sqlite_only
def test_a_pause_that_is_not_a_number_is_refused_and_changes_nothing(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}",
        data={"topics": ["sciatica"], "topics_consent": "yes", "pause_weeks": "soon"},
    )
    assert response.status_code == 400
    assert "The pause must be a whole number of weeks." in response.text
    assert 'value="sciatica" checked' in response.text
    assert site.subscriber("jane@example.com").topics == []


@sqlite_only
def test_a_bad_preferences_link_is_told_before_an_oversize_form(site: Site) -> None:
    response = site.client.post(
        "/preferences/not-a-token",
        content=b"x" * (site.settings.form_max_bytes + 1),
        headers={"Content-Type": FORM},
    )
    assert (response.status_code, h1(response)) == (400, "This link does not work")


@sqlite_only
def test_oversize_preferences_form_is_refused_cleanly(site: Site) -> None:
    subscriber = site.confirmed("jane@example.com")
    response = site.client.post(
        f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}",
        content=b"topics=" + b"x" * site.settings.form_max_bytes,
        headers={"Content-Type": FORM},
    )
    assert (response.status_code, h1(response)) == (413, "That was too much data")
    assert site.subscriber("jane@example.com").topics == []


@sqlite_only
def test_do_not_track_me_from_the_preferences_page(site: Site) -> None:
    from subscribers.preferences import tracking_refused

    subscriber = site.confirmed("jane@example.com")
    url = f"/preferences/{site.token(Purpose.PREFERENCES, subscriber)}"
    box = 'name="do_not_track" value="yes"'
    assert f"{box}>" in site.client.get(url).text  # unticked
    saved = site.client.post(url, data={"do_not_track": "yes"})
    assert saved.status_code == 200 and f"{box} checked>" in saved.text
    with site.session() as session:
        assert tracking_refused(session, subscriber.id or 0)
    site.client.post(url, data={})
    with site.session() as session:
        assert not tracking_refused(session, subscriber.id or 0)
