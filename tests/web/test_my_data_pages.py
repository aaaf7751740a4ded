"""Readers manage their own data (issue 13.11) and the pages say where they stand (13.10),
over real HTTP under uvicorn, on SQLite and PostgreSQL: "Download my data" and "Delete
my data" behind the signed preferences link, rate-limited; an unsubscribe link opened
again; the preferences page's address; the privacy notice beside the consents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.models import Campaign, Delivery, TrackingEvent
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.addresses import email_hash
from subscribers.models import ConsentEvent, Subscriber, Suppression
from subscribers.preferences import update_preferences
from subscribers.tokens import Purpose, Tokens
from tests.support.servers import free_port, live_server
from tests.support.subscribers import AppSlot, Nobody, make_subscriber, sqlite_only
from web.app import create_app

JANE = "jane@example.com"


@dataclass
class Site:
    client: httpx.Client
    settings: Settings
    engine: Engine

    def link(self, purpose: Purpose, subscriber_id: int) -> str:
        with Session(self.engine) as session:
            subscriber = session.get(Subscriber, subscriber_id)
        owner = subscriber if subscriber is not None else Nobody(subscriber_id)
        return f"/{purpose.value}/{Tokens(self.settings).make(purpose, owner)}"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base


@pytest.fixture
def site(settings: Settings, engine: Engine, server: tuple[AppSlot, str]) -> Iterator[Site]:
    slot, base = server
    cfg = settings.model_copy(
        update={
            "base_url": base,
            "my_data_limit_per_hour": 3,
            "privacy_notice_url": "https://example.com/privacy",
        }
    )
    slot.app = create_app(cfg)
    with httpx.Client(base_url=base, timeout=10) as client:
        yield Site(client, cfg, engine)
    slot.app = None


def h1(response: httpx.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert found, response.text
    return found.group(1).strip()


@pytest.fixture
def jane(site: Site) -> int:
    """An active subscriber with topics, one campaign sent to her, and its events."""
    with Session(site.engine, expire_on_commit=False) as session:
        subscriber = make_subscriber(session, JANE, name="Jane")
        assert subscriber.id is not None
        update_preferences(
            session,
            settings=site.settings,
            subscriber_id=subscriber.id,
            topics=["sciatica"],
            topics_consent=True,
        )
        campaign = Campaign(subject="Five stretches", status="sent")
        session.add(campaign)
        session.flush()
        delivery = Delivery(
            campaign_id=campaign.id or 0, subscriber_id=subscriber.id, status="sent", open_count=1
        )
        session.add(delivery)
        session.flush()
        session.add(
            TrackingEvent(
                provider="sendgrid",
                event_id="ev-1",
                kind="opened",
                raw_event="open",
                campaign_id=campaign.id,
                subscriber_id=subscriber.id,
                delivery_id=delivery.id,
                occurred_at=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
                payload={"event": "open", "email": JANE, "ip": "203.0.113.5"},
            )
        )
        make_subscriber(session, "someone.else@example.com")
        session.commit()
        return subscriber.id


# ---------------------------------------------------------------- download


def test_the_preferences_page_offers_the_readers_data(site: Site, jane: int) -> None:
    link = site.link(Purpose.PREFERENCES, jane)
    page = site.client.get(link).text
    assert f'<form method="post" action="{link}/data">' in page
    assert ">Download my data</button>" in page
    assert f'<a href="{link}/delete">Delete my data</a>' in page


def test_download_my_data_is_everything_we_hold_as_json(site: Site, jane: int) -> None:
    response = site.client.post(f"{site.link(Purpose.PREFERENCES, jane)}/data")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="my-data.json"'
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert set(data) == {
        "exported_at",
        "subscription",
        "consent_history",
        "deliveries",
        "events",
    }
    assert data["subscription"]["email"] == JANE
    assert data["subscription"]["topics"] == ["sciatica"]
    assert data["subscription"]["timezone"] is None  # issue 16: a stored zone is theirs too
    assert data["consent_history"][0]["reason"] == "test fixture"
    assert len(data["consent_history"]) == 2  # the fixture's event and the topics' consent
    [delivery] = data["deliveries"]
    assert (delivery["subject"], delivery["status"], delivery["open_count"]) == (
        "Five stretches",
        "sent",
        1,
    )
    [event] = data["events"]
    assert (event["kind"], event["occurred_at"]) == ("opened", "2026-11-24T09:30:00+00:00")
    assert "someone.else" not in response.text


def test_a_link_scanner_cannot_download_or_delete(site: Site, jane: int) -> None:
    link = site.link(Purpose.PREFERENCES, jane)
    assert site.client.get(f"{link}/data").status_code == 405
    assert site.client.get(f"{link}/delete").status_code == 200  # the question only
    with Session(site.engine) as session:
        assert session.get(Subscriber, jane) is not None


@sqlite_only
def test_a_bad_link_gets_no_data(site: Site, jane: int) -> None:
    other = site.link(Purpose.UNSUBSCRIBE, jane).split("/")[-1]  # the wrong purpose
    for path in (f"/preferences/{other}/data", "/preferences/tampered/data"):
        response = site.client.post(path)
        assert (response.status_code, h1(response)) == (400, "This link does not work")
        assert JANE not in response.text


@sqlite_only
def test_downloads_are_rate_limited(site: Site, jane: int) -> None:
    link = site.link(Purpose.PREFERENCES, jane)
    codes = [site.client.post(f"{link}/data").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    blocked = site.client.post(f"{link}/data")
    assert int(blocked.headers["retry-after"]) > 0


def test_someone_who_left_can_still_download(site: Site, jane: int) -> None:
    site.client.post(site.link(Purpose.UNSUBSCRIBE, jane))
    response = site.client.post(f"{site.link(Purpose.PREFERENCES, jane)}/data")
    assert response.json()["subscription"]["status"] == "unsubscribed"


# ---------------------------------------------------------------- delete


def test_delete_asks_once_more_and_then_erases(site: Site, jane: int) -> None:
    link = site.link(Purpose.PREFERENCES, jane)
    question = site.client.get(f"{link}/delete")
    assert (question.status_code, h1(question)) == (200, "Delete your data?")
    assert "j***@example.com" in question.text and JANE not in question.text
    assert f'<form method="post" action="{link}/delete">' in question.text
    assert f'<a href="{link}">Keep my data and go back</a>' in question.text
    with Session(site.engine) as session:
        assert session.get(Subscriber, jane) is not None  # asking changed nothing

    done = site.client.post(f"{link}/delete")
    assert (done.status_code, h1(done)) == (200, "Your data is deleted")
    with Session(site.engine) as session:
        assert session.get(Subscriber, jane) is None
        assert (
            session.exec(select(ConsentEvent).where(ConsentEvent.subscriber_id == jane)).all() == []
        )
        [suppression] = session.exec(select(Suppression)).all()
        assert (suppression.email_hash, suppression.email, suppression.reason) == (
            email_hash(JANE),
            None,
            "erased",
        )
        [delivery] = session.exec(select(Delivery)).all()
        assert delivery.subscriber_id is None  # the campaign's counts stay, not the person
        [event] = session.exec(select(TrackingEvent)).all()
        assert "email" not in event.payload and "ip" not in event.payload
        assert lifecycle.find_by_email(session, email="someone.else@example.com") is not None

    again = site.client.post(f"{link}/data")
    assert (again.status_code, h1(again)) == (400, "We hold no data about this address")
    assert h1(site.client.get(f"{link}/delete")) == "We hold no data about this address"


@sqlite_only
def test_deletion_is_rate_limited_too(site: Site, jane: int) -> None:
    link = site.link(Purpose.PREFERENCES, jane)
    codes = [site.client.post(f"{link}/delete").status_code for _ in range(4)]
    assert codes == [200, 400, 400, 429]


# ---------------------------------------------------------------- 13.10


def test_an_unsubscribe_link_opened_again_says_so(site: Site, jane: int) -> None:
    link = site.link(Purpose.UNSUBSCRIBE, jane)
    first = site.client.get(link)
    assert (h1(first), ">Unsubscribe</button>" in first.text) == (
        "Unsubscribe from Pain Relief Weekly?",
        True,
    )
    site.client.post(link)
    again = site.client.get(link)
    assert (again.status_code, h1(again)) == (200, "You are already unsubscribed")
    assert "<button" not in again.text


@sqlite_only
def test_an_unsubscribe_link_of_someone_erased_says_already_unsubscribed(
    site: Site, jane: int
) -> None:
    site.client.post(f"{site.link(Purpose.PREFERENCES, jane)}/delete")
    assert h1(site.client.get(site.link(Purpose.UNSUBSCRIBE, jane))) == (
        "You are already unsubscribed"
    )


@sqlite_only
def test_the_preferences_page_says_whose_they_are_masked(site: Site, jane: int) -> None:
    page = site.client.get(site.link(Purpose.PREFERENCES, jane)).text
    assert "<p>For the address j***@example.com.</p>" in page
    assert JANE not in page


@sqlite_only
def test_the_privacy_notice_is_linked_beside_the_consents(site: Site, jane: int) -> None:
    notice = '<a href="https://example.com/privacy">How we use and protect your data'
    subscribe = site.client.get("/subscribe").text
    assert notice in subscribe
    assert subscribe.index(site.settings.consent_text) < subscribe.index(notice)
    preferences = site.client.get(site.link(Purpose.PREFERENCES, jane)).text
    assert preferences.index(site.settings.topics_consent_text) < preferences.index(notice)


@sqlite_only
def test_no_privacy_link_when_none_is_set(
    settings: Settings, engine: Engine, server: tuple[AppSlot, str]
) -> None:
    slot, base = server
    slot.app = create_app(settings.model_copy(update={"base_url": base}))
    try:
        assert "privacy notice" not in httpx.get(f"{base}/subscribe").text
    finally:
        slot.app = None


@sqlite_only
def test_the_form_tells_the_sign_up_limit(site: Site) -> None:
    assert "At most 10 sign-ups an hour are accepted from one network." in (
        site.client.get("/subscribe").text
    )
