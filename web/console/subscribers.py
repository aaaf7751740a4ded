"""``/admin/subscribers``: search and filter, a person's page, add (double opt-in), CSV
import with progress, export, and erase (owners, confirmed twice).

Viewers see everything here but change nothing: the buttons are not shown to them and
every POST checks the role (403) as well as the form's CSRF token.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated, Literal, NamedTuple

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from campaigns import readers
from campaigns.delivery.providers.factory import make_provider
from newsletter import db
from newsletter.clock import utcnow
from newsletter.errors import InvalidInput, PayloadTooLarge
from newsletter.settings import Settings
from subscribers.csv_io import ImportReport
from subscribers.directory import search_subscribers
from subscribers.export import export_subscribers
from subscribers.models import SubscriberStatus
from web.api.common import MAX_ID
from web.console.deps import PREFIX, CsrfDep, CurrentUser, EditorUser, OwnerUser, render
from web.console.import_jobs import ImportJob, import_jobs
from web.console.refusals import NOTHING, Refused
from web.deps import MailerDep, SessionDep, SettingsDep
from web.errors import refused_form

router = APIRouter(prefix="/subscribers")

PAGE_SIZE = 50
HERE = f"{PREFIX}/subscribers"


def _status(text: str) -> SubscriberStatus | None:
    if not text:
        return None
    try:
        return SubscriberStatus(text)
    except ValueError:
        raise InvalidInput(f"unknown status {text!r}", field="status") from None


@router.get("")
def subscriber_list(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    # Tabs and line breaks (an address pasted from a spreadsheet) are spaces; no other
    # control character is taken.
    q: Annotated[str, Query(max_length=320, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    topic: Annotated[str, Query(max_length=100)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    search = Search(" ".join(q.split()), status, topic, page)
    return _list_page(request, session, settings, search)


class Search(NamedTuple):
    q: str = ""
    status: str = ""
    topic: str = ""
    page: int = 1


def _list_page(
    request: Request,
    session: Session,
    settings: Settings,
    search: Search,
    refused: Refused = NOTHING,
) -> HTMLResponse:
    """The list; with ``refused``, drawn again at 400 around the refused add form."""
    found = search_subscribers(
        session,
        query=search.q,
        status=_status(search.status),
        topic=search.topic or None,
        topics=settings.topics,
        limit=PAGE_SIZE,
        offset=(search.page - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "console/subscribers.html.j2",
        http_status=400 if refused.form else 200,
        title="Subscribers",
        found=found,
        q=search.q,
        status=search.status,
        topic=search.topic,
        page=search.page,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        statuses=[s.value for s in SubscriberStatus],
        topics=settings.topics,
        max_upload=settings.import_max_bytes,
        erased=request.query_params.get("erased") == "1",
        today=utcnow().date(),  # a pause ends on paused_until (subscribers.audience)
        refused=refused,
    )


@router.post("/add")
def add_subscriber(
    request: Request,
    user: EditorUser,
    _csrf: CsrfDep,
    session: SessionDep,
    settings: SettingsDep,
    mailer: MailerDep,
    email: Annotated[str, Form(max_length=400)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        result = readers.add(
            session,
            settings=settings,
            mailer=mailer,
            email=email,
            name=name or None,
            actor=user.email,
        )
    except InvalidInput as err:
        refused = refused_form(session, "add", err, {"email": email, "name": name})
        return _list_page(request, session, settings, Search(), refused)
    assert result.subscriber is not None and result.subscriber.id is not None
    return RedirectResponse(f"{HERE}/{result.subscriber.id}?added={result.outcome}", 303)


@router.post("/import")
async def import_subscribers(
    request: Request,
    user: EditorUser,
    _csrf: CsrfDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    send_confirmations: Annotated[bool, Form()] = False,
) -> Response:
    if file.size is not None and file.size > settings.import_max_bytes:
        raise PayloadTooLarge(f"the file is over {settings.import_max_bytes:,} bytes")
    data = await file.read(settings.import_max_bytes + 1)
    if len(data) > settings.import_max_bytes:
        raise PayloadTooLarge(f"the file is over {settings.import_max_bytes:,} bytes")
    assert user.id is not None
    engine = request.app.state.engine

    def work(job: ImportJob) -> ImportReport:
        with ExitStack() as stack:
            session = stack.enter_context(db.session_scope(engine))
            mailer = stack.enter_context(make_provider(settings)) if send_confirmations else None
            return readers.import_rows(
                session,
                settings=settings,
                mailer=mailer,
                data=data,
                where=job.filename,
                actor=user.email,
                on_row=job.progress,
            )

    job = import_jobs(request).start(
        owner_id=user.id, filename=(file.filename or "upload.csv")[:200], work=work
    )
    return RedirectResponse(f"{HERE}/import/{job.id}", 303)


@router.get("/import/{job_id}")
def import_progress(request: Request, user: EditorUser, job_id: str) -> Response:
    assert user.id is not None
    job = import_jobs(request).get(job_id, owner_id=user.id)
    return render(request, "console/import.html.j2", title="CSV import", job=job)


@router.get("/export")
def export(
    user: EditorUser,
    session: SessionDep,
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The list with every consent history, as a download (editors and owners: it is
    everyone's personal data at once)."""
    text = export_subscribers(session, fmt=format, status=_status(status))
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    headers = {
        "Content-Disposition": f'attachment; filename="subscribers.{format}"',
        "Cache-Control": "no-store",
    }
    return Response(text, media_type=media, headers=headers)


@router.get("/{subscriber_id}")
def person(
    request: Request, user: CurrentUser, session: SessionDep, subscriber_id: int
) -> Response:
    found = readers.person(session, subscriber_id=_id(subscriber_id))
    return render(
        request,
        "console/person.html.j2",
        title=found.record.email,
        person=found,
        added=request.query_params.get("added", "")[:20],
        list_timezone=request.app.state.settings.timezone,  # issue 16
    )


@router.get("/{subscriber_id}/erase")
def erase_form(
    request: Request, user: OwnerUser, session: SessionDep, subscriber_id: int
) -> Response:
    found = readers.person(session, subscriber_id=_id(subscriber_id))
    return render(request, "console/erase.html.j2", title="Erase a subscriber", person=found)


@router.post("/{subscriber_id}/erase")
def erase(
    request: Request,
    user: OwnerUser,
    _csrf: CsrfDep,
    session: SessionDep,
    subscriber_id: int,
    confirm_email: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    found = readers.person(session, subscriber_id=_id(subscriber_id))
    if confirm_email.strip().lower() != found.record.email:
        return render(
            request,
            "console/erase.html.j2",
            http_status=400,
            title="Erase a subscriber",
            person=found,
            error="The address you typed does not match; nothing was erased.",
        )
    readers.erase(session, email=found.record.email, actor=user.email)
    return RedirectResponse(f"{HERE}?erased=1", 303)


def _id(value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise InvalidInput("no such subscriber id", field="subscriber_id")
    return value
