"""Fetching URLs others named (issue 12 point 8): where we connect, how long, how much.

A real HTTP server on 127.0.0.1 serves feeds that are too large (by Content-Length, or
only by the bytes that keep coming), trickle a byte at a time, or redirect elsewhere.
Name resolution goes through ``newsletter.net``'s ``resolve`` parameter where a test
needs a host name other than 127.0.0.1 (nothing leaves the machine).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlmodel import Session, select

from campaigns.content.snippet_import import import_snippets
from campaigns.models import Snippet
from newsletter.errors import FetchFailed, FetchRefused, FetchTimedOut, FetchTooLarge
from newsletter.net import address_refusal, allowed_addresses, open_url
from newsletter.settings import Settings, load_settings
from tests.support.servers import QuietHTTPServer

FEED = (
    b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
    b"<link>https://blog.example.com/</link><description>d</description>"
    b"<item><title>Cramps</title><link>https://blog.example.com/cramps</link>"
    b"<description>Stretch the calf.</description></item></channel></rss>"
)
LIMIT = 16 * 1024


@dataclass
class Site:
    url: str
    port: int
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    trickle_seconds: float = 0.3


class _Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.site.hits.append((self.path, self.headers.get("Host", "")))
        name = self.path.strip("/").split("?")[0].replace("-", "_").replace(".", "_")
        route = getattr(self, "_" + name, None)
        if route is None:
            self._send(404, b"not here")
        else:
            route()

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _feed_xml(self) -> None:
        self._send(200, FEED)

    def _declared_large(self) -> None:
        """Says it is 100 MB; sends a little, then waits (a reader that waited would hang)."""
        self.send_response(200)
        self.send_header("Content-Length", str(100 * 1024 * 1024))
        self.end_headers()
        self.wfile.write(b"<rss>")
        time.sleep(2)

    def _endless(self) -> None:
        """No Content-Length: bytes until the client stops reading (a 200 MB feed)."""
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for _ in range(10_000):
                self.wfile.write(b"<!-- padding -->" * 64)
        except OSError:
            pass  # the client hung up: what we want

    def _trickle_body(self) -> None:
        """Headers at once, then one byte per ``trickle_seconds``, for ever."""
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self._trickle()

    def _trickle_head(self) -> None:
        """Even the status line comes a byte at a time."""
        self._trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx" * 100)

    def _trickle(self, data: bytes = b" " * 1000) -> None:
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.site.trickle_seconds)
        except OSError:
            pass

    def _redirect(self) -> None:
        self._send(302, b"", Location=self.path.split("to=", 1)[1])


@pytest.fixture
def site() -> Iterator[Site]:
    server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    info = Site(url=f"http://127.0.0.1:{port}", port=port)
    server.RequestHandlerClass = type("Handler", (_Handler,), {"site": info})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()


def local(settings: Settings, **overrides: object) -> Settings:
    """Settings that may fetch from the test's server on 127.0.0.1."""
    return settings.model_copy(update={"fetch_allow_private": True, **overrides})


def resolver(names: dict[str, str], calls: list[str]) -> Any:
    """getaddrinfo for made-up names (and 127.0.0.1); records every lookup."""

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        calls.append(host)
        names.setdefault("127.0.0.1", "127.0.0.1")
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = names[host]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


# ---------------------------------------------------------------- the address policy


@pytest.mark.parametrize(
    ("address", "refused", "refused_when_private_allowed"),
    [
        ("127.0.0.1", "a loopback address", None),
        ("::1", "a loopback address", None),
        ("::ffff:127.0.0.1", "a loopback address", None),  # IPv4-mapped IPv6
        ("10.1.2.3", "a private address", None),
        ("172.16.5.4", "a private address", None),
        ("192.168.1.1", "a private address", None),
        ("fc00::1", "a private address", None),
        ("169.254.169.254", "a link-local address", None),  # cloud metadata
        ("fe80::1", "a link-local address", None),
        ("240.0.0.1", "a reserved address", None),
        ("100.64.0.1", "not a public address", None),  # carrier-grade NAT
        ("0.0.0.0", "an unspecified address", "an unspecified address"),
        ("::", "an unspecified address", "an unspecified address"),
        ("224.0.0.1", "a multicast address", "a multicast address"),
        ("2002:a9fe:a9fe::1", "a 6to4 address", "a 6to4 address"),  # 169.254.169.254
        ("2002:808:808::1", "a 6to4 address", "a 6to4 address"),
        ("fec0::1", "a site-local address", "a site-local address"),
        ("8.8.8.8", None, None),
        ("2001:4860:4860::8888", None, None),
        ("::ffff:8.8.8.8", None, None),
    ],
)
def test_address_policy(
    address: str, refused: str | None, refused_when_private_allowed: str | None
) -> None:
    ip = ipaddress.ip_address(address)
    assert address_refusal(ip, allow_private=False) == refused
    assert address_refusal(ip, allow_private=True) == refused_when_private_allowed


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"])
def test_link_local_is_refused_with_private_allowed_when_the_caller_says_so(
    address: str,
) -> None:
    ip = ipaddress.ip_address(address)
    words = address_refusal(ip, allow_private=True, allow_link_local=False)
    assert words == "a link-local address"


def test_a_6to4_address_is_refused_without_the_private_hint() -> None:
    names = {"tunnel.test": "2002:a9fe:a9fe::1"}
    with pytest.raises(FetchRefused, match=r"a 6to4 address$"):
        allowed_addresses("tunnel.test", 80, allow_private=True, resolve=resolver(names, []))


def test_a_name_is_resolved_once_and_judged_by_every_address() -> None:
    calls: list[str] = []
    names = {"intranet.test": "10.0.0.7", "public.test": "93.184.216.34"}
    with pytest.raises(FetchRefused, match=r"intranet.test resolves to 10.0.0.7, a private"):
        allowed_addresses("intranet.test", 80, allow_private=False, resolve=resolver(names, calls))
    infos = allowed_addresses(
        "public.test", 80, allow_private=False, resolve=resolver(names, calls)
    )
    assert [info[4][0] for info in infos] == ["93.184.216.34"]
    assert calls == ["intranet.test", "public.test"]
    with pytest.raises(FetchFailed, match="does not resolve"):
        allowed_addresses("nowhere.test", 80, allow_private=False, resolve=resolver(names, calls))


def test_the_fetch_connects_to_the_address_it_checked(site: Site) -> None:
    """'feed.test' exists only in our resolver: the socket went to the address we were
    given, not to a second lookup (the gap DNS rebinding uses); the Host header keeps
    the name."""
    calls: list[str] = []
    url = f"http://feed.test:{site.port}/feed.xml"
    resolve = resolver({"feed.test": "127.0.0.1"}, calls)
    with open_url(
        url, deadline_seconds=5, allow_private=True, user_agent="t", resolve=resolve
    ) as response:
        assert (response.status, response.body(LIMIT)) == (200, FEED)
    assert calls == ["feed.test"]
    assert site.hits == [("/feed.xml", f"feed.test:{site.port}")]


# ---------------------------------------------------------------- the feed import


def test_a_feed_on_a_private_address_is_refused_by_default(
    session: Session, settings: Settings, site: Site
) -> None:
    assert settings.fetch_allow_private is False
    with pytest.raises(FetchRefused) as raised:
        import_snippets(session, settings=settings, source=f"{site.url}/feed.xml")
    assert str(raised.value) == (
        f"{site.url}/feed.xml: cannot fetch the feed: refused: 127.0.0.1 is a loopback "
        "address (NEWSLETTER_FETCH_ALLOW_PRIVATE)"
    )
    assert site.hits == []  # not even asked
    report = import_snippets(session, settings=local(settings), source=f"{site.url}/feed.xml")
    assert report.created == 1


def test_each_redirect_hop_is_resolved_and_checked(site: Site) -> None:
    calls: list[str] = []
    names = {"first.test": "127.0.0.1", "second.test": "127.0.0.1", "evil.test": "0.0.0.0"}
    resolve = resolver(names, calls)
    hop = f"http://second.test:{site.port}/feed.xml"
    with open_url(
        f"http://first.test:{site.port}/redirect?to={hop}",
        deadline_seconds=5,
        allow_private=True,
        user_agent="t",
        resolve=resolve,
    ) as response:
        assert (response.url, response.body(LIMIT)) == (hop, FEED)
    assert calls == ["first.test", "second.test"]
    site.hits.clear()
    evil = f"http://evil.test:{site.port}/feed.xml"
    refused = r"evil.test resolves to 0.0.0.0, an unspecified address$"
    with (
        pytest.raises(FetchRefused, match=refused),
        open_url(
            f"{site.url}/redirect?to={evil}",
            deadline_seconds=5,
            allow_private=True,
            user_agent="t",
            resolve=resolve,
        ),
    ):
        pytest.fail("the redirect was followed")
    assert [path for path, _ in site.hits] == [f"/redirect?to={evil}"]  # never reached


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd"])
def test_a_redirect_away_from_http_is_refused(
    session: Session, settings: Settings, site: Site, target: str
) -> None:
    with pytest.raises(FetchRefused, match=r"redirects to .*, which is not http\(s\)"):
        import_snippets(
            session, settings=local(settings), source=f"{site.url}/redirect?to={target}"
        )


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_a_declared_size_over_the_limit_is_refused_before_reading(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = local(settings, feed_max_bytes=LIMIT)
    started = time.monotonic()
    with pytest.raises(FetchTooLarge) as raised:
        import_snippets(session, settings=cfg, source=f"{site.url}/declared-large")
    assert time.monotonic() - started < 1.5  # did not wait for the body
    assert str(raised.value) == (
        f"{site.url}/declared-large: cannot fetch the feed: the answer is 104,857,600 bytes "
        f"(Content-Length), over the limit of {LIMIT:,} bytes (NEWSLETTER_FEED_MAX_BYTES)"
    )


def test_an_endless_feed_is_cut_off_at_the_limit(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = local(settings, feed_max_bytes=LIMIT)
    with pytest.raises(FetchTooLarge) as raised:
        import_snippets(session, settings=cfg, source=f"{site.url}/endless")
    message = str(raised.value)
    assert message.startswith(f"{site.url}/endless: cannot fetch the feed: the answer is over")
    assert f"the limit of {LIMIT:,} bytes (stopped reading at {LIMIT + 1:,})" in message
    assert message.endswith("(NEWSLETTER_FEED_MAX_BYTES)")
    assert session.exec(select(Snippet)).all() == []


@pytest.mark.parametrize(
    ("path", "words"),
    [("/trickle-body", "the answer did not finish"), ("/trickle-head", "no answer")],
)
@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_a_trickling_feed_is_stopped_by_one_deadline(
    session: Session, settings: Settings, site: Site, path: str, words: str
) -> None:
    """A byte every 0.3 s never trips a per-read timeout of a second; the deadline ends it."""
    cfg = local(settings, fetch_deadline_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(FetchTimedOut) as raised:
        import_snippets(session, settings=cfg, source=f"{site.url}{path}")
    assert 0.9 < time.monotonic() - started < 2.5
    assert str(raised.value) == (
        f"{site.url}{path}: cannot fetch the feed: {words} within 1 s "
        "(NEWSLETTER_FETCH_DEADLINE_SECONDS)"
    )


def test_the_fetch_settings_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEED_MAX_BYTES", "FETCH_DEADLINE_SECONDS", "FETCH_ALLOW_PRIVATE"):
        monkeypatch.delenv(f"NEWSLETTER_{name}", raising=False)
    defaults = load_settings(_env_file=None)
    assert (
        defaults.feed_max_bytes,
        defaults.fetch_deadline_seconds,
        defaults.fetch_allow_private,
    ) == (20 * 1024 * 1024, 30.0, False)
    monkeypatch.setenv("NEWSLETTER_FEED_MAX_BYTES", "1048576")
    monkeypatch.setenv("NEWSLETTER_FETCH_DEADLINE_SECONDS", "5")
    monkeypatch.setenv("NEWSLETTER_FETCH_ALLOW_PRIVATE", "true")
    changed = load_settings(_env_file=None)
    assert (changed.feed_max_bytes, changed.fetch_deadline_seconds) == (1048576, 5.0)
    assert changed.fetch_allow_private is True
