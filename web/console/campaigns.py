"""The console's campaigns: the list, the campaign editor, its previews and its actions.

``GET /admin/campaigns`` lists them; ``GET /admin/campaigns/{id}`` is the editor. Every
change is a plain HTML form posting to its own route (works without JavaScript), checked
for an editor's role and the session's CSRF token, and answered with a redirect back to
the editor (303, so a reload never posts twice). The previews are the real rendered
email, served by :func:`preview` into ``<iframe sandbox>`` (no script, no form, no
same-origin access runs inside), with the text part beside them.
"""

from __future__ import annotations

from email.utils import getaddresses
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlmodel import Session

from campaigns import actions, editing, editor_view, send_check, weekly_plan
from campaigns.delivery import proofs
from campaigns.models import CampaignStatus
from campaigns.views import CampaignView
from newsletter.accounts import ConsoleUser, Role
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from web.console.deps import PREFIX, CsrfDep, CurrentUser, render, require_role
from web.console.refusals import NOTHING, Refused
from web.deps import SessionDep, SettingsDep
from web.errors import refused_form
from web.security import BASE_POLICY, policy

router = APIRouter(prefix="/campaigns")

Editor = Annotated[ConsoleUser, Depends(require_role(Role.editor))]
Reader = Annotated[Literal["named", "unnamed"], Query()]
# The editor frames its own previews; nothing else may frame anything.
EDITOR_POLICY = policy({**BASE_POLICY, "frame-src": "'self'"})
# A preview is an email: inline styles (MJML writes them), images only from us or data:
# (no remote fetch from the console), no script at all, framed only by our own pages.
PREVIEW_POLICY = (
    policy(
        {
            "default-src": "'none'",
            "style-src": "'unsafe-inline'",
            "img-src": "'self' data:",
            "frame-ancestors": "'self'",
            "base-uri": "'none'",
            "form-action": "'none'",
        }
    )
    + "; sandbox"
)
PREVIEW_HEADERS = {"Content-Security-Policy": PREVIEW_POLICY, "X-Frame-Options": "SAMEORIGIN"}


def _editor_url(campaign_id: int, done: str = "") -> str:
    return f"{PREFIX}/campaigns/{campaign_id}" + (f"?done={done}" if done else "")


def _back(campaign_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(_editor_url(campaign_id, done), status_code=303)


def status_note(c: CampaignView, settings: Settings) -> str:
    """What the time beside a campaign's status means, in words: "scheduled for", but
    "was scheduled for" once paused or cancelled, "sending since", "sent on"."""
    status, scheduled = c.status, c.scheduled_at_local
    if status is CampaignStatus.SENT:
        finished = weekly_plan.format_local(c.finished_at or c.started_at, settings)
        return f"sent on {finished}" if finished else ""
    if status is CampaignStatus.SENDING:
        started = weekly_plan.format_local(c.started_at, settings)
        return f"since {started}" if started else ""
    if not scheduled:
        return ""
    if status is CampaignStatus.SCHEDULED:
        return f"for {scheduled}"
    return f"was scheduled for {scheduled}"


def typed_addresses(text: str) -> list[str]:
    """The addresses of a test-send field: ``a@example.com b@example.com`` (commas,
    semicolons, spaces or lines between them) or, with a display name,
    ``Editor <ed@example.com>, "Ed, Jr" <jr@example.com>`` (RFC 5322 address lists, read
    by the standard library's parser: a quoted name may hold a comma). Each is then
    checked by proofs.clean_addresses (email-validator)."""
    if "<" not in (text or ""):
        return proofs.split_addresses(text)
    entries = getaddresses([text.replace(";", ",").replace("\n", ",")])
    return [address for _name, address in entries if address]


@router.get("")
def list_page(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> HTMLResponse:
    rows = editor_view.campaign_rows(session, settings=settings)
    return render(request, "console/campaigns.html.j2", title="Campaigns", rows=rows)


@router.post("/assemble")
def assemble(session: SessionDep, settings: SettingsDep, user: Editor, _: CsrfDep) -> Response:
    """This week's issue: built now, or the one already built."""
    issue = editing.assemble_this_week(session, settings=settings, actor=user.email)
    assert issue.campaign.id is not None
    return _back(issue.campaign.id, "assembled" if issue.created else "existing")


@router.get("/{campaign_id}")
def editor_page(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    done: Annotated[str, Query(max_length=40)] = "",
    check: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    return _editor(request, session, settings, campaign_id, done=done, check=check)


def _editor(
    request: Request,
    session: Session,
    settings: Settings,
    campaign_id: int,
    *,
    done: str = "",
    check: str = "",
    refused: Refused = NOTHING,
) -> HTMLResponse:
    """The editor; with ``refused``, drawn again at 400 around a refused form's values."""
    state = editor_view.editor_state(
        session, settings=settings, campaign_id=campaign_id, check_links=check == "links"
    )
    if refused.form == "headlines":  # the hints count what was typed, not what is saved
        typed = (str(refused.typed("headlines", name, "")) for name in ("subject", "preheader"))
        state.hints = editing.length_hints(*typed)
    return render(
        request,
        "console/campaign_editor.html.j2",
        http_status=400 if refused.form else 200,
        http_headers={"Content-Security-Policy": EDITOR_POLICY},
        title=f"Campaign {campaign_id}",
        state=state,
        c=state.view,
        done=DONE.get(done, ""),
        when=status_note(state.view, settings),
        default_when=weekly_plan.format_local(state.view.scheduled_at, settings) or "",
        timezone=settings.timezone,
        refused=refused,
    )


DONE = {
    "assembled": "This week's issue is assembled.",
    "existing": "This week's issue was already assembled: here it is.",
    "headlines": "Subject and preheader saved.",
    "snippets": "Snippets changed.",
    "reassembled": "Snippets picked again.",
    "test": "Test sent.",
    "scheduled": "Scheduled.",
    "send": "Handed to the scheduler: it sends at its next run.",
    "paused": "Paused.",
    "resumed": "Resumed.",
    "cancelled": "Cancelled.",
    "duplicated": "This is the copy: a new draft.",
}


@router.get("/{campaign_id}/preview")
def preview(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    reader: Reader = "named",
) -> HTMLResponse:
    """The rendered email for the editor's sandboxed frames."""
    html = editor_view.preview_html(
        session, settings=settings, campaign_id=campaign_id, named=reader == "named"
    )
    return HTMLResponse(html, headers=PREVIEW_HEADERS)


@router.get("/{campaign_id}/preview.txt")
def preview_text(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    reader: Reader = "named",
) -> PlainTextResponse:
    text = editor_view.preview_text(
        session, settings=settings, campaign_id=campaign_id, named=reader == "named"
    )
    return PlainTextResponse(text, headers=PREVIEW_HEADERS)


@router.post("/{campaign_id}/headlines")
def headlines(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    request: Request,
    subject: Annotated[str, Form(max_length=1000)] = "",
    preheader: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        editing.edit_campaign(
            session,
            settings=settings,
            campaign_id=campaign_id,
            actor=user.email,
            subject=subject,
            preheader=preheader,
        )
    except InvalidInput as err:
        typed = {"subject": subject, "preheader": preheader}
        refused = refused_form(session, "headlines", err, typed)
        return _editor(request, session, settings, campaign_id, refused=refused)
    return _back(campaign_id, "headlines")


@router.post("/{campaign_id}/snippets")
def change_snippets(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    snippet_id: Annotated[int, Form(ge=1)],
    change: Annotated[Literal["add", "remove", "up", "down"], Form()],
) -> Response:
    """Add, remove or move one snippet (the editor's buttons, never drag only)."""
    common = {"settings": settings, "campaign_id": campaign_id, "snippet_id": snippet_id}
    if change == "add":
        editing.add_snippet(session, actor=user.email, **common)
    elif change == "remove":
        editing.remove_snippet(session, actor=user.email, **common)
    else:
        offset = -1 if change == "up" else 1
        editing.move_snippet(session, actor=user.email, offset=offset, **common)
    return RedirectResponse(
        _editor_url(campaign_id, "snippets") + f"#snippet-{snippet_id}", status_code=303
    )


@router.post("/{campaign_id}/reassemble")
def reassemble(
    campaign_id: int, session: SessionDep, settings: SettingsDep, user: Editor, _: CsrfDep
) -> Response:
    editing.reassemble(session, settings=settings, campaign_id=campaign_id, actor=user.email)
    return _back(campaign_id, "reassembled")


@router.post("/{campaign_id}/test-send")
def test_send(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    request: Request,
    to: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        proofs.send_test_copies(
            session,
            settings=settings,
            campaign_id=campaign_id,
            addresses=typed_addresses(to),
            actor=user.email,
        )
    except InvalidInput as err:
        refused = refused_form(session, "test-send", err, {"to": to})
        return _editor(request, session, settings, campaign_id, refused=refused)
    return _back(campaign_id, "test")


@router.post("/{campaign_id}/schedule")
def schedule(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    request: Request,
    at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """``at`` from a datetime-local field: the newsletter's local time."""
    try:
        actions.schedule(
            session,
            settings=settings,
            campaign_id=campaign_id,
            at_utc=weekly_plan.parse_when(at, settings),
            actor=user.email,
        )
    except InvalidInput as err:
        refused = refused_form(session, "schedule", err, {"at": at})
        return _editor(request, session, settings, campaign_id, refused=refused)
    return _back(campaign_id, "scheduled")


def _confirm_send(
    request: Request, session: Session, settings: Settings, campaign_id: int
) -> HTMLResponse:
    """The step before Send now (campaigns.send_check): how many readers it goes to and
    any earlier campaign with the same content; only its form (``confirm=yes``) sends."""
    check = send_check.send_check(session, settings=settings, campaign_id=campaign_id)
    return render(
        request,
        "console/campaign_send_confirm.html.j2",
        title=f"Send campaign {campaign_id} now?",
        c=check.campaign,
        audience=check.readers,
        can_send=check.can_send,
        errors=check.errors,
        warnings=check.warnings,
        test=check.subject_test,
        earlier=[
            (e.campaign, f"the same {e.what}", status_note(e.campaign, settings))
            for e in check.earlier
        ],
    )


@router.get("/{campaign_id}/send")
def send_page(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
) -> HTMLResponse:
    """Send now's confirmation, for a link or a reload."""
    return _confirm_send(request, session, settings, campaign_id)


ACTIONS = {
    "send": (actions.send_now, "send"),
    "pause": (actions.pause, "paused"),
    "resume": (actions.resume, "resumed"),
    "cancel": (actions.cancel, "cancelled"),
}


@router.post("/{campaign_id}/{verb}")
def change_state(
    campaign_id: int,
    verb: Literal["send", "pause", "resume", "cancel", "duplicate"],
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    request: Request,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Send now, pause, resume, cancel or duplicate: one button each. Send now without
    ``confirm=yes`` only shows its confirmation: one click never mails the list."""
    if verb == "send" and confirm != "yes":
        return _confirm_send(request, session, settings, campaign_id)
    if verb == "duplicate":
        copy = editing.duplicate(
            session, settings=settings, campaign_id=campaign_id, actor=user.email
        )
        return _back(copy.id, "duplicated")
    action, done = ACTIONS[verb]
    action(session, settings=settings, campaign_id=campaign_id, actor=user.email)
    if verb == "send":
        return RedirectResponse(f"{PREFIX}/campaigns/{campaign_id}/progress", status_code=303)
    return _back(campaign_id, done)
