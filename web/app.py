"""``create_app(settings)``: the FastAPI app of one configuration.

One app per configuration, nothing global: tests run many side by side, and the CLI
starts it as ``uvicorn.run("web.app:create_app", factory=True)``.
"""

from __future__ import annotations

from fastapi import FastAPI

from newsletter import db
from newsletter.settings import Settings, load_settings
from subscribers.ratelimit import RateLimiter
from web import api, errors, health, subscriber_pages, webhooks


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: the environment's); migrates a SQLite database.

    Raises ConfigError for settings production cannot run with (no secret key, an
    unsigned webhook without ``allow_unsigned_webhooks``), DatabaseError when SQLite
    cannot be migrated.
    """
    cfg = settings or load_settings()
    cfg.check_for_production()
    engine = db.get_engine(cfg.database_url)
    if cfg.is_sqlite:
        db.upgrade(engine)

    app = FastAPI(title="newsletter-pipeline", version="0.1.0", openapi_tags=api.TAGS)
    app.state.settings = cfg
    app.state.engine = engine
    app.state.signup_limiter = RateLimiter(
        limit=cfg.signup_rate_limit, window=cfg.signup_rate_window_seconds
    )
    errors.register(app)
    webhooks.mount(app, cfg)  # POST /webhooks/sendgrid, only when SendGrid sends our mail
    app.include_router(subscriber_pages.router)
    app.include_router(api.router)
    app.include_router(health.router)
    return app
