"""``/readyz`` over real HTTP: ready only when the database answers and its migrations
are current; 503 with a reason otherwise. ``/healthz`` stays liveness (test_errors.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.engine import Engine

from newsletter import db
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.servers import free_port, live_server
from web.app import create_app


def test_readyz_is_200_when_the_database_is_at_the_head_revision(
    settings: Settings, engine: Engine
) -> None:
    with live_server(create_app(settings)) as base:
        response = httpx.get(f"{base}/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "database_ok": True,
        "revision": db.head_revision(),
        "head": db.head_revision(),
        "reason": None,
    }


def test_readyz_is_503_when_the_database_is_stamped_at_an_older_revision(
    settings: Settings, engine: Engine
) -> None:
    app = create_app(settings)
    older = db.revisions()[-2]
    db.downgrade(engine, older)  # after start: a deploy whose migrations did not run
    with live_server(app) as base:
        response = httpx.get(f"{base}/readyz")
        alive = httpx.get(f"{base}/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["ready"], body["database_ok"], body["revision"]) == (False, True, older)
    assert body["reason"] == (
        f"migrations are not current: database at {older}, code at {db.head_revision()}"
    )
    assert alive.status_code == 200  # liveness does not care about migrations


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/newsletter?connect_timeout=5"
    cfg = make_settings(url, tmp_path)
    try:
        with live_server(create_app(cfg)) as base:
            response = httpx.get(f"{base}/readyz")
    finally:
        db.dispose_engine(cfg.database_url)
    assert response.status_code == 503
    assert response.json()["reason"] == "the database is unreachable"
    assert response.json()["database_ok"] is False
    assert "s3cret" not in response.text and "127.0.0.1" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
