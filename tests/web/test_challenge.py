"""Nobody can use our form to bomb someone's inbox (issue 12.12): the sign-up form's
proof of work (the ALTCHA protocol, v2), over real HTTP under uvicorn, solved in Python
as the browser's script solves it (tests/support/web.solve). The Chromium test is in
tests/e2e/test_browser.py."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.settings import Settings
from subscribers import challenge
from tests.support.servers import free_port, live_server
from tests.support.subscribers import AppSlot, messages, sqlite_only
from tests.support.web import EASY_CHALLENGE, arrived, solve, solved
from web.app import create_app


@dataclass
class Site:
    client: httpx.Client
    settings: Settings
    engine: Engine

    def post(self, address: str, altcha: str | None) -> httpx.Response:
        data = {"email": address, "consent": "yes", "name": "", "website": ""}
        if altcha is not None:
            data["altcha"] = altcha
        return self.client.post("/subscribe", data=data)

    def subscribers(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT email FROM subscriber")).scalars())


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base


def _site(slot: AppSlot, base: str, cfg: Settings, engine: Engine) -> Iterator[Site]:
    slot.app = create_app(cfg)
    with httpx.Client(base_url=base, timeout=30) as client:
        yield Site(client, cfg, engine)
    slot.app = None


@pytest.fixture
def site(settings: Settings, engine: Engine, server: tuple[AppSlot, str]) -> Iterator[Site]:
    slot, base = server
    cfg = settings.model_copy(update={"base_url": base, **EASY_CHALLENGE})
    yield from _site(slot, base, cfg, engine)


def h1(response: httpx.Response) -> str:
    return response.text.split("<h1>", 1)[1].split("</h1>", 1)[0].strip()


def error_text(response: httpx.Response) -> str:
    return response.text.split('id="form-errors">', 1)[1].split("</div>", 1)[0].lower()


def tampered(payload: str, **solution: object) -> str:
    data = json.loads(base64.b64decode(payload))
    data["solution"].update(solution)
    return base64.b64encode(json.dumps(data).encode()).decode()


# ---------------------------------------------------------------- the form and the challenge


@sqlite_only
def test_the_form_says_what_happens_and_loads_our_solver(site: Site) -> None:
    page = site.client.get("/subscribe").text
    assert 'data-challenge-url="/subscribe/challenge"' in page
    assert '<script src="/static/signup-challenge.js" defer></script>' in page
    assert '<input type="hidden" name="altcha" value="">' in page
    assert "your browser solves a small puzzle before the form is sent" in page
    assert 'role="status" aria-live="polite"' in page
    assert "<noscript>" in page
    script = site.client.get("/static/signup-challenge.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "set-cookie" not in script.headers


@sqlite_only
def test_each_challenge_is_fresh_signed_and_never_cached(site: Site) -> None:
    first, second = site.client.get("/subscribe/challenge"), site.client.get("/subscribe/challenge")
    assert first.headers["cache-control"] == "no-store"
    assert "set-cookie" not in first.headers
    params = first.json()["parameters"]
    assert params["algorithm"] == "PBKDF2/SHA-256"
    assert params["cost"] == site.settings.signup_challenge_cost
    assert params["expiresAt"] > time.time() + site.settings.signup_challenge_expiry_seconds - 60
    assert len(first.json()["signature"]) == 64
    assert first.json() != second.json()


def test_a_solved_challenge_signs_up(site: Site) -> None:
    response = site.post("jane@example.com", solved(site.client))
    assert (response.status_code, h1(response)) == (200, "Please check your inbox")
    assert site.subscribers() == ["jane@example.com"]
    assert len(arrived(site.settings, "jane@example.com")) == 1


# ---------------------------------------------------------------- refusals


@sqlite_only
def test_a_post_without_a_solution_is_refused_and_mails_nobody(site: Site) -> None:
    response = site.post("victim@example.com", None)
    assert response.status_code == 400
    assert "before your browser finished its anti-robot check" in error_text(response)
    assert 'value="victim@example.com"' in response.text  # the reader's input is kept
    assert site.subscribers() == []
    assert messages(site.settings) == []


@sqlite_only
@pytest.mark.parametrize(
    "change",
    [
        {"counter": 0, "derivedKey": "00" * 32},  # a guess
        {"derivedKey": "ff" * 32},  # the right counter, a made-up key
    ],
)
def test_a_wrong_solution_is_refused(site: Site, change: dict[str, object]) -> None:
    response = site.post("victim@example.com", tampered(solved(site.client), **change))
    assert response.status_code == 400
    assert "the anti-robot check did not pass" in error_text(response)
    assert site.subscribers() == []


@sqlite_only
def test_a_challenge_we_did_not_sign_is_refused(site: Site) -> None:
    other = site.settings.model_copy(update={"secret_key": "another-secret-key-0123456789"})
    response = site.post("victim@example.com", solve(challenge.new_challenge(other)))
    assert response.status_code == 400
    assert "the anti-robot check did not pass" in error_text(response)


@sqlite_only
@pytest.mark.parametrize("garbage", ["x", "e30=", "!" * 5000, base64.b64encode(b"[1]").decode()])
def test_garbage_is_refused_not_a_crash(site: Site, garbage: str) -> None:
    response = site.post("victim@example.com", garbage)
    assert response.status_code == 400
    assert site.subscribers() == []


@sqlite_only
def test_an_expired_challenge_is_refused(site: Site) -> None:
    stale = challenge.new_challenge(site.settings, now=time.time() - 3600)
    response = site.post("victim@example.com", solve(stale))
    assert response.status_code == 400
    assert "the anti-robot check expired" in error_text(response)


def test_a_solution_is_accepted_once(site: Site) -> None:
    payload = solved(site.client)
    assert site.post("first@example.com", payload).status_code == 200
    replay = site.post("victim@example.com", payload)
    assert replay.status_code == 400
    assert "this anti-robot check was already used" in error_text(replay)
    assert site.subscribers() == ["first@example.com"]


@sqlite_only
def test_a_solution_is_spent_even_when_the_sign_up_is_refused(site: Site) -> None:
    payload = solved(site.client)
    assert site.post("not an address", payload).status_code == 400
    assert "already used" in error_text(site.post("victim@example.com", payload))


def test_the_same_solution_posted_at_once_signs_up_one_address(site: Site) -> None:
    payload = solved(site.client)
    codes: list[int] = []
    start = threading.Barrier(6)

    def post(n: int) -> None:
        with httpx.Client(base_url=str(site.client.base_url), timeout=30) as client:
            start.wait()
            data = {"email": f"flood{n}@example.com", "consent": "yes", "altcha": payload}
            codes.append(client.post("/subscribe", data=data).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [200, 400, 400, 400, 400, 400]
    assert len(site.subscribers()) == 1


def test_used_challenges_are_forgotten_once_expired(site: Site) -> None:
    payload = solved(site.client)
    with Session(site.engine) as session:
        challenge.redeem(session, settings=site.settings, payload=payload)
        session.commit()
    expires = json.loads(base64.b64decode(payload))["challenge"]["parameters"]["expiresAt"]
    with Session(site.engine) as session:  # the next use, once the first has expired
        challenge.redeem(
            session, settings=site.settings, payload=solved(site.client), now=expires + 1
        )
        session.commit()
    with site.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM used_challenge")).scalar() == 1


# ---------------------------------------------------------------- switched off


@sqlite_only
def test_switched_off_the_form_has_no_challenge(
    settings: Settings, engine: Engine, server: tuple[AppSlot, str]
) -> None:
    slot, base = server
    cfg = settings.model_copy(update={"base_url": base, "signup_challenge": False})
    for site in _site(slot, base, cfg, engine):
        page = site.client.get("/subscribe").text
        # No challenge script (the time-zone script of issue 16 is the only one left).
        assert "altcha" not in page.lower()
        assert re.findall(r"<script[^>]*>", page) == [
            '<script src="/static/signup-timezone.js" defer>'
        ]
        off = site.client.get("/subscribe/challenge")
        assert (off.status_code, off.json()) == (
            404,
            {"detail": "the sign-up form has no anti-robot check"},
        )
        assert site.post("jane@example.com", None).status_code == 200
        assert site.subscribers() == ["jane@example.com"]


def test_the_setting_reads_off_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SIGNUP_CHALLENGE", "off")
    assert Settings(_env_file=None).signup_challenge is False  # type: ignore[call-arg]
    monkeypatch.delenv("NEWSLETTER_SIGNUP_CHALLENGE")
    assert Settings(_env_file=None).signup_challenge is True  # type: ignore[call-arg]
