"""``create_app(settings)``: the FastAPI app of one configuration.

One app per configuration, nothing global: tests run many side by side, and the CLI
starts it as ``uvicorn.run("web.app:create_app", factory=True)`` (with uvicorn's own
proxy-header handling off: the app decides whom to believe, web/clients.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from campaigns.tracking.hits import Recorder
from newsletter import db
from newsletter.settings import Settings, load_settings
from subscribers.ratelimit import RateLimiter
from web import (
    api,
    archive,
    assets,
    clients,
    console,
    errors,
    health,
    metrics,
    my_data_pages,
    subscriber_pages,
    tracking,
    webhooks,
)
from web.console.limits import ConsoleBodyLimit
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
        lifespan=tracking.lifespan,  # writes the last clicks and opens on shutdown
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
    # Failed console sign-ins, per client IP and per email (web/console/auth.py).
    app.state.console_login_limiter = RateLimiter(
        engine,
        limit=cfg.console_login_limit,
        window=cfg.console_login_window_seconds,
        bucket="console-login",
        salt=salt,
    )
    app.state.tracking = Recorder(engine, cfg)  # issue 15: /r/ and /o/, written in bulk
    errors.register(app)
    webhooks.mount(app, cfg)  # POST /webhooks/sendgrid, only when SendGrid sends our mail
    app.include_router(subscriber_pages.router)
    app.include_router(my_data_pages.router)
    app.include_router(api.router)
    app.include_router(health.router)
    app.include_router(console.router)
    app.include_router(metrics.router)  # GET /metrics (issue 17 point 2)
    app.include_router(tracking.router)
    app.include_router(archive.router)
    assets.install(app)
    app.add_middleware(ConsoleBodyLimit, settings=cfg)  # before any form is read
    # Cached /r/ clicks answered before routing; inside SecurityHeaders, which runs last.
    app.add_middleware(
        tracking.FastClicks, room=app.state.tracking, trusted=app.state.trusted_proxies
    )
    app.add_middleware(
        SecurityHeaders,
        https=cfg.base_url.lower().startswith("https://"),
        docs_paths=assets.DOCS_PATHS,
    )
    return app
