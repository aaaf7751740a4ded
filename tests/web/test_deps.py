"""The request's database session commits before the response goes out."""

from __future__ import annotations

import hashlib

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter.models import ApiToken
from newsletter.settings import Settings
from tests.support.servers import live_server
from web.app import create_app
from web.deps import SessionDep


def _app_with_probe(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.post("/probe/{name}")
    def probe(name: str, session: SessionDep) -> dict[str, str]:
        session.add(ApiToken(name=name, token_hash=hashlib.sha256(name.encode()).hexdigest()))
        return {"added": name}

    return app


def test_a_change_is_visible_as_soon_as_the_response_arrives(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    with live_server(_app_with_probe(sqlite_settings)) as base:
        for n in range(20):
            assert httpx.post(f"{base}/probe/t{n}").json() == {"added": f"t{n}"}
            with Session(sqlite_engine) as session:
                assert session.exec(select(ApiToken).where(ApiToken.name == f"t{n}")).one()


def test_a_change_that_cannot_commit_is_never_answered_as_done(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    with Session(sqlite_engine) as session:
        session.add(ApiToken(name="taken", token_hash="x" * 64))
        session.commit()
    with live_server(_app_with_probe(sqlite_settings)) as base:
        response = httpx.post(f"{base}/probe/taken")
    assert response.status_code == 500
