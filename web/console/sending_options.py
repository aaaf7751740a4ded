"""The console's sending options of a campaign (issue 16): local-time waves, a subject
test and a resend to non-openers, on ``/admin/campaigns/{id}/sending`` (linked from the
editor).

The page shows the campaign as ``campaigns.actions.show`` gives it (its waves, its test
with each variant's human figures, its resend); each form posts to its own route, checked
for an editor's role and the session's CSRF token, calls one room function and redirects
back (303). A refusal of what was typed (InvalidInput) draws the page again with the
values and one line next to the form (web.console.refusals); any other refusal
(StateError, NotFound...) is answered by the one error map (web/errors.py) as a console
page with one line saying why.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from campaigns import actions, resends, subject_tests
from newsletter.errors import InvalidInput
from newsletter.headers import shown_alike
from newsletter.settings import Settings
from web.console.campaigns import status_note
from web.console.deps import PREFIX, CsrfDep, CurrentUser, EditorUser, render
from web.console.refusals import NOTHING, Refused
from web.deps import SessionDep, SettingsDep
from web.errors import refused_form

router = APIRouter(prefix="/campaigns/{campaign_id}/sending")

Line = Annotated[str, Form(max_length=300)]
DONE = {
    "local": "Scheduled at each reader's local time: the waves are below.",
    "test": "Subject test set: the sample gets it when the campaign is sent.",
    "test-removed": "Subject test removed: the campaign goes out with its own subject.",
    "winner": "Winner chosen: the rest of the audience gets its subject.",
    "resend": "Resend to non-openers requested.",
    "resend-cancelled": "Resend cancelled: nobody gets it.",
}


def _back(campaign_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/campaigns/{campaign_id}/sending?done={done}", 303)


@router.get("")
def sending_page(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    done: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """Waves, subject test and resend of one campaign, with their forms for editors."""
    return _page(request, session, settings, campaign_id, done=done)


def _page(
    request: Request,
    session: Session,
    settings: Settings,
    campaign_id: int,
    *,
    done: str = "",
    refused: Refused = NOTHING,
) -> HTMLResponse:
    """The page; with ``refused``, drawn again at 400 around a refused form's values."""
    detail = actions.show(session, settings=settings, campaign_id=campaign_id)
    return render(
        request,
        "console/campaign_sending.html.j2",
        http_status=400 if refused.form else 200,
        title=f"Campaign {campaign_id}: sending options",
        c=detail,
        when=status_note(detail, settings),
        done=DONE.get(done, ""),
        timezone=settings.timezone,
        refused=refused,
    )


@router.post("/local-time")
def schedule_local(
    campaign_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: EditorUser,
    _: CsrfDep,
    request: Request,
    local_time: Annotated[str, Form(max_length=10)] = "",  # empty: the room's line, inline
    late: Annotated[Literal["now", "next-day"], Form()] = "next-day",
    on: Annotated[date | None, Form()] = None,
) -> Response:
    """``local_time`` "HH:MM" from a time field; ``on`` an optional date in each zone."""
    try:
        actions.schedule_local(
            session,
            settings=settings,
            campaign_id=campaign_id,
            local_time=local_time,
            late=late,
            on=on,
            actor=user.email,
        )
    except InvalidInput as err:
        typed = {"local_time": local_time, "late": late, "on": on.isoformat() if on else ""}
        refused = refused_form(session, "local", err, typed)
        return _page(request, session, settings, campaign_id, refused=refused)
    return _back(campaign_id, "local")


@router.post("/subject-test")
def create_subject_test(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: EditorUser,
    _: CsrfDep,
    subject_a: Line,
    subject_b: Line,
    subject_c: Line = "",
    preheader_a: Line = "",
    preheader_b: Line = "",
    preheader_c: Line = "",
    sample: Line = "",  # FastAPI gives an empty field its default: none here
    wait_hours: Line = "",
    metric: Annotated[Literal["clicks", "opens"], Form()] = "clicks",
) -> Response:
    """Two or three subjects (an empty one is no variant) and the filled preheaders:
    none keeps the campaign's, one goes with every subject, or one per subject (the
    room's rule, which refuses any other count). Sample and wait arrive as text: an
    empty one is refused on the form, not taken as the default (FastAPI's int would)."""
    subjects, heads = (subject_a, subject_b, subject_c), (preheader_a, preheader_b, preheader_c)
    pairs = [
        (subject, head) for subject, head in zip(subjects, heads, strict=True) if subject.strip()
    ]
    try:
        percent = _whole(
            sample, "sample", "the sample is a whole number, 1 to 99 (% of the audience)"
        )
        hours = _whole(wait_hours, "wait", "the wait is a whole number of hours, 1 to 720")
        subject_tests.create_test(
            session,
            campaign_id=campaign_id,
            subjects=[subject for subject, _head in pairs],
            preheaders=[head for _subject, head in pairs if head.strip()],
            sample_percent=percent,
            wait=timedelta(hours=hours),
            metric=metric,
            actor=user.email,
        )
    except InvalidInput as err:
        typed = {
            **dict(zip(("subject_a", "subject_b", "subject_c"), subjects, strict=True)),
            **dict(zip(("preheader_a", "preheader_b", "preheader_c"), heads, strict=True)),
            "sample": sample,
            "wait_hours": wait_hours,
            "metric": metric,
        }
        refused = refused_form(session, "test", err, typed)
        if err.field == "subject":  # the input at fault, not all three (a review's find)
            refused = dataclasses.replace(refused, field=_subject_at_fault(subjects))
        return _page(request, session, settings, campaign_id, refused=refused)
    return _back(campaign_id, "test")


def _subject_at_fault(subjects: tuple[str, str, str]) -> str:
    """The subject input a refusal of the subjects is about: the first required one left
    empty, else the second of two an inbox shows alike, else the first filled one."""
    names = ("subject_a", "subject_b", "subject_c")
    for name, text in zip(names[:2], subjects[:2], strict=True):
        if not text.strip():
            return name
    seen: set[str] = set()
    for name, text in zip(names, subjects, strict=True):
        shown = shown_alike(text)
        if shown and shown in seen:
            return name
        seen.add(shown)
    return names[0]


def _whole(text: str, field: str, line: str) -> int:
    """A form's whole number, or InvalidInput(``line``) naming ``field``."""
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise InvalidInput(line, field=field) from None


@router.post("/subject-test/remove")
def remove_subject_test(
    campaign_id: int, session: SessionDep, user: EditorUser, _: CsrfDep
) -> Response:
    subject_tests.remove_test(session, campaign_id=campaign_id, actor=user.email)
    return _back(campaign_id, "test-removed")


@router.post("/subject-test/winner")
def choose_winner(
    campaign_id: int,
    session: SessionDep,
    user: EditorUser,
    _: CsrfDep,
    label: Annotated[Literal["A", "B", "C"], Form()],
) -> Response:
    subject_tests.choose_winner(session, campaign_id=campaign_id, label=label, actor=user.email)
    return _back(campaign_id, "winner")


@router.post("/resend/cancel")
def cancel_resend(campaign_id: int, session: SessionDep, user: EditorUser, _: CsrfDep) -> Response:
    resends.cancel_resend(session, campaign_id=campaign_id, actor=user.email)
    return _back(campaign_id, "resend-cancelled")


@router.post("/resend")
def request_resend(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: EditorUser,
    _: CsrfDep,
    subject: Line = "",  # empty: the room's line on the form, not FastAPI's page
    after_days: Line = "",  # as the subject test's numbers: empty is refused, not 3
) -> Response:
    try:
        days = _whole(after_days, "after", "the resend waits a whole number of days, 1 to 60")
        resends.request_resend(
            session,
            campaign_id=campaign_id,
            subject=subject,
            after=timedelta(days=days),
            actor=user.email,
        )
    except InvalidInput as err:
        typed = {"subject": subject, "after_days": after_days}
        refused = refused_form(session, "resend", err, typed)
        return _page(request, session, settings, campaign_id, refused=refused)
    return _back(campaign_id, "resend")
