"""Server faults over real HTTP: a database that is down or has lost its tables answers
503 with a short body: never 400, never a traceback, never the database's address or
SQL. A broken constraint stays a 500 (tests/web/test_deps.py). A mail provider that
fails after a sign-up was answered undoes the sign-up, so the reader can simply retry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import weekly_plan
from newsletter import api_tokens, db
from newsletter.errors import InvalidInput, StateError
from newsletter.settings import Settings
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings
from tests.support.delivery import API_KEY
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.servers import free_port, live_server
from tests.support.subscribers import Nobody
from web.app import create_app
from web.errors import console_message, without_settings

DOWN = {"detail": "the database is unavailable; please try again later"}


def h1(response: httpx.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert found, response.text
    return found.group(1).strip()


def assert_short_page(response: httpx.Response, settings: Settings) -> None:
    """A 503 page of ours: HTML, uncached, saying to come back, giving nothing away."""
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert h1(response) == "Please try again in a few minutes"
    for secret in ("Traceback", "SQL", "postgresql", "sqlite", settings.database_url):
        assert secret not in response.text


@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """The app on a PostgreSQL address where nothing listens (a real refused connection)."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/newsletter?connect_timeout=5"
    cfg = make_settings(url, tmp_path)
    try:
        with live_server(create_app(cfg)) as base:
            yield base, cfg
    finally:
        db.dispose_engine(cfg.database_url)


def test_an_api_route_answers_503_when_the_database_is_down(down: tuple[str, Settings]) -> None:
    base, _ = down
    response = httpx.get(f"{base}/api/campaigns", headers={"Authorization": "Bearer nlt_any"})
    assert (response.status_code, response.json()) == (503, DOWN)


def test_the_sign_up_page_answers_503_when_the_database_is_down(
    down: tuple[str, Settings],
) -> None:
    base, cfg = down
    response = httpx.post(f"{base}/subscribe", data={"email": "jane@example.com", "consent": "yes"})
    assert_short_page(response, cfg)
    assert "This page cannot be shown just now." in response.text


def test_a_link_page_answers_503_when_the_database_is_down(down: tuple[str, Settings]) -> None:
    base, cfg = down
    token = Tokens(cfg).make(Purpose.PREFERENCES, Nobody(1))
    assert_short_page(httpx.get(f"{base}/preferences/{token}"), cfg)


def test_healthz_answers_503_and_says_the_database_is_not_ok(
    down: tuple[str, Settings],
) -> None:
    base, _ = down
    response = httpx.get(f"{base}/healthz")
    assert (response.status_code, response.json()) == (
        503,
        {"database_ok": False, "active_instance": None, "lease_expires_at": None, "jobs": []},
    )


@pytest.fixture
def dropped(settings: Settings, engine: Engine) -> Iterator[tuple[str, str, Settings]]:
    """The app after every table of its schema was dropped (an API token made before)."""
    with Session(engine, expire_on_commit=False) as session:
        _, token = api_tokens.create(session, name="ops")
        session.commit()
    app = create_app(settings)
    tables = sa.MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    with live_server(app) as base:
        yield base, token, settings


def test_an_api_route_answers_503_when_the_tables_are_gone(
    dropped: tuple[str, str, Settings],
) -> None:
    base, token, _ = dropped
    response = httpx.get(f"{base}/api/campaigns", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()) == (503, DOWN)


def test_a_page_answers_503_when_the_tables_are_gone(dropped: tuple[str, str, Settings]) -> None:
    base, _, cfg = dropped
    token = Tokens(cfg).make(Purpose.PREFERENCES, Nobody(1))
    assert_short_page(httpx.get(f"{base}/preferences/{token}"), cfg)


@pytest.fixture
def failing_provider(tmp_path: Path) -> Iterator[tuple[str, FakeSendGrid, Settings]]:
    with FakeSendGrid(API_KEY) as fake:
        cfg = make_settings(
            f"sqlite:///{tmp_path / 'test.db'}",
            tmp_path,
            provider="sendgrid",
            sendgrid_api_key=API_KEY,
            sendgrid_api_host=fake.url,
            signup_challenge=False,
        )
        try:
            with live_server(create_app(cfg)) as base:
                yield base, fake, cfg
        finally:
            db.dispose_engine(cfg.database_url)


def _count(cfg: Settings) -> int:
    with db.get_engine(cfg.database_url).connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM subscriber")).scalar_one()


def _eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_provider_outage_on_sign_up_keeps_nothing_and_the_next_try_goes_through(
    failing_provider: tuple[str, FakeSendGrid, Settings],
) -> None:
    """The answer never waits for the provider (the confirmation goes out after it, so
    an unknown address is not told from a known one by the time taken): an outage is
    logged, the sign-up it belonged to is undone, and the same sign-up goes through once
    the provider is back."""
    base, fake, cfg = failing_provider
    fake.fail_next(503)
    response = httpx.post(f"{base}/subscribe", data={"email": "jane@example.com", "consent": "yes"})
    assert (response.status_code, h1(response)) == (200, "Please check your inbox")
    assert _eventually(lambda: fake.attempts == 1 and _count(cfg) == 0)
    # The provider is back: the same sign-up goes through at once (no resend throttle).
    retry = httpx.post(f"{base}/subscribe", data={"email": "jane@example.com", "consent": "yes"})
    assert (retry.status_code, h1(retry)) == (200, "Please check your inbox")
    assert _eventually(lambda: fake.deliveries["jane@example.com"] == 1)
    assert _count(cfg) == 1


@pytest.mark.parametrize(
    ("reason", "line"),
    [
        ("longer than 300 characters", "Longer than 300 characters."),
        ("big.md: over 1,000,000 bytes", "big.md: over 1,000,000 bytes."),
        (
            "'nia@example' is not a valid email address",
            "'nia@example' is not a valid email address.",
        ),
        ("the subjects must be different.", "The subjects must be different."),
    ],
)
def test_a_console_line_is_a_sentence_that_never_capitalises_a_name(reason: str, line: str):
    assert console_message(InvalidInput(reason, field="x")) == line


def test_a_refused_state_change_says_what_to_do_instead():
    line = console_message(StateError("campaign 1 cannot go from sent to scheduled"))
    assert line == (
        "Campaign 1 cannot go from sent to scheduled. "
        "It has been sent: duplicate it to send the issue again."
    )


def test_a_time_refusal_that_says_what_to_pick_gets_no_second_advice():
    with pytest.raises(InvalidInput) as refused:
        weekly_plan.parse_when("9999-12-31T20:00-05:00", Settings(timezone="UTC"))
    line = "'9999-12-31T20:00-05:00' is too far ahead; pick a date within ten years."
    assert console_message(refused.value) == line


def test_a_time_refusal_without_advice_gets_the_fields_own():
    err = InvalidInput("2020-01-01 09:00 is in the past", field="at")
    assert console_message(err) == (
        "2020-01-01 09:00 is in the past. Pick a date and time in the future, then schedule again."
    )


def test_a_console_line_names_no_setting_a_marketer_cannot_change():
    err = InvalidInput(
        "must be https:// (http:// only for 127.0.0.1 or localhost, with "
        "NEWSLETTER_WEBHOOK_ALLOW_LOCAL)",
        field="url",
    )
    line = console_message(err)
    assert "NEWSLETTER_" not in line
    assert line.endswith("with a setting only whoever runs the newsletter can change).")


def test_an_imports_refusal_names_no_setting_either():
    text = "refused: 127.0.0.1 is a loopback address (NEWSLETTER_FETCH_ALLOW_PRIVATE)"
    assert without_settings(text) == (
        "refused: 127.0.0.1 is a loopback address (a setting only whoever runs the newsletter "
        "can change)"
    )
