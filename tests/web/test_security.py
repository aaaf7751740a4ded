"""The pages hold against the usual attacks (issue 12.7), over real HTTP under uvicorn:
security headers on every answer, no redirect built from the Host header, a forged
X-Forwarded-For that counts for nothing, one sign-up limit for every worker, and a
sign-up answered before any mail goes out, known address or not."""

from __future__ import annotations

import ipaddress
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import db
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings
from tests.support.delivery import API_KEY
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.servers import live_server
from tests.support.subscribers import Nobody, make_subscriber, sqlite_only
from web.app import create_app
from web.clients import client_ip, networks


@contextmanager
def serving(settings: Settings, **overrides: object) -> Iterator[tuple[httpx.Client, Settings]]:
    """The app under uvicorn as ``newsletter serve`` should run it: uvicorn's own
    X-Forwarded-For handling off (it trusts 127.0.0.1 by default), the app decides."""
    cfg = settings.model_copy(update=overrides)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORWARDED_ALLOW_IPS", "")
        with live_server(create_app(cfg)) as base, httpx.Client(base_url=base) as client:
            yield client, cfg


def sign_up(client: httpx.Client, address: str, **headers: str) -> httpx.Response:
    return client.post("/subscribe", data={"email": address, "consent": "yes"}, headers=headers)


# ---------------------------------------------------------------- security headers


def assert_secured(response: httpx.Response) -> None:
    csp = {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1]
        for part in response.headers["content-security-policy"].split(";")
    }
    assert csp["script-src"] == "'self'", response.request.url
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@sqlite_only
def test_every_answer_carries_the_security_headers(settings: Settings, engine: Engine) -> None:
    with serving(settings, signup_challenge=False) as (client, cfg):
        bad_link = Tokens(cfg).make(Purpose.UNSUBSCRIBE, Nobody(1)) + "x"
        answers = [
            client.get("/subscribe"),
            client.post("/subscribe", data={"email": "not an address", "consent": "yes"}),
            client.get(f"/unsubscribe/{bad_link}"),
            client.get("/healthz"),
            client.get("/api/campaigns"),
            client.get("/no/such/page"),
            client.get("/static/site.css"),
            client.get("/theme.css"),
            client.get("/openapi.json"),
            client.get("/docs"),
        ]
    assert [a.status_code for a in answers] == [200, 400, 400, 200, 401, 404, 200, 200, 200, 200]
    for answer in answers:
        assert_secured(answer)
        assert "strict-transport-security" not in answer.headers


@sqlite_only
def test_hsts_when_the_base_url_is_https(settings: Settings, engine: Engine) -> None:
    with serving(settings, base_url="https://news.example.com") as (client, _):
        for path in ("/subscribe", "/healthz", "/nowhere"):
            assert client.get(path).headers["strict-transport-security"] == "max-age=31536000"


def ours(url: str) -> bool:
    """A URL on our own host (a path), or inline data (the empty favicon)."""
    return (url.startswith("/") and not url.startswith("//")) or url.startswith("data:")


class _Scripts(HTMLParser):
    """Inline scripts, event-handler attributes, style attributes and external URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.sources: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.inline += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]
        if "style" in values:
            self.inline.append(f"{tag} style")
        if tag == "script":
            if not values.get("src"):
                self.inline.append("script without src")
            self._in_script = True
        self.sources += [v or "" for k, v in attrs if k in ("src", "href") and tag != "a"]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("script body")


@sqlite_only
def test_no_page_has_inline_script_and_every_asset_is_ours(
    settings: Settings, engine: Engine
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        active = make_subscriber(session, "jane@example.com")
    tokens = Tokens(settings)
    paths = [
        "/subscribe",
        f"/unsubscribe/{tokens.make(Purpose.UNSUBSCRIBE, active)}",
        f"/preferences/{tokens.make(Purpose.PREFERENCES, active)}",
        f"/preferences/{tokens.make(Purpose.PREFERENCES, active)}/delete",
        "/unsubscribe/bad-link",
        "/docs",
        "/redoc",
    ]
    with serving(settings) as (client, _):
        pages = {path: client.get(path) for path in paths}
    for path, response in pages.items():
        parser = _Scripts()
        parser.feed(response.text)
        assert parser.inline == [], path
        assert all(ours(src) for src in parser.sources), (
            path,
            parser.sources,
        )
    assert '<script src="/static/signup-challenge.js" defer>' in pages["/subscribe"].text


# ---------------------------------------------------------------- redirects


@sqlite_only
def test_no_redirect_is_built_from_the_host_header(settings: Settings, engine: Engine) -> None:
    with serving(settings) as (client, _):
        for path in ("/subscribe/", "/docs/", "/api/campaigns/", "/healthz/"):
            response = client.get(path, headers={"Host": "evil.example"})
            assert not response.is_redirect, (path, response.headers.get("location"))
            assert "evil.example" not in response.text


# ---------------------------------------------------------------- who the client is


def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() -> None:
    proxies = networks(["10.0.0.0/8", "127.0.0.1"])
    assert client_ip("203.0.113.9", ["198.51.100.1"], proxies) == "203.0.113.9"
    assert client_ip("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"
    assert client_ip("127.0.0.1", ["198.51.100.1"], proxies) == "198.51.100.1"
    # Whatever the client wrote itself stands left of what our proxies appended.
    assert client_ip("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], proxies) == "198.51.100.1"
    assert client_ip("127.0.0.1", ["6.6.6.6", "198.51.100.1:4711"], proxies) == "198.51.100.1"
    assert client_ip("127.0.0.1", ["[2001:db8::1]:80"], proxies) == "2001:db8::1"
    assert client_ip("127.0.0.1", ["garbage, 10.0.0.7"], proxies) == "10.0.0.7"
    assert client_ip("127.0.0.1", [], proxies) == "127.0.0.1"
    assert ipaddress.ip_address(client_ip("10.9.9.9", ["10.0.0.2"], proxies) or "") in proxies[0]


def test_a_trusted_proxy_setting_must_be_an_address_or_network() -> None:
    assert make_settings(
        "sqlite://", Path("."), trusted_proxies="10.0.0.0/8, ::1"
    ).trusted_proxies == [
        "10.0.0.0/8",
        "::1",
    ]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        make_settings("sqlite://", Path("."), trusted_proxies="proxy.internal")


def test_a_forged_x_forwarded_for_does_not_bypass_the_sign_up_limit(
    settings: Settings, engine: Engine
) -> None:
    with serving(settings, signup_limit_per_hour=2, signup_challenge=False) as (client, _):
        codes = [
            sign_up(
                client, f"p{i}@example.com", **{"X-Forwarded-For": f"198.51.100.{i}"}
            ).status_code
            for i in range(3)
        ]
    assert codes == [200, 200, 429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    settings: Settings, engine: Engine
) -> None:
    with serving(
        settings, signup_limit_per_hour=2, signup_challenge=False, trusted_proxies=["127.0.0.1"]
    ) as (client, _):
        reader = {"X-Forwarded-For": "198.51.100.1"}
        # A client that writes its own header: our proxy appends the real address.
        forger = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}
        codes = [
            sign_up(client, "a@example.com", **reader).status_code,
            sign_up(client, "b@example.com", **forger).status_code,
            sign_up(client, "c@example.com", **reader).status_code,
            sign_up(client, "d@example.com", **{"X-Forwarded-For": "198.51.100.2"}).status_code,
        ]
    assert codes == [200, 200, 429, 200]
    with Session(engine) as session:
        subscriber = lifecycle.get_by_email(session, email="a@example.com")
        [event] = lifecycle.history(session, subscriber_id=subscriber.id or 0)
    assert event.ip == "198.51.100.1"


def test_the_sign_up_limit_is_one_count_for_every_server_on_the_database(
    settings: Settings, engine: Engine
) -> None:
    """Two servers (two workers, or two machines) on one database share the limit."""
    with (
        serving(settings, signup_limit_per_hour=2, signup_challenge=False) as (first, _),
        serving(settings, signup_limit_per_hour=2, signup_challenge=False) as (second, _),
    ):
        codes = [
            sign_up(first, "a@example.com").status_code,
            sign_up(second, "b@example.com").status_code,
            sign_up(first, "c@example.com").status_code,
            sign_up(second, "d@example.com").status_code,
        ]
    assert codes == [200, 200, 429, 429]


# ---------------------------------------------------------------- the same time for everyone

HOLD = 2.0  # how long the provider keeps each answer back


@pytest.fixture
def slow_provider(tmp_path: Path, database_url: str) -> Iterator[tuple[FakeSendGrid, Settings]]:
    with FakeSendGrid(API_KEY) as fake:
        cfg = make_settings(
            database_url,
            tmp_path,
            provider="sendgrid",
            sendgrid_api_key=API_KEY,
            sendgrid_api_host=fake.url,
            signup_challenge=False,
            signup_limit_per_hour=100,
        )
        engine = db.get_engine(cfg.database_url)
        db.upgrade(engine)
        try:
            yield fake, cfg
        finally:
            db.dispose_engine(cfg.database_url)


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_known_and_unknown_addresses_are_answered_before_any_mail_is_sent(
    slow_provider: tuple[FakeSendGrid, Settings],
) -> None:
    fake, cfg = slow_provider
    with Session(db.get_engine(cfg.database_url)) as session:
        for n in range(3):
            make_subscriber(session, f"known{n}@example.com")
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    answers = set()
    with serving(cfg) as (client, _):
        # A first sign-up warms the server (imports, templates, the provider's client), so
        # the timings below compare the two paths rather than a cold start with a warm one.
        assert sign_up(client, "warm-up@example.com").status_code == 200
        deadline = time.monotonic() + 30
        while fake.recipients < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        for n in range(3):
            for kind in ("unknown", "known"):
                fake.hold_after(fake.accepted + 1, HOLD)  # the next mail takes HOLD seconds
                started = time.monotonic()
                response = sign_up(client, f"{kind}{n}@example.com")
                timings[kind].append(time.monotonic() - started)
                assert response.status_code == 200
                answers.add(response.text)
        deadline = time.monotonic() + 30
        while fake.recipients < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(answers) == 1  # one page for everyone
    # Each answer came long before the provider answered; had the confirmation been sent
    # in-request, an unknown address would have taken HOLD seconds more than a known one.
    assert max(timings["unknown"] + timings["known"]) < HOLD / 2, timings
    assert abs(statistics.median(timings["unknown"]) - statistics.median(timings["known"])) < 0.3
    expected = {f"unknown{n}@example.com": 1 for n in range(3)} | {"warm-up@example.com": 1}
    assert dict(fake.deliveries) == expected
