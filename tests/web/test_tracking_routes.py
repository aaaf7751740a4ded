"""Issue 15 over real HTTP (uvicorn on 127.0.0.1): the /r/ redirect and the /o/ pixel,
from links read out of a newsletter really sent through the outbox."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Campaign, TrackingEvent
from campaigns.reports.overview import top_links
from campaigns.tracking.hits import Recorder
from newsletter.settings import Settings
from tests.support.links import pixel, redirects, sent_issue
from tests.support.servers import free_port, live_server
from tests.support.subscribers import AppSlot, messages_to, sqlite_only
from web.app import create_app
from web.tracking import PIXEL

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base


@dataclass
class Sent:
    settings: Settings
    campaign: Campaign
    recorder: Recorder
    http: httpx.Client

    def links(self, reader: int = 0) -> list[str]:
        return redirects(messages_to(self.settings, f"reader{reader}@example.com")[0])

    def pixel(self, reader: int = 0) -> str:
        found = pixel(messages_to(self.settings, f"reader{reader}@example.com")[0])
        assert found
        return found

    def get(self, url: str, *, agent: str = BROWSER, method: str = "GET") -> httpx.Response:
        return self.http.request(method, url, headers={"User-Agent": agent})


@pytest.fixture
def sent(
    settings: Settings, engine: Engine, session: Session, server: tuple[AppSlot, str]
) -> Iterator[Sent]:
    slot, base = server
    cfg = settings.model_copy(update={"base_url": base, "tracking_flush_seconds": 0.05})
    campaign, _ = sent_issue(
        session,
        cfg,
        urls=[
            "https://blog.example.com/a?ref=feed",
            "https://blog.example.com/b",
            "https://other.example.org/c",
        ],
    )
    app = create_app(cfg)
    slot.app = app
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        yield Sent(cfg, campaign, app.state.tracking, http)
    app.state.tracking.close()


def counts(engine: Engine, email: str = "reader0@example.com") -> tuple[int, int, int, int]:
    """(opens, machine opens, clicks, machine clicks) of that reader's delivery."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT d.open_count, d.machine_open_count, d.click_count, "
                "d.machine_click_count FROM delivery d JOIN subscriber s "
                "ON s.id = d.subscriber_id WHERE s.email = :e"
            ),
            {"e": email},
        ).one()  # type: ignore[return-value]


def our_events(engine: Engine) -> list[tuple[str, bool, str | None]]:
    with Session(engine) as s:
        rows = s.execute(
            sa.select(TrackingEvent.kind, TrackingEvent.machine, TrackingEvent.payload)
            .where(TrackingEvent.provider == "newsletter")
            .order_by(TrackingEvent.id)
        ).all()
    return [(kind, machine, payload["machine"]) for kind, machine, payload in rows]


@sqlite_only
def test_a_click_answers_302_to_the_article_with_its_utm_tags(sent: Sent):
    # The first click reads the reader's link key (the route); the second is answered from
    # the caches before routing (web.tracking.FastClicks): the same answer both times.
    for answer in (sent.get(sent.links()[0]), sent.get(sent.links()[0])):
        assert answer.status_code == 302
        assert answer.headers["location"] == (
            "https://blog.example.com/a?ref=feed"
            "&utm_source=newsletter&utm_medium=email&utm_campaign=2026-W49"
        )
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"  # the token stays here


@sqlite_only
def test_a_tampered_token_answers_404_and_redirects_nowhere(sent: Sent):
    url = sent.links()[0]
    head, token, number = url.rsplit("/", 2)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    answer = sent.get(f"{head}/{flipped}/{number}")
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "This link leads nowhere" in answer.text


@sqlite_only
def test_a_token_moved_to_another_reader_answers_404(sent: Sent):
    url = sent.links(reader=0)
    other = sent.links(reader=1)[0]
    campaign, reader, mac = url[0].rsplit("/", 2)[1].split(".")
    theirs = other.rsplit("/", 2)[1].split(".")[1]
    assert theirs != reader
    answer = sent.get(url[0].replace(f"{campaign}.{reader}.{mac}", f"{campaign}.{theirs}.{mac}"))
    assert answer.status_code == 404


@sqlite_only
def test_nothing_outside_the_campaigns_link_table_can_be_reached(sent: Sent):
    url = sent.links()[0]
    head = url.rsplit("/", 1)[0]
    assert sent.get(f"{head}/3").status_code == 404  # three links: 0, 1, 2
    assert sent.get(f"{head}/-1").status_code == 404
    assert sent.get(f"{head}/x").status_code == 404
    smuggled = sent.get(f"{url}?url=https://evil.example/")
    assert smuggled.headers["location"].startswith("https://blog.example.com/a?")


@sqlite_only
def test_the_pixel_answers_a_transparent_gif_that_no_cache_keeps(sent: Sent):
    answer = sent.get(sent.pixel())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.content == PIXEL and answer.content.startswith(b"GIF89a")


def test_clicks_and_opens_are_written_in_bulk_by_the_background_writer(sent: Sent, engine: Engine):
    links = sent.links()
    cfg = sent.settings
    sent.recorder.settings = cfg.model_copy(update={"tracking_burst_seconds": 0})
    sent.get(links[0])
    sent.get(links[1])
    sent.get(sent.pixel())
    deadline = time.monotonic() + 5
    while counts(engine)[:3] != (1, 0, 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts(engine) == (1, 0, 2, 0)
    assert sorted(our_events(engine)) == [
        ("clicked", False, None),
        ("clicked", False, None),
        ("opened", False, None),
    ]


@sqlite_only
def test_head_requests_and_scanner_agents_count_as_machines(sent: Sent, engine: Engine):
    links = sent.links()
    assert sent.get(links[0], method="HEAD").status_code == 302
    sent.get(links[1], agent="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    sent.get(sent.pixel(), agent="Mimecast-URL-Protect/1.0")
    sent.recorder.flush(everything=True)
    assert counts(engine) == (0, 1, 0, 2)
    assert sorted(our_events(engine)) == [
        ("clicked", True, "HEAD request"),
        ("clicked", True, "scanner: Barracuda Email Security"),
        ("opened", True, "scanner: Mimecast URL protection"),
    ]


@sqlite_only
def test_a_click_on_every_link_within_seconds_is_a_machine(sent: Sent, engine: Engine):
    for url in sent.links(reader=0):
        sent.get(url)  # a scanner following every link, in well under 2 s
    sent.get(sent.links(reader=1)[2])  # a reader choosing one article
    sent.recorder.flush(everything=True)
    assert counts(engine, "reader0@example.com") == (0, 0, 0, 3)
    assert counts(engine, "reader1@example.com") == (0, 0, 1, 0)


@sqlite_only
def test_top_links_count_our_redirects_by_people_with_scanners_apart(sent: Sent, engine: Engine):
    """Issue 15.2: our own click events keep the link's URL, so the report's top links
    rank them; a scanner's burst over every link is counted apart and ranks nothing."""
    for url in sent.links(reader=0):
        sent.get(url)  # a scanner
    sent.get(sent.links(reader=1)[2])  # a reader
    sent.recorder.flush(everything=True)
    with Session(engine) as session:
        (link,) = top_links(session, campaign_id=sent.campaign.id)
    assert link.url.startswith("https://other.example.org/c")
    assert (link.clicks, link.people, link.machine_clicks) == (1, 1, 1)
