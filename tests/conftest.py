"""Shared fixtures: an isolated, migrated database per test, on SQLite and PostgreSQL.

PostgreSQL cases read ``TEST_DATABASE_URL``; without it they are skipped with the reason.
Each PostgreSQL test gets its own schema (``search_path``), dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import db
from newsletter.settings import Settings
from tests.support.delivery import API_KEY
from tests.support.fake_sendgrid import FakeSendGrid

PG_URL = os.environ.get("TEST_DATABASE_URL")
# Preflight fetches every image and link it finds; tests reach 127.0.0.1 only, so it is off
# unless a test turns it on against its own local server
# (tests/campaigns/content/test_reachability.py).
os.environ.setdefault("NEWSLETTER_PREFLIGHT_FETCH", "off")
CHROMIUM = Path("/usr/bin/chromium")
NO_PG = "TEST_DATABASE_URL is not set: PostgreSQL cases need a real server (.ci/run sets it)"
NO_CHROMIUM = "/usr/bin/chromium is missing: install Debian's chromium (.ci/run does)"

requires_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)


def _pg_base_url() -> str:
    assert PG_URL
    return Settings(database_url=PG_URL).database_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema_url()


def _postgres_schema_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(NO_PG)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_base_url())
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in _pg_base_url() else "?"
    url = f"{_pg_base_url()}{sep}options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        db.dispose_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_settings(database_url: str, root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "outbox_dir": root / "outbox",
        "secret_key": "test-secret-key-0123456789abcdef",
        "postal_address": "Pain Relief Weekly, 12 Test Street, Springfield, USA",
        "base_url": "http://127.0.0.1:8000",
        "from_email": "news@example.com",
        "timezone": "UTC",
        "preflight_fetch": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Test settings on each database kind, with the file outbox under tmp_path."""
    return make_settings(database_url, tmp_path)


@pytest.fixture
def sqlite_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (per xdist worker). Migrating a fresh
    file takes ~0.2 s and about a thousand tests start from one; a copy takes ~1 ms."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    url = f"sqlite:///{path}"
    db.upgrade(db.get_engine(url))
    db.dispose_engine(url)  # closed: no -wal file is left beside it
    return path


def migrated_engine(url: str, request: pytest.FixtureRequest) -> Engine:
    """The engine of ``url`` at head: a new SQLite file starts as a copy of the template;
    ``db.upgrade`` then finds it at head (and migrates a PostgreSQL schema for real)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        target = Path(parsed.database)
        if not target.exists():
            shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
    engine = db.get_engine(url)
    db.upgrade(engine)
    return engine


@pytest.fixture
def engine(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = migrated_engine(settings.database_url, request)
    yield engine
    db.dispose_engine(settings.database_url)


@pytest.fixture
def sqlite_engine(sqlite_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = migrated_engine(sqlite_settings.database_url, request)
    yield engine
    db.dispose_engine(sqlite_settings.database_url)


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL engine, for the queue-mode tests that run on PostgreSQL only
    (``postgres_url`` disposes of it and drops the schema)."""
    engine = db.get_engine(postgres_url)
    db.upgrade(engine)
    yield engine


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    """The fake SendGrid API on 127.0.0.1, one server per test so its records start empty."""
    with FakeSendGrid(API_KEY) as server:
        yield server


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def chromium_path() -> str:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(NO_CHROMIUM)
    return str(CHROMIUM)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its smallest cost for tests (console users, issue 14): the production
    parameters take about 0.3 s per hash on a loaded CI machine. Production's own
    parameters are checked in tests/newsletter/test_accounts.py."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from newsletter import accounts

    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
    monkeypatch.setattr(accounts, "hasher", lambda: cheap)
