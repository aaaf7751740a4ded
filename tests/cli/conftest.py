"""Fixtures the command tests share: ``env``, the environment of a migrated SQLite database
and an outbox in the test's own folder (a test module may define its own ``env``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter import db
from tests.conftest import migrated_engine


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_POSTAL_ADDRESS": "Pain Relief Weekly, 1 Main Street, Springfield",
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_TIMEZONE": "America/New_York",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    migrated_engine(values["NEWSLETTER_DATABASE_URL"], request)
    yield values
    db.dispose_engine(values["NEWSLETTER_DATABASE_URL"])
