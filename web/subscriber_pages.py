"""The subscriber pages: sign-up (with its anti-robot challenge), confirmation, one-click
unsubscribe (RFC 8058) and preferences.

Every answer is an HTML page that no cache keeps. A bad link, a provider or database
fault gets a page saying what went wrong (web/errors.py), never a traceback; the sign-up
answer never reveals whether an address is known, neither in what it says nor in how
long it takes (the confirmation is sent after the answer). What a posted form means is
the subscribers room's rule (subscribers/forms.py): routes here read the request, call it
and show the answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, JSONResponse

from newsletter.errors import NotFound
from subscribers import challenge, forms, signup
from web.bodies import FormDep, LinkPostDep
from web.deps import (
    ClientDep,
    MailerDep,
    PagesDep,
    PreferencesLinkDep,
    QueuedMailerDep,
    SessionDep,
    SettingsDep,
    UnsubscribeClaimDep,
    UnsubscribeLinkDep,
    signup_rate_limit,
)
from web.responses import NO_STORE, page

router = APIRouter(tags=["subscribers"], default_response_class=HTMLResponse)


@router.get("/subscribe")
def subscribe_form(pages: PagesDep) -> HTMLResponse:
    return page(pages.subscribe())


@router.get(
    "/subscribe/challenge",
    response_class=JSONResponse,
    summary="A fresh anti-robot challenge for the sign-up form (the ALTCHA protocol, v2)",
)
def subscribe_challenge(settings: SettingsDep) -> JSONResponse:
    """``{"parameters": {...}, "signature": "<hex>"}`` (subscribers/challenge.py); 404 when
    ``NEWSLETTER_SIGNUP_CHALLENGE=off``."""
    if not settings.signup_challenge:
        raise NotFound("the sign-up form has no anti-robot check")
    body: dict[str, Any] = challenge.new_challenge(settings)
    return JSONResponse(body, headers=NO_STORE)


# The rate limit comes first: a post over it is not even read (honeypot posts count too).
# The mailer only queues: the confirmation goes out after the answer (web/deps.py).
@router.post("/subscribe", dependencies=[Depends(signup_rate_limit)])
def subscribe(
    form: FormDep,
    session: SessionDep,
    settings: SettingsDep,
    mailer: QueuedMailerDep,
    client: ClientDep,
    pages: PagesDep,
) -> HTMLResponse:
    answer = forms.sign_up_from_form(
        session,
        settings=settings,
        mailer=mailer,
        form=form,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    if answer.errors:
        return page(pages.subscribe(values=answer.values, errors=answer.errors), 400)
    return page(pages.check_inbox())


@router.get("/confirm/{token}")
def confirm(
    token: str,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    client: ClientDep,
    pages: PagesDep,
) -> HTMLResponse:
    result = signup.confirm(
        session,
        settings=settings,
        mailer=mailer,
        token=token,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    already = result.outcome is signup.ConfirmOutcome.ALREADY_ACTIVE
    return page(pages.confirmed(result.subscriber, already=already))


@router.get("/unsubscribe/{token}")
def unsubscribe_form(
    token: str, subscriber_id: UnsubscribeLinkDep, session: SessionDep, pages: PagesDep
) -> HTMLResponse:
    """One button, nothing changed yet: link scanners follow GET links. Opened again
    after leaving, it says so instead of offering the button once more."""
    already = forms.already_unsubscribed(session, subscriber_id=subscriber_id)
    return page(pages.unsubscribe(token=token, already=already))


@router.post("/unsubscribe/{token}")
def unsubscribe(
    link: UnsubscribeClaimDep,
    posted: LinkPostDep,
    session: SessionDep,
    client: ClientDep,
    pages: PagesDep,
) -> HTMLResponse:
    """Form button and RFC 8058 one-click alike: 200, no redirect, effective at once."""
    forms.unsubscribe_by_link(
        session,
        subscriber_id=link.subscriber_id,
        posted=posted,
        ip=client.ip,
        user_agent=client.user_agent,
        campaign_id=link.campaign_id,
    )
    return page(pages.unsubscribed())


@router.get("/preferences/{token}")
def preferences_form(
    token: str, subscriber_id: PreferencesLinkDep, session: SessionDep, pages: PagesDep
) -> HTMLResponse:
    stored = forms.preferences_of(session, subscriber_id=subscriber_id)
    return page(pages.preferences(stored.subscriber, token=token, do_not_track=stored.do_not_track))


# The link is checked before the form is read: a bad link is told as such, whatever came.
@router.post("/preferences/{token}")
def preferences_save(
    token: str,
    subscriber_id: PreferencesLinkDep,
    form: FormDep,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
    pages: PagesDep,
) -> HTMLResponse:
    answer = forms.save_preferences(
        session,
        settings=settings,
        subscriber_id=subscriber_id,
        form=form,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    html = pages.preferences(
        answer.subscriber,
        token=token,
        errors=answer.errors,
        saved=answer.saved,
        chosen=answer.chosen,
        do_not_track=answer.do_not_track,
    )
    return page(html, 400 if answer.errors else 200)
