"""``create_app(settings)``: the FastAPI app of one configuration.

One app per configuration, nothing global: tests run many side by side, and the CLI
starts it as ``uvicorn.run("web.app:create_app", factory=True)`` (with uvicorn's own
proxy-header handling off: the app decides whom to believe, web/clients.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from newsletter import db
from newsletter.settings import Settings, load_settings
from subscribers.ratelimit import RateLimiter
from web import (
    api,
    archive,
    assets,
    clients,
    errors,
    health,
    my_data_pages,
    subscriber_pages,
    webhooks,
)
from web.security import SecurityHeaders


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

    # No slash redirects: Starlette builds them from the request's Host header, so
    # "/subscribe/" with "Host: evil.example" would send the reader to that host.
    app = FastAPI(
        title="newsletter-pipeline",
        version="0.1.0",
        openapi_tags=api.TAGS,
        docs_url=None,  # served offline by web.assets
        redoc_url=None,
        redirect_slashes=False,
    )
    app.state.settings = cfg
    app.state.engine = engine
    app.state.trusted_proxies = clients.networks(cfg.trusted_proxies)
    salt = cfg.secret_key or ""
    app.state.signup_limiter = RateLimiter(
        engine,
        limit=cfg.signup_limit_per_hour,
        window=cfg.signup_limit_window_seconds,
        bucket="signup",
        salt=salt,
    )
    app.state.my_data_limiter = RateLimiter(
        engine, limit=cfg.my_data_limit_per_hour, window=3600, bucket="my-data", salt=salt
    )
    errors.register(app)
    webhooks.mount(app, cfg)  # POST /webhooks/sendgrid, only when SendGrid sends our mail
    app.include_router(subscriber_pages.router)
    app.include_router(my_data_pages.router)
    app.include_router(api.router)
    app.include_router(health.router)
    app.include_router(archive.router)
    assets.install(app)
    app.add_middleware(
        SecurityHeaders,
        https=cfg.base_url.lower().startswith("https://"),
        docs_paths=assets.DOCS_PATHS,
    )
    return app
