"""The door for subscribers and the provider: the FastAPI app.

Routes parse the request, call a room and format the answer. ``create_app(settings)``
builds one app per configuration, so tests run many side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlmodel import Session

from campaigns import actions, weekly_plan
from campaigns.models import CampaignCreate, CampaignStatus
from newsletter import api_tokens, clock, db, job_runs
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

    _mount_webhooks(app)
    _mount_subscribers(app)
    _mount_api(app)
    _mount_health(app)
    return app


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with db.session_scope(request.app.state.engine) as session:
        yield session


# scope="function": the session commits before the response is sent, so a client's next
# request always sees its own change (the default scope would commit after sending).
SessionDep = Depends(get_session, scope="function")
SettingsDep = Depends(get_settings)


# ---------------------------------------------------------------- webhooks (tracking)


def _mount_webhooks(app: FastAPI) -> None:
    """POST /webhooks/sendgrid: signed event batches from SendGrid.

    Without a public key, events cannot be trusted: production refuses to start unless
    unsigned webhooks are allowed explicitly.
    """
    from starlette.concurrency import run_in_threadpool

    from campaigns.delivery.providers import sendgrid_events as webhook_sendgrid
    from campaigns.tracking import effects as tracking
    from newsletter.errors import ConfigError, TokenError

    cfg: Settings = app.state.settings
    verifier = None
    if cfg.sendgrid_webhook_public_key:
        verifier = webhook_sendgrid.SignatureVerifier(
            cfg.sendgrid_webhook_public_key,
            tolerance_seconds=cfg.sendgrid_webhook_tolerance_seconds,
        )
    elif cfg.environment == "production" and not cfg.allow_unsigned_webhooks:
        raise ConfigError(
            "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: in production the SendGrid "
            "event webhook must be signed (or set NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true "
            "to accept unsigned events knowingly)"
        )

    def _apply(body: bytes) -> dict[str, int]:
        events = webhook_sendgrid.parse_batch(body)
        with db.session_scope(app.state.engine) as session:
            return tracking.apply_events(session, settings=cfg, events=events).to_dict()

    @app.post("/webhooks/sendgrid")
    async def sendgrid_events(request: Request) -> JSONResponse:
        try:  # the signature covers the raw bytes
            body = await _read_body(request, limit=cfg.webhook_max_bytes)
        except _FormTooLarge:
            return JSONResponse(
                {"detail": f"event batch larger than {cfg.webhook_max_bytes} bytes"},
                status_code=413,
            )
        if verifier is not None:
            try:
                verifier.check(
                    payload=body,
                    signature=request.headers.get(webhook_sendgrid.SIGNATURE_HEADER),
                    timestamp=request.headers.get(webhook_sendgrid.TIMESTAMP_HEADER),
                )
            except TokenError as err:
                return JSONResponse({"detail": str(err)}, status_code=403)
        return JSONResponse(await run_in_threadpool(_apply, body))


# ---------------------------------------------------------------- subscribers


class _FormTooLarge(Exception):
    pass


class _BadForm(Exception):
    pass


async def _read_body(request: Request, *, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _FormTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _FormTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_form(request: Request, *, limit: int) -> dict[str, list[str]]:
    """Urlencoded or multipart fields (no files), size-capped; other bodies give {}."""
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.formparsers import MultiPartException

    body = await _read_body(request, limit=limit)
    sent = False

    async def replay() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=50)
    except (MultiPartException, StarletteHTTPException) as err:
        raise _BadForm(getattr(err, "detail", None) or getattr(err, "message", str(err))) from err
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise _BadForm("files cannot be uploaded here")
        fields.setdefault(key, []).append(value)
    return fields


def _mount_subscribers(app: FastAPI) -> None:
    """Sign-up, confirmation, one-click unsubscribe (RFC 8058) and preferences pages.

    Every answer is an HTML page; a bad link or bad input gets a page that says what went
    wrong, never a traceback. The sign-up answer never reveals whether an address is known.
    """
    from collections.abc import Sequence
    from contextlib import suppress
    from functools import cache

    from fastapi.responses import HTMLResponse
    from starlette.concurrency import run_in_threadpool

    from campaigns.delivery.providers.factory import make_provider
    from newsletter.errors import (
        ConsentError,
        InvalidInput,
        NotFound,
        ProviderError,
        StateError,
        TokenError,
    )
    from subscribers import lifecycle, preferences, signup
    from subscribers.models import ConsentSource, Subscriber, SubscriberStatus
    from subscribers.pages import Pages
    from subscribers.ratelimit import RateLimiter
    from subscribers.tokens import Purpose, Tokens

    cfg: Settings = app.state.settings
    app.state.signup_limiter = RateLimiter(
        limit=cfg.signup_rate_limit, window=cfg.signup_rate_window_seconds
    )
    app.state.make_mailer = make_provider
    subscribe_fields = {"email", "name", "consent", "website"}
    preferences_fields = {"topics", "topics_consent", "pause_weeks"}

    @cache
    def parts() -> tuple[Pages, Tokens]:  # built on first use: needs the secret key
        return Pages(cfg), Tokens(cfg)

    def page(html: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
        base = {"Cache-Control": "no-store"}
        return HTMLResponse(html, status_code=status, headers={**base, **(headers or {})})

    def who(request: Request) -> tuple[str | None, str | None]:
        ip = request.client.host if request.client else None
        return ip, request.headers.get("user-agent")

    def link_error(err: NewsletterError, purpose: Purpose) -> HTMLResponse:
        return page(parts()[0].link_error(err, purpose=purpose), 400)

    def too_large() -> HTMLResponse:
        return page(
            parts()[0].message(
                heading="That was too much data",
                message="The form you sent is larger than this page accepts.",
                link={"url": "/subscribe", "text": "Back to the form"},
            ),
            413,
        )

    @app.get("/subscribe", response_class=HTMLResponse)
    def subscribe_form() -> HTMLResponse:
        return page(parts()[0].subscribe())

    @app.post("/subscribe", response_class=HTMLResponse)
    async def subscribe(request: Request) -> HTMLResponse:
        pages = parts()[0]
        ip, user_agent = who(request)
        wait = request.app.state.signup_limiter.hit(ip or "unknown")
        if wait is not None:
            minutes = max(1, round(wait / 60))
            return page(
                pages.message(
                    heading="Too many sign-ups",
                    message="We received too many sign-ups from your network in a short time.",
                    hint=f"Please try again in about {minutes} minute{'s' if minutes > 1 else ''}.",
                ),
                429,
                {"Retry-After": str(max(1, int(wait)))},
            )
        try:
            fields = await _read_form(request, limit=cfg.form_max_bytes)
        except _FormTooLarge:
            return too_large()
        except _BadForm as err:
            return page(pages.subscribe(errors=[f"The form could not be read: {err}."]), 400)
        values = {k: v[0] for k, v in fields.items() if k in subscribe_fields}
        unknown = sorted(set(fields) - subscribe_fields)
        if unknown:
            names = ", ".join(repr(n[:40]) for n in unknown[:5])
            return page(
                pages.subscribe(
                    values=values,
                    errors=[
                        f"The form contained unexpected field(s) {names}; please use this form."
                    ],
                ),
                400,
            )
        if values.get("website"):  # the honeypot: answer like a success, do nothing
            return page(pages.check_inbox())
        if values.get("consent") != "yes":
            return page(
                pages.subscribe(
                    values=values,
                    errors=["Please tick the box to confirm that you want the newsletter."],
                ),
                400,
            )

        def run() -> None:
            with (
                db.session_scope(app.state.engine) as session,
                request.app.state.make_mailer(cfg) as mailer,
            ):
                signup.sign_up(
                    session,
                    settings=cfg,
                    mailer=mailer,
                    email=values.get("email", ""),
                    name=values.get("name"),
                    source=ConsentSource.FORM,
                    ip=ip,
                    user_agent=user_agent,
                )

        try:
            await run_in_threadpool(run)
        except InvalidInput as err:
            return page(pages.subscribe(values=values, errors=[_sentence(err.reason)]), 400)
        except ProviderError:
            return page(
                pages.message(
                    heading="Please try again in a few minutes",
                    message="We could not send the confirmation email just now.",
                    link={"url": "/subscribe", "text": "Back to the form"},
                ),
                503,
            )
        return page(pages.check_inbox())

    @app.get("/confirm/{token}", response_class=HTMLResponse)
    async def confirm(token: str, request: Request) -> HTMLResponse:
        pages = parts()[0]
        ip, user_agent = who(request)

        def run() -> signup.ConfirmResult:
            with (
                db.session_scope(app.state.engine) as session,
                request.app.state.make_mailer(cfg) as mailer,
            ):
                return signup.confirm(
                    session, settings=cfg, mailer=mailer, token=token, ip=ip, user_agent=user_agent
                )

        try:
            result = await run_in_threadpool(run)
        except TokenError as err:
            return link_error(err, Purpose.CONFIRM)
        except NotFound as err:
            return page(
                pages.message(
                    heading="This sign-up has expired",
                    message=_sentence(str(err)),
                    link={"url": "/subscribe", "text": "Sign up again"},
                ),
                400,
            )
        except StateError as err:
            return page(
                pages.message(
                    heading="This link is no longer valid",
                    message=_sentence(str(err)),
                    link={"url": "/subscribe", "text": "Sign up again"},
                ),
                409,
            )
        already = result.outcome is signup.ConfirmOutcome.ALREADY_ACTIVE
        return page(pages.confirmed(result.subscriber, already=already))

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        pages, tokens = parts()
        try:
            tokens.verify(Purpose.UNSUBSCRIBE, token)
        except TokenError as err:
            return link_error(err, Purpose.UNSUBSCRIBE)
        return page(pages.unsubscribe(token=token))

    @app.post("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        """Form button and RFC 8058 one-click alike: 200, no redirect, effective at once."""
        pages, tokens = parts()
        try:
            subscriber_id = tokens.verify(Purpose.UNSUBSCRIBE, token)
        except TokenError as err:
            return link_error(err, Purpose.UNSUBSCRIBE)
        try:  # the token is the authority; the body only tells us how it was sent
            body = await _read_body(request, limit=cfg.form_max_bytes)
        except _FormTooLarge:
            body = b""
        ip, user_agent = who(request)

        def run() -> None:
            with db.session_scope(app.state.engine) as session:
                lifecycle.unsubscribe(
                    session,
                    subscriber_id=subscriber_id,
                    source=ConsentSource.FORM,
                    reason="unsubscribed by link",
                    ip=ip,
                    user_agent=user_agent,
                    detail={"one_click": b"One-Click" in body},
                )

        # NotFound: erased or expired, so nothing is left to mail, which is what was asked.
        with suppress(NotFound):
            await run_in_threadpool(run)
        return page(pages.unsubscribed())

    def preferences_page(
        token: str,
        *,
        status: int = 200,
        errors: Sequence[str] = (),
        saved: bool = False,
        chosen: Sequence[str] | None = None,
    ) -> HTMLResponse:
        pages, tokens = parts()
        try:
            subscriber_id = tokens.verify(Purpose.PREFERENCES, token)
        except TokenError as err:
            return link_error(err, Purpose.PREFERENCES)
        with db.session_scope(app.state.engine) as session:
            subscriber = session.get(Subscriber, subscriber_id)
            if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE:
                return page(
                    pages.message(
                        heading="You are not subscribed",
                        message="There are no preferences to change for this address.",
                        link={"url": "/subscribe", "text": "Subscribe"},
                    ),
                    409,
                )
            html = pages.preferences(
                subscriber,
                token=token,
                today=clock.utcnow().date(),
                errors=errors,
                saved=saved,
                chosen=chosen,
            )
            return page(html, status)

    @app.get("/preferences/{token}", response_class=HTMLResponse)
    def preferences_form(token: str) -> HTMLResponse:
        return preferences_page(token)

    @app.post("/preferences/{token}", response_class=HTMLResponse)
    async def preferences_save(token: str, request: Request) -> HTMLResponse:
        _pages, tokens = parts()
        try:
            subscriber_id = tokens.verify(Purpose.PREFERENCES, token)
        except TokenError as err:
            return link_error(err, Purpose.PREFERENCES)
        try:
            fields = await _read_form(request, limit=cfg.form_max_bytes)
        except _FormTooLarge:
            return too_large()
        except _BadForm as err:
            return await run_in_threadpool(
                preferences_page, token, errors=[f"The form could not be read: {err}."], status=400
            )
        chosen = fields.get("topics", [])
        unknown = sorted(set(fields) - preferences_fields)
        if unknown:
            names = ", ".join(repr(n[:40]) for n in unknown[:5])
            return await run_in_threadpool(
                preferences_page,
                token,
                chosen=chosen,
                status=400,
                errors=[f"The form contained unexpected field(s) {names}; please use this form."],
            )
        ip, user_agent = who(request)

        def run() -> HTMLResponse:
            with db.session_scope(app.state.engine) as session:
                preferences.update_preferences(
                    session,
                    settings=cfg,
                    subscriber_id=subscriber_id,
                    topics=chosen,
                    topics_consent=fields.get("topics_consent", [""])[0] == "yes",
                    pause_weeks=preferences.parse_pause_weeks(
                        fields.get("pause_weeks", [""])[0] or None, settings=cfg
                    ),
                    ip=ip,
                    user_agent=user_agent,
                )
            return preferences_page(token, saved=True)

        try:
            return await run_in_threadpool(run)
        except (InvalidInput, ConsentError) as err:
            reason = err.reason if isinstance(err, InvalidInput) else str(err)
            return await run_in_threadpool(
                preferences_page, token, chosen=chosen, status=400, errors=[_sentence(reason)]
            )
        except (StateError, NotFound):
            return await run_in_threadpool(preferences_page, token)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# ---------------------------------------------------------------- campaigns API and health


class ScheduleRequest(BaseModel):
    at: str = Field(
        description="ISO 8601; without an offset it is the newsletter's local time",
        examples=["2026-12-01T09:00", "2026-12-01T14:00:00Z"],
    )


class ChangeRequest(BaseModel):
    reason: str = Field(default="", max_length=500)


def _mount_api(app: FastAPI) -> None:
    """The campaign API under /api/: bearer tokens from ``newsletter api-tokens create``.

    Illegal state changes answer 409, unknown ids 404, bad input 422, always as
    ``{"detail": "<message>"}``; a missing, wrong or revoked token answers 401.
    """
    from contextlib import contextmanager as _contextmanager

    from newsletter.errors import InvalidInput, NotFound, StateError, TokenError
    from newsletter.mail import personalise

    bearer = HTTPBearer(
        auto_error=False, description="A token from `newsletter api-tokens create NAME`."
    )
    unauthorized = {"WWW-Authenticate": "Bearer"}

    def token_actor(
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),
        session: Session = SessionDep,
    ) -> str:
        if credentials is None:
            raise HTTPException(401, "missing bearer token", headers=unauthorized)
        try:
            token = api_tokens.verify(session, token=credentials.credentials)
        except TokenError as err:
            raise HTTPException(401, str(err), headers=unauthorized) from err
        session.commit()  # last_used_at, even when the request then fails
        return f"api:{token.name}"

    @_contextmanager
    def answers() -> Iterator[None]:
        try:
            yield
        except StateError as err:
            raise HTTPException(409, str(err)) from err
        except NotFound as err:
            raise HTTPException(404, str(err)) from err
        except InvalidInput as err:
            raise HTTPException(422, str(err)) from err

    router = APIRouter(prefix="/api", tags=["campaigns"])
    app.openapi_tags = [
        *(app.openapi_tags or []),
        {
            "name": "campaigns",
            "description": "Queue, pause, resume and cancel campaigns, as `newsletter "
            "campaigns` does. Send `Authorization: Bearer <token>` with a token from "
            "`newsletter api-tokens create NAME`. Times are UTC (`scheduled_at`) with the "
            "newsletter's local time beside them (`scheduled_at_local`).",
        },
    ]
    errors: dict[int | str, dict[str, object]] = {
        401: {"description": "missing, wrong or revoked token"},
        404: {"description": "no such campaign"},
    }

    @router.get(
        "/campaigns",
        response_model=list[actions.CampaignView],
        responses=errors,
        summary="List campaigns, newest first (optionally of one status)",
    )
    def list_campaigns(
        status: CampaignStatus | None = None,
        limit: int = 100,
        actor: str = Depends(token_actor),
        session: Session = SessionDep,
        cfg: Settings = SettingsDep,
    ) -> list[actions.CampaignView]:
        return actions.list_campaigns(
            session, settings=cfg, status=status, limit=max(1, min(limit, 1000))
        )

    @router.post(
        "/campaigns",
        response_model=actions.CampaignView,
        status_code=201,
        responses=errors,
        summary="Create a draft campaign from snippets, in the order given",
    )
    def create_campaign(
        body: CampaignCreate,
        actor: str = Depends(token_actor),
        session: Session = SessionDep,
        cfg: Settings = SettingsDep,
    ) -> actions.CampaignView:
        with answers():
            created = actions.create_from_snippets(
                session,
                settings=cfg,
                snippet_ids=body.snippet_ids,
                subject=body.subject,
                preheader=body.preheader,
                actor=actor,
            )
        return created

    @router.get(
        "/campaigns/{campaign_id}",
        response_model=actions.CampaignDetail,
        responses=errors,
        summary="A campaign with its delivery progress (queued/sent/skipped/failed) and log",
    )
    def show_campaign(
        campaign_id: int,
        actor: str = Depends(token_actor),
        session: Session = SessionDep,
        cfg: Settings = SettingsDep,
    ) -> actions.CampaignDetail:
        with answers():
            return actions.show(session, settings=cfg, campaign_id=campaign_id)

    @router.post(
        "/campaigns/{campaign_id}/schedule",
        response_model=actions.CampaignView,
        responses={**errors, 409: {"description": "not allowed in the campaign's state"}},
        summary="Schedule a draft or paused campaign, or move a scheduled one",
    )
    def schedule_campaign(
        campaign_id: int,
        body: ScheduleRequest,
        actor: str = Depends(token_actor),
        session: Session = SessionDep,
        cfg: Settings = SettingsDep,
    ) -> actions.CampaignView:
        with answers():
            scheduled = actions.schedule(
                session,
                settings=cfg,
                campaign_id=campaign_id,
                at_utc=weekly_plan.parse_when(body.at, cfg),
                actor=actor,
            )
        return scheduled

    def change(name: str, operation: Any, summary: str) -> None:
        @router.post(
            f"/campaigns/{{campaign_id}}/{name}",
            response_model=actions.CampaignView,
            responses={**errors, 409: {"description": "not allowed in the campaign's state"}},
            summary=summary,
            name=f"{name}_campaign",
        )
        def endpoint(
            campaign_id: int,
            body: ChangeRequest | None = None,
            actor: str = Depends(token_actor),
            session: Session = SessionDep,
            cfg: Settings = SettingsDep,
        ) -> actions.CampaignView:
            with answers():
                changed = operation(
                    session,
                    settings=cfg,
                    campaign_id=campaign_id,
                    actor=actor,
                    reason=body.reason if body else "",
                )
                return changed

    change("pause", actions.pause, "Pause a scheduled or sending campaign")
    change("resume", actions.resume, "Resume a paused campaign")
    change("cancel", actions.cancel, "Cancel a campaign for good")

    @router.get(
        "/campaigns/{campaign_id}/preview",
        response_class=HTMLResponse,
        responses=errors,
        summary="The rendered email as HTML, with sample reader values",
    )
    def preview_campaign(
        campaign_id: int,
        actor: str = Depends(token_actor),
        session: Session = SessionDep,
        cfg: Settings = SettingsDep,
    ) -> HTMLResponse:
        from campaigns.content.preview import sample_values
        from campaigns.content.rendering import ensure_rendered

        with answers():
            campaign = actions.get_campaign(session, campaign_id=campaign_id)
            rendered = ensure_rendered(session, settings=cfg, campaign=campaign)
        return HTMLResponse(personalise(rendered.html, sample_values(cfg)))

    @router.get(
        "/campaigns/{campaign_id}/report",
        responses=errors,
        summary="Delivery and engagement figures of a campaign",
    )
    def campaign_report(
        campaign_id: int,
        actor: str = Depends(token_actor),
        session: Session = SessionDep,
    ) -> dict[str, Any]:
        """The figures of `newsletter campaigns report`: counts, rates and warnings."""
        from campaigns.reports.figures import campaign_report as build_report

        with answers():
            return build_report(session, campaign_id=campaign_id).to_dict()

    app.include_router(router)


def _mount_health(app: FastAPI) -> None:
    """``GET /healthz``: the database, the active scheduler instance, last and next runs."""
    from sqlalchemy.exc import SQLAlchemyError

    @app.get("/healthz", response_model=job_runs.SchedulerStatus, tags=["ops"])
    def healthz(request: Request) -> Any:
        try:
            return job_runs.status(request.app.state.engine)
        except SQLAlchemyError:
            down = job_runs.SchedulerStatus(
                database_ok=False, active_instance=None, lease_expires_at=None, jobs=[]
            )
            return JSONResponse(down.model_dump(mode="json"), status_code=503)
