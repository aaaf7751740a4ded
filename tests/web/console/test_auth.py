"""Sign-in, sessions, roles and CSRF of the console (web/console/auth.py, deps.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

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
from web.console.deps import SESSION_COOKIE, SESSION_SALT


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
    body = b"email=" + b"a" * sqlite_settings.form_max_bytes
    response = client.post(
        "/admin/login",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.text == f"form larger than {sqlite_settings.form_max_bytes} bytes"
