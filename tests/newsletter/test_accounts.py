"""Console users: creation, sign-in, roles and disabling (newsletter/accounts.py)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import accounts, audit
from newsletter.accounts import Role
from newsletter.errors import InvalidEmail, InvalidInput, LoginFailed, NotFound, StateError

PASSWORD = "correct horse battery"


@pytest.fixture
def lite(sqlite_engine: Engine) -> Iterator[Session]:
    """A SQLite session: for rules that do not depend on the database."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        yield session


def test_production_hashes_are_argon2id_with_pwdlib_defaults() -> None:
    assert accounts.production_hasher().hash(PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_roles_are_ordered_by_power() -> None:
    assert Role.viewer < Role.editor < Role.owner
    assert Role.owner >= Role.editor and not Role.viewer >= Role.editor
    assert sorted([Role.owner, Role.viewer, Role.editor]) == [Role.viewer, Role.editor, Role.owner]


def test_a_created_user_signs_in_and_the_hash_is_argon2id(session: Session) -> None:
    created = accounts.create_user(session, " Ann@Example.COM ", Role.editor, PASSWORD)
    assert created.email == "ann@example.com"
    assert created.password_hash.startswith("$argon2id$")  # cheap in tests (conftest.py)
    assert PASSWORD not in created.password_hash
    user = accounts.authenticate(session, "ann@example.com", PASSWORD)
    assert user.id == created.id and user.last_login_at is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [("ann@example.com", "wrong password!"), ("nobody@example.com", PASSWORD), ("junk", PASSWORD)],
    ids=["wrong-password", "unknown-email", "not-an-address"],
)
def test_a_failed_sign_in_says_the_same_whatever_was_wrong(
    lite: Session, email: str, password: str
) -> None:
    accounts.create_user(lite, "ann@example.com", Role.editor, PASSWORD)
    with pytest.raises(LoginFailed, match=r"^wrong email or password$"):
        accounts.authenticate(lite, email, password)


def test_a_disabled_user_cannot_sign_in(lite: Session) -> None:
    accounts.create_user(lite, "own@example.com", Role.owner, PASSWORD)
    accounts.create_user(lite, "ann@example.com", Role.editor, PASSWORD)
    accounts.disable_user(lite, "ann@example.com")
    with pytest.raises(LoginFailed):
        accounts.authenticate(lite, "ann@example.com", PASSWORD)


def test_the_last_active_owner_cannot_be_disabled(lite: Session) -> None:
    accounts.create_user(lite, "own@example.com", Role.owner, PASSWORD)
    with pytest.raises(StateError, match="last active owner"):
        accounts.disable_user(lite, "own@example.com")


def test_disabling_twice_or_an_unknown_user_is_refused(lite: Session) -> None:
    accounts.create_user(lite, "own@example.com", Role.owner, PASSWORD)
    accounts.create_user(lite, "ann@example.com", Role.viewer, PASSWORD)
    accounts.disable_user(lite, "ann@example.com")
    with pytest.raises(StateError, match="already disabled"):
        accounts.disable_user(lite, "ann@example.com")
    with pytest.raises(NotFound):
        accounts.disable_user(lite, "who@example.com")


def test_an_address_gets_one_account(lite: Session) -> None:
    accounts.create_user(lite, "ann@example.com", Role.viewer, PASSWORD)
    with pytest.raises(InvalidInput, match="already has a console account"):
        accounts.create_user(lite, "ANN@example.com", Role.owner, PASSWORD)


def test_bad_input_is_refused_before_anything_is_stored(lite: Session) -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        accounts.create_user(lite, "ann@example.com", Role.viewer, "short")
    with pytest.raises(InvalidInput, match="unknown role 'admin'"):
        accounts.create_user(lite, "ann@example.com", "admin", PASSWORD)
    with pytest.raises(InvalidEmail):
        accounts.create_user(lite, "not an address", Role.viewer, PASSWORD)
    assert accounts.list_users(lite) == []


def test_changes_with_an_actor_are_audited(session: Session) -> None:
    accounts.create_user(session, "own@example.com", Role.owner, PASSWORD, actor="cli")
    accounts.create_user(session, "ann@example.com", Role.viewer, PASSWORD, actor="cli")
    accounts.disable_user(session, "ann@example.com", actor="own@example.com")
    entries = audit.recent(session).entries
    assert [(e.actor, e.action, e.target_id) for e in entries] == [
        ("own@example.com", "user.disable", "ann@example.com"),
        ("cli", "user.create", "ann@example.com"),
        ("cli", "user.create", "own@example.com"),
    ]
    assert entries[1].after == {"role": "viewer"}
    assert all("hash" not in str(e.after) for e in entries)


def test_users_are_listed_in_creation_order(lite: Session) -> None:
    for address in ("b@example.com", "a@example.com"):
        accounts.create_user(lite, address, Role.viewer, PASSWORD)
    assert [u.email for u in accounts.list_users(lite)] == ["b@example.com", "a@example.com"]


# Security fixes of the console's sign-in.


def test_the_sign_in_limit_key_is_the_address_authenticate_finds() -> None:
    # A full-width "e" and an ideographic full stop in the domain: IDNA maps both to ASCII.
    for spelling in ("Ann@\uff45xample.com", " ann@example\u3002com ", "ANN@EXAMPLE.COM"):
        assert accounts.login_key(spelling) == "ann@example.com"
    assert accounts.login_key("  Not An Address ") == "not an address"


def test_ending_sessions_replaces_the_epoch_each_time(session: Session) -> None:
    user = accounts.create_user(session, "ann@example.com", Role.viewer, PASSWORD)
    assert user.id is not None
    seen = {accounts.session_epoch(session, user.id)}
    for _ in range(2):  # the first inserts the row, the second replaces it
        accounts.end_sessions(session, user.id)
        seen.add(accounts.session_epoch(session, user.id))
    assert len(seen) == 3


def test_at_most_four_passwords_are_verified_at_once(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(sqlite_engine) as session:
        accounts.create_user(session, "ann@example.com", Role.viewer, PASSWORD)
        session.commit()
    cheap = accounts.hasher()
    lock = threading.Lock()
    running = [0, 0]  # now, most

    class Counting:
        def verify_and_update(self, password: str, hash: str) -> tuple[bool, str | None]:
            with lock:
                running[0] += 1
                running[1] = max(running)
            time.sleep(0.05)  # long enough for every thread to arrive
            with lock:
                running[0] -= 1
            return cheap.verify_and_update(password, hash)

    monkeypatch.setattr(accounts, "hasher", lambda: Counting())
    start = threading.Barrier(10)

    def sign_in() -> None:
        with Session(sqlite_engine) as own:
            start.wait()
            with contextlib.suppress(LoginFailed):
                accounts.authenticate(own, "ann@example.com", "wrong password!")

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda _: sign_in(), range(10)))
    assert running[1] == accounts.VERIFY_SLOTS == 4
