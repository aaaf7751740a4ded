"""Preflight sees what a reader would see broken (issue 13 item 7, issue 12 points 1 and 6).

Every image and link of the rendered issue is fetched from a real HTTP server on
127.0.0.1 that answers 200, 404, slowly, with a web page instead of a picture, refuses
HEAD, or redirects. A broken image blocks the send, a broken link warns; the checks are
bounded by a per-request timeout, a concurrency limit and one total deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
from sqlmodel import Session

from campaigns.content.preflight import Finding, preflight, require_preflight
from campaigns.content.reachability import check_url
from campaigns.models import Campaign, Snippet
from newsletter.errors import ContentError
from newsletter.settings import Settings, load_settings
from tests.support.content import make_campaign, make_snippet, shipped_template, with_templates
from tests.support.servers import QuietHTTPServer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@dataclass
class Site:
    """What the local site saw: (method, path) per request and the most at once."""

    url: str
    slow_seconds: float = 2.0
    hits: list[tuple[str, str]] = field(default_factory=list)
    active: int = 0
    most_at_once: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    site: Site
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/img/ok.png":
            self._answer(200, "image/png", PNG)
        elif path == "/img/slow.png":
            time.sleep(self.site.slow_seconds)
            self._answer(200, "image/png", PNG)
        elif path == "/img/page.png":
            self._answer(200, "text/html; charset=utf-8", b"<html>Please log in</html>")
        elif path == "/img/no-head.png":
            if self.command == "HEAD":
                self._answer(405, "text/plain", b"", Allow="GET")
            else:
                self._answer(200, "image/png", PNG)
        elif path == "/img/drop-head.png":
            if self.command == "HEAD":
                self.close_connection = True  # hang up without an answer
            else:
                self._answer(200, "image/png", PNG)
        elif path == "/img/redirect.png":
            self._answer(302, "text/plain", b"", Location="/img/ok.png")
        elif path == "/img/to-ftp.png":
            self._answer(302, "text/plain", b"", Location="ftp://127.0.0.1/ok.png")
        elif path.startswith("/article/ok"):
            self._answer(200, "text/html", b"<html>An article</html>")
        else:
            self._answer(404, "text/html", b"<html>Not found</html>")

    def _trickle(self) -> None:
        """The answer's head, a byte every 0.2 s: never late for a per-read timeout."""
        self.close_connection = True
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n":
                self.wfile.write(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass  # the client gave up: what we want

    def _serve(self) -> None:
        site = self.site
        with site.lock:
            site.hits.append((self.command, self.path))
            site.active += 1
            site.most_at_once = max(site.most_at_once, site.active)
        try:
            self._trickle() if self.path == "/img/trickle.png" else self._route()
        finally:
            with site.lock:
                site.active -= 1

    do_GET = do_HEAD = _serve


@pytest.fixture
def site() -> Iterator[Site]:
    server = QuietHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    info = Site(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"site": info})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()


def fetching(settings: Settings, **overrides: object) -> Settings:
    values = {
        "preflight_fetch": True,
        "preflight_fetch_timeout_seconds": 3.0,
        "preflight_fetch_concurrency": 4,
        "preflight_fetch_deadline_seconds": 10.0,
        "fetch_allow_private": True,  # the site is on 127.0.0.1
        **overrides,
    }
    return settings.model_copy(update=values)


def snippet(session: Session, settings: Settings, site: Site, image: str, n: int = 0) -> Snippet:
    return make_snippet(
        session,
        settings,
        url=f"{site.url}/article/ok?n={n}",
        image_url=f"{site.url}{image}",
        image_alt="A picture",
    )


def found(findings: list[Finding]) -> list[tuple[str, str, int | None, str | None]]:
    return [(f.severity, f.code, f.snippet_id, f.field) for f in findings]


def check(session: Session, settings: Settings, *snippets: Snippet) -> list[Finding]:
    campaign = make_campaign(session, list(snippets))
    return preflight(session, settings=settings, campaign=campaign).findings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- images and links


def test_a_broken_image_blocks_the_send_naming_its_snippet(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = fetching(settings)
    broken = snippet(session, cfg, site, "/img/missing.png")
    campaign = make_campaign(session, [broken])
    report = preflight(session, settings=cfg, campaign=campaign)
    assert found(report.findings) == [("error", "image-broken", broken.id, "image_url")]
    assert "HTTP 404" in report.findings[0].message
    assert "readers see its alt text" in report.findings[0].message
    with pytest.raises(ContentError, match=r"image '.*' does not load"):
        require_preflight(session, settings=cfg, campaign=campaign)


def test_a_broken_link_only_warns(session: Session, settings: Settings, site: Site) -> None:
    cfg = fetching(settings)
    gone = make_snippet(session, cfg, url=f"{site.url}/article/gone")
    report = preflight(session, settings=cfg, campaign=make_campaign(session, [gone]))
    assert report.ok
    assert found(report.findings) == [("warning", "link-broken", gone.id, "url")]
    assert "HTTP 404" in report.findings[0].message


def test_images_that_load_pass_with_head_then_get_and_redirects(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = fetching(settings)
    images = ("/img/ok.png", "/img/no-head.png", "/img/drop-head.png", "/img/redirect.png")
    snippets = [snippet(session, cfg, site, path, n) for n, path in enumerate(images)]
    assert check(session, cfg, *snippets) == []
    assert ("HEAD", "/img/ok.png") in site.hits
    assert ("GET", "/img/ok.png") not in site.hits  # HEAD was enough
    no_head = [m for m, p in site.hits if p == "/img/no-head.png"]
    assert no_head == ["HEAD", "GET"]
    assert [m for m, p in site.hits if p == "/img/drop-head.png"] == ["HEAD", "GET"]
    assert ("HEAD", "/article/ok?n=0") in site.hits  # links are fetched too, once each
    assert [p for _, p in site.hits].count("/article/ok?n=0") == 1


def test_an_image_url_answering_a_web_page_is_broken(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = fetching(settings)
    page = snippet(session, cfg, site, "/img/page.png")
    findings = check(session, cfg, page)
    assert found(findings) == [("error", "image-broken", page.id, "image_url")]
    assert "text/html, not an image" in findings[0].message


def test_a_redirect_away_from_http_is_broken(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = fetching(settings)
    away = snippet(session, cfg, site, "/img/to-ftp.png")
    findings = check(session, cfg, away)
    assert found(findings) == [("error", "image-broken", away.id, "image_url")]
    assert "not http(s)" in findings[0].message


def test_a_server_that_refuses_connections_is_broken(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = fetching(settings)
    port = closed_port()
    nowhere = make_snippet(
        session,
        cfg,
        image_url=f"http://127.0.0.1:{port}/x.png",
        image_alt="A picture",
        url=f"{site.url}/article/ok",
    )
    findings = check(session, cfg, nowhere)
    assert found(findings) == [("error", "image-broken", nowhere.id, "image_url")]
    assert "connection was refused" in findings[0].message


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_a_slow_image_times_out_by_its_own_timeout(
    session: Session, settings: Settings, site: Site
) -> None:
    cfg = fetching(settings, preflight_fetch_timeout_seconds=0.3)
    slow = snippet(session, cfg, site, "/img/slow.png")
    started = time.monotonic()
    findings = check(session, cfg, slow)
    assert time.monotonic() - started < site.slow_seconds
    assert found(findings) == [("error", "image-broken", slow.id, "image_url")]
    assert "no answer within 0.3 s" in findings[0].message


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_one_deadline_bounds_every_fetch_and_concurrency_is_limited(
    session: Session, settings: Settings, site: Site
) -> None:
    site.slow_seconds = 3.0
    cfg = fetching(
        settings,
        preflight_fetch_timeout_seconds=5.0,
        preflight_fetch_concurrency=2,
        preflight_fetch_deadline_seconds=1.0,
    )
    slow = [snippet(session, cfg, site, f"/img/slow.png?n={n}", n) for n in range(6)]
    started = time.monotonic()
    report = preflight(session, settings=cfg, campaign=make_campaign(session, slow))
    assert time.monotonic() - started < 2.5
    assert report.ok  # not checked is not broken
    assert [(f.severity, f.code) for f in report.findings] == [("warning", "fetch-deadline")]
    assert report.findings[0].message.startswith("12 of 12 images and links not checked")
    assert site.most_at_once <= 2


def test_fetch_off_asks_nobody(session: Session, settings: Settings, site: Site) -> None:
    cfg = fetching(settings, preflight_fetch=False)
    assert check(session, cfg, snippet(session, cfg, site, "/img/missing.png")) == []
    assert site.hits == []


def test_a_broken_link_in_a_template_points_at_the_template(
    session: Session, settings: Settings, site: Site, tmp_path
) -> None:
    footer = shipped_template("email/partials/footer.mjml.j2").replace(
        '<p style="margin:0;">{{ footer.reason }}</p>',
        f'<p style="margin:0;"><a href="{site.url}/about-us">About us</a></p>',
    )
    cfg = with_templates(
        fetching(settings), tmp_path / "mine", {"email/partials/footer.mjml.j2": footer}
    )
    findings = check(session, cfg, snippet(session, cfg, site, "/img/ok.png"))
    assert [(f.severity, f.code, f.template) for f in findings] == [
        ("warning", "link-broken", "email/partials/footer.mjml.j2")
    ]
    assert findings[0].line is not None


def test_check_url_refuses_what_is_not_http() -> None:
    result = check_url("ftp://127.0.0.1/x.png", image=True, timeout=1)
    assert (result.ok, result.reason) == (False, "not an http(s) URL")


def test_an_image_on_a_private_address_is_not_fetched_by_default(
    session: Session, settings: Settings, site: Site
) -> None:
    """An imported feed can name internal URLs: preflight keeps the feed fetch's policy."""
    cfg = fetching(settings, fetch_allow_private=False)
    inside = snippet(session, cfg, site, "/img/ok.png")
    findings = check(session, cfg, inside)
    assert found(findings) == [
        ("error", "image-broken", inside.id, "image_url"),
        ("warning", "link-broken", inside.id, "url"),
    ]
    for finding in findings:
        assert "(refused: 127.0.0.1 is a loopback address (NEWSLETTER_FETCH_ALLOW_PRIVATE))" in (
            finding.message
        )
    assert site.hits == []  # never asked


def test_a_trickling_image_is_cut_off_by_its_timeout(
    session: Session, settings: Settings, site: Site
) -> None:
    """The per-request timeout bounds the whole request, not each read."""
    cfg = fetching(settings, preflight_fetch_timeout_seconds=0.6)
    trickle = snippet(session, cfg, site, "/img/trickle.png")
    started = time.monotonic()
    findings = check(session, cfg, trickle)
    assert time.monotonic() - started < 3.0
    assert found(findings) == [("error", "image-broken", trickle.id, "image_url")]
    assert "within 0.6 s" in findings[0].message


def test_the_fetch_setting_reads_on_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_PREFLIGHT_FETCH", "off")
    assert load_settings(_env_file=None).preflight_fetch is False
    monkeypatch.setenv("NEWSLETTER_PREFLIGHT_FETCH", "on")
    assert load_settings(_env_file=None).preflight_fetch is True
    monkeypatch.delenv("NEWSLETTER_PREFLIGHT_FETCH")
    assert load_settings(_env_file=None).preflight_fetch is True  # on by default


# ---------------------------------------------------------------- headers and the base URL


@pytest.fixture
def campaign(session: Session, settings: Settings) -> Campaign:
    return make_campaign(session, [make_snippet(session, settings)])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("subject", "Stretch week\r\nBcc: everyone@example.com"),
        ("subject", "Stretch\tweek"),
        ("preheader", "Also this week:\nmore"),
        ("preheader", "Line\u2028separator"),
        ("subject", "Bell\x07"),
    ],
)
def test_control_characters_in_subject_or_preheader_block(
    session: Session, settings: Settings, campaign: Campaign, name: str, value: str
) -> None:
    setattr(campaign, name, value)
    report = preflight(session, settings=settings, campaign=campaign)
    ours = [f for f in report.findings if f.code == "control-character"]
    assert [f.severity for f in ours] == ["error"]
    assert f"the {name} contains control characters (U+" in ours[0].message
    # Anything else is an error too (MJML refuses a BEL in the title), never a pass.
    assert not report.ok and not report.warnings


def test_plain_unicode_in_subject_and_preheader_is_fine(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    campaign.subject = "Caf\u00e9 stretches \u2013 5 min \U0001f9d8"
    campaign.preheader = "Also: \u201cheat or ice?\u201d"
    assert preflight(session, settings=settings, campaign=campaign).findings == []


@pytest.mark.parametrize(
    ("provider", "base_url", "blocked"),
    [
        ("sendgrid", "http://news.example.com", True),
        ("smtp", "http://127.0.0.1:8000", True),
        ("sendgrid", "https://news.example.com", False),
        ("smtp", "HTTPS://news.example.com", False),
        ("outbox", "http://127.0.0.1:8000", False),
    ],
)
def test_a_real_send_needs_an_https_base_url(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    provider: str,
    base_url: str,
    blocked: bool,
) -> None:
    cfg = settings.model_copy(update={"provider": provider, "base_url": base_url})
    report = preflight(session, settings=cfg, campaign=campaign)
    assert [(f.severity, f.code) for f in report.findings] == (
        [("error", "base-url")] if blocked else []
    )
    if blocked:
        assert "RFC 8058" in report.findings[0].message


def test_a_template_greeting_with_the_bare_name_warns(
    session: Session, settings: Settings, campaign: Campaign, tmp_path
) -> None:
    text = shipped_template("email/weekly.txt.j2").replace("{{ greeting }}", "Dear {{ name }},")
    cfg = with_templates(settings, tmp_path / "mine", {"email/weekly.txt.j2": text})
    report = preflight(session, settings=cfg, campaign=campaign)
    assert [(f.severity, f.code, f.template) for f in report.findings] == [
        ("warning", "name", "email/weekly.txt.j2")
    ]
