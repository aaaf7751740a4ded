"""The door for subscribers and the provider: the FastAPI app.

Routes parse the request, call a room and format the answer. ``create_app(settings)``
builds one app per configuration, so tests run many side by side.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from newsletter import db
from newsletter.errors import NewsletterError
from newsletter.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    cfg = settings or load_settings()
    cfg.check_for_production()
    engine = db.get_engine(cfg.database_url)
    if cfg.is_sqlite:
        db.upgrade(engine)

    app = FastAPI(title="newsletter-pipeline", version="0.1.0")
    app.state.settings = cfg
    app.state.engine = engine

    @app.exception_handler(NewsletterError)
    async def _expected_error(_request: Request, err: NewsletterError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    return app


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with db.session_scope(request.app.state.engine) as session:
        yield session


SessionDep = Depends(get_session)
SettingsDep = Depends(get_settings)
