"""Helpers for the console tests (issue 14): an app client, users, signing in, and the
CSRF token of a page as a browser would read it from the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import accounts
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.support.subscribers import AppSlot
from web.app import create_app

PASSWORD = "a long test password"
OWNER = "owner@example.com"
EDITOR = "editor@example.com"
VIEWER = "viewer@example.com"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_user(engine: Engine, email: str, role: Role, password: str = PASSWORD) -> None:
    with Session(engine) as session:
        accounts.create_user(session, email, role, password)
        session.commit()


@contextmanager
def console_client(server: tuple[AppSlot, str], settings: Settings) -> Iterator[httpx.Client]:
    """A client of the app of ``settings``, plugged into a module's uvicorn server on
    127.0.0.1 (tests/web/console/conftest.py); no redirects followed, so a test sees each
    303."""
    slot, base = server
    slot.app = create_app(settings.model_copy(update={"base_url": base}))
    try:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=20) as client:
            yield client
    finally:
        slot.app = None


def csrf_of(client: httpx.Client, path: str) -> str:
    """The ``csrf_token`` of the first form on ``path``."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    found = _TOKEN.search(response.text)
    assert found, f"no csrf_token on {path}"
    return found.group(1)


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person does; the session cookie stays in the client."""
    token = csrf_of(client, "/admin/login")
    response = client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin/"


def add_users_cheaply(engine: Engine, users: dict[str, Role]) -> None:
    """``add_user`` for module-scoped fixtures, where the autouse cheap hasher of
    tests/conftest.py is not in force yet (issue 14 part B)."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "hasher", lambda: cheap)
        for email, role in users.items():
            add_user(engine, email, role)
