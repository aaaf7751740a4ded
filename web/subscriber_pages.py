"""The subscriber pages: sign-up, confirmation, one-click unsubscribe (RFC 8058) and
preferences.

Every answer is an HTML page that no cache keeps. A bad link, a provider or database
fault gets a page saying what went wrong (web/errors.py), never a traceback; the sign-up
answer never reveals whether an address is known. What a posted form means is the
subscribers room's rule (subscribers/forms.py): routes here read the request, call it
and show the answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from subscribers import forms, signup
from web.bodies import FormDep, LinkPostDep
from web.deps import (
    ClientDep,
    MailerDep,
    PagesDep,
    PreferencesLinkDep,
    SessionDep,
    SettingsDep,
    UnsubscribeLinkDep,
    signup_rate_limit,
    unsubscribe_link,
)
from web.responses import page

router = APIRouter(tags=["subscribers"], default_response_class=HTMLResponse)


@router.get("/subscribe")
def subscribe_form(pages: PagesDep) -> HTMLResponse:
    return page(pages.subscribe())


# The rate limit comes first: a post over it is not even read (honeypot posts count too).
@router.post("/subscribe", dependencies=[Depends(signup_rate_limit)])
def subscribe(
    form: FormDep,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
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


@router.get("/unsubscribe/{token}", dependencies=[Depends(unsubscribe_link)])
def unsubscribe_form(token: str, pages: PagesDep) -> HTMLResponse:
    """One button, nothing changed yet: link scanners follow GET links."""
    return page(pages.unsubscribe(token=token))


@router.post("/unsubscribe/{token}")
def unsubscribe(
    subscriber_id: UnsubscribeLinkDep,
    posted: LinkPostDep,
    session: SessionDep,
    client: ClientDep,
    pages: PagesDep,
) -> HTMLResponse:
    """Form button and RFC 8058 one-click alike: 200, no redirect, effective at once."""
    forms.unsubscribe_by_link(
        session,
        subscriber_id=subscriber_id,
        posted=posted,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    return page(pages.unsubscribed())


@router.get("/preferences/{token}")
def preferences_form(
    token: str, subscriber_id: PreferencesLinkDep, session: SessionDep, pages: PagesDep
) -> HTMLResponse:
    subscriber = forms.active_subscriber(session, subscriber_id=subscriber_id)
    return page(pages.preferences(subscriber, token=token))


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
    )
    return page(html, 400 if answer.errors else 200)
