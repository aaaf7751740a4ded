"""Sign-in, sessions, roles and CSRF of the console (web/console/auth.py, deps.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import accounts
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.support.console import (
    EDITOR,
    OWNER,
    PASSWORD,
    VIEWER,
    add_user,
    console_client,
    csrf_of,
    sign_in,
)
from tests.support.subscribers import AppSlot
from web.console.auth import client_key
from web.console.deps import FORM_BYTES, SESSION_COOKIE, SESSION_SALT


@pytest.fixture
def client(
    sqlite_settings: Settings, sqlite_engine: Engine, console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    add_user(sqlite_engine, OWNER, Role.owner)
    add_user(sqlite_engine, VIEWER, Role.viewer)
    cfg = sqlite_settings.model_copy(update={"console_login_limit": 3})
    with console_client(console_server, cfg) as client:
        yield client


def test_a_page_without_a_session_redirects_to_the_login_form(client: httpx.Client) -> None:
    response = client.get("/admin/")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"


def test_the_login_form_has_labelled_email_and_password_and_a_log_in_button(
    client: httpx.Client,
) -> None:
    html = client.get("/admin/login").text
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert '<button type="submit">Log in</button>' in html


def test_a_good_login_sets_a_safe_session_cookie_and_opens_the_dashboard(
    client: httpx.Client,
) -> None:
    token = csrf_of(client, "/admin/login")
    response = client.post(
        "/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    cookie = next(
        v for k, v in response.headers.multi_items() if v.startswith(SESSION_COOKIE + "=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Max-Age=43200" in cookie  # 12 hours
    assert "Secure" not in cookie  # http:// base URL
    dashboard = client.get("/admin/")
    assert dashboard.status_code == 200
    assert OWNER in dashboard.text and "Log out" in dashboard.text


def test_a_bad_password_shows_the_form_again_with_one_message(client: httpx.Client) -> None:
    token = csrf_of(client, "/admin/login")
    response = client.post(
        "/admin/login", data={"email": OWNER, "password": "wrong password!", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/admin/").status_code == 303


def test_failed_logins_are_rate_limited_even_with_the_right_password(client: httpx.Client) -> None:
    token = csrf_of(client, "/admin/login")
    for _ in range(3):
        client.post(
            "/admin/login", data={"email": OWNER, "password": "nope nope", "csrf_token": token}
        )
    response = client.post(
        "/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_a_login_post_without_its_csrf_token_is_refused(client: httpx.Client) -> None:
    client.get("/admin/login")
    response = client.post("/admin/login", data={"email": OWNER, "password": PASSWORD})
    assert response.status_code == 403


def test_a_post_without_the_sessions_csrf_token_is_refused(client: httpx.Client) -> None:
    sign_in(client, OWNER)
    assert client.post("/admin/logout", data={}).status_code == 403
    assert client.post("/admin/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/admin/").status_code == 200  # still signed in


def test_logout_ends_the_session(client: httpx.Client) -> None:
    sign_in(client, OWNER)
    token = csrf_of(client, "/admin/")
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    assert client.get("/admin/").status_code == 303


class _Yesterday(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 13 * 3600


def test_an_expired_session_cookie_redirects_to_the_login_form(
    client: httpx.Client, sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    with Session(sqlite_engine) as session:
        user = accounts.find_user(session, OWNER)
    assert user is not None
    old = URLSafeTimedSerializer(
        list(reversed(sqlite_settings.secret_keys)), salt=SESSION_SALT, signer=_Yesterday
    ).dumps({"u": user.id, "c": "x"})
    client.cookies.set(SESSION_COOKIE, old, path="/admin")
    assert client.get("/admin/").status_code == 303


def test_a_disabled_user_is_out_at_the_next_request(
    client: httpx.Client, sqlite_engine: Engine
) -> None:
    add_user(sqlite_engine, EDITOR, Role.editor)
    sign_in(client, EDITOR)
    with Session(sqlite_engine) as session:
        accounts.disable_user(session, EDITOR)
        session.commit()
    assert client.get("/admin/").status_code == 303


def test_a_viewer_post_to_an_editor_action_is_refused(client: httpx.Client) -> None:
    sign_in(client, VIEWER)
    token = csrf_of(client, "/admin/")
    response = client.post(
        "/admin/subscribers/add", data={"csrf_token": token, "email": "new@example.com"}
    )
    assert response.status_code == 403


def test_an_oversized_form_is_refused_before_it_is_read(
    client: httpx.Client, sqlite_settings: Settings
) -> None:
    limit = max(sqlite_settings.form_max_bytes, FORM_BYTES)
    body = b"email=" + b"a" * limit
    response = client.post(
        "/admin/login",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.text == f"form larger than {limit} bytes"


# Security fixes of the console's sign-in: one limit per address, tries counted before the
# password is checked, sign-out and disabling that hold on the server.


def _wrong_login(client: httpx.Client, token: str, email: str, forwarded_for: str = "") -> int:
    response = client.post(
        "/admin/login",
        data={"email": email, "password": "wrong password!", "csrf_token": token},
        headers={"X-Forwarded-For": forwarded_for} if forwarded_for else {},
    )
    return response.status_code


def test_look_alike_spellings_of_one_address_share_one_limit(
    sqlite_settings: Settings, sqlite_engine: Engine, console_server: tuple[AppSlot, str]
) -> None:
    add_user(sqlite_engine, OWNER, Role.owner)
    # Each try from another client address, so only the per-email limit can refuse.
    cfg = sqlite_settings.model_copy(
        update={"console_login_limit": 3, "trusted_proxies": ["127.0.0.1/32"]}
    )
    # A full-width "e", an ideographic full stop, a full-width full stop: IDNA maps each
    # to ASCII, so each signs in as OWNER.
    spellings = [
        "owner@\uff45xample.com",
        "owner@example\u3002com",
        "Owner@EXAMPLE\uff0eCOM",
        OWNER,
    ]
    with console_client(console_server, cfg) as client:
        token = csrf_of(client, "/admin/login")
        codes = [
            _wrong_login(client, token, email, f"192.0.2.{n}") for n, email in enumerate(spellings)
        ]
    assert codes == [401, 401, 401, 429]


def test_tries_sent_at_once_are_counted_before_their_passwords_are_checked(
    client: httpx.Client,
) -> None:
    token = csrf_of(client, "/admin/login")
    start = threading.Barrier(8)

    def attempt() -> int:
        with httpx.Client(
            base_url=client.base_url, cookies=client.cookies, follow_redirects=False, timeout=20
        ) as own:
            start.wait()
            return _wrong_login(own, token, OWNER)

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(pool.map(lambda _: attempt(), range(8)))
    # console_login_limit is 3. Fewer may pass: the client and the email counts are taken
    # one after the other, so a try refused by one may have used up the other's.
    assert 1 <= codes.count(401) <= 3
    assert codes.count(429) == 8 - codes.count(401)


def test_ipv6_clients_share_a_limit_per_64_and_ipv4_clients_per_address() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff:1:2:3")
    assert client_key("2001:db8:1:2::1") == "ip:2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.1") == "ip:192.0.2.1" == client_key("::ffff:192.0.2.1")
    assert client_key("192.0.2.2") != client_key("192.0.2.1")


def test_the_cookie_of_a_session_that_logged_out_is_refused(client: httpx.Client) -> None:
    sign_in(client, OWNER)
    stolen = client.cookies[SESSION_COOKIE]
    token = csrf_of(client, "/admin/")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    client.cookies.set(SESSION_COOKIE, stolen, path="/admin")
    response = client.get("/admin/")
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"


def test_logging_out_ends_the_users_sessions_in_other_browsers_too(
    client: httpx.Client,
) -> None:
    sign_in(client, OWNER)
    with httpx.Client(base_url=client.base_url, follow_redirects=False, timeout=20) as other:
        sign_in(other, OWNER)
        token = csrf_of(client, "/admin/")
        client.post("/admin/logout", data={"csrf_token": token})
        assert other.get("/admin/").status_code == 303


def test_disabling_a_user_replaces_their_session_epoch(
    client: httpx.Client, sqlite_engine: Engine
) -> None:
    add_user(sqlite_engine, EDITOR, Role.editor)
    sign_in(client, EDITOR)
    with Session(sqlite_engine) as session:
        user = accounts.find_user(session, EDITOR)
        assert user is not None and user.id is not None
        before = accounts.session_epoch(session, user.id)
        accounts.disable_user(session, EDITOR)
        session.commit()
        assert accounts.session_epoch(session, user.id) != before
    assert client.get("/admin/").status_code == 303


def test_a_session_cookie_without_an_epoch_is_refused(
    client: httpx.Client, sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    with Session(sqlite_engine) as session:
        user = accounts.find_user(session, OWNER)
    assert user is not None
    old_style = URLSafeTimedSerializer(
        list(reversed(sqlite_settings.secret_keys)), salt=SESSION_SALT
    ).dumps({"u": user.id, "c": "x"})
    client.cookies.set(SESSION_COOKIE, old_style, path="/admin")
    assert client.get("/admin/").status_code == 303
