"""The console's snippet library: the list with search and filters, the create and edit
form with a rendered preview of the Markdown summary, retire and unretire, and imports
(a feed URL, or Markdown files uploaded) with the report of bad entries.

Forms post to their own routes, checked for an editor's role and the CSRF token. The
form's "Preview" button shows the rendered Markdown without saving (no JavaScript needed).
Imports run in the console's job registry (web/console/import_jobs.py, shared with the
subscribers' CSV import): a page with entries read, imported and rejected, then the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from campaigns.content import snippet_library as library
from campaigns.content.import_report import ImportReport
from newsletter import db
from newsletter.accounts import ConsoleUser, Role
from newsletter.errors import InvalidInput
from web.console.deps import PREFIX, CsrfDep, CurrentUser, render, require_role
from web.console.import_jobs import ImportJob, import_jobs
from web.console.refusals import NOTHING, Refused
from web.deps import SessionDep, SettingsDep
from web.errors import console_message

router = APIRouter(prefix="/snippets")

Editor = Annotated[ConsoleUser, Depends(require_role(Role.editor))]
Choice = Literal["", "yes", "no"]
MAX_UPLOAD_BYTES = 1_000_000  # per Markdown file
# An import to run in a thread: (its own session, the progress hook) -> the report.
Run = Callable[[Session, Callable[[ImportReport], None]], ImportReport]


def _tristate(value: Choice) -> bool | None:
    return None if value == "" else value == "yes"


@router.get("")
def list_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str, Query(max_length=100)] = "",
    used: Choice = "",
    pinned: Choice = "",
    retired: Choice = "no",
) -> HTMLResponse:
    wanted = library.SnippetFilter(
        query=q,
        category=category or None,
        used=_tristate(used),
        pinned=_tristate(pinned),
        retired=_tristate(retired),
    )
    listing = library.library_page(session, wanted=wanted)
    return render(
        request,
        "console/snippets.html.j2",
        title="Snippets",
        entries=listing.entries,
        categories=listing.categories,
        f={"q": q, "category": category, "used": used, "pinned": pinned, "retired": retired},
    )


FormText = Annotated[str, Form(max_length=20_000)]
EMPTY_FORM: dict[str, Any] = {
    "title": "",
    "summary": "",
    "url": "",
    "image_url": "",
    "image_alt": "",
    "category": "general",
    "published_at": None,
    "pinned": False,
    "campaigns": [],
}


def _form_values(
    title: FormText = "",
    summary: FormText = "",
    url: FormText = "",
    image_url: FormText = "",
    image_alt: FormText = "",
    category: FormText = "",
    published: FormText = "",
    pinned: FormText = "",
) -> dict[str, Any]:
    """The snippet form's fields as the library takes them (a dependency of both routes
    that read the form, so its fields are declared once)."""
    return {
        "title": title,
        "summary": summary,
        "url": url,
        "image_url": image_url or None,
        "image_alt": image_alt or None,
        "category": category or "general",
        "published_at": published or None,
        "pinned": pinned == "on",
    }


SnippetForm = Annotated[dict[str, Any], Depends(_form_values)]


# The form's labels, by the library's field names: a refusal names the field as the page does.
LABELS = {
    "title": "Title",
    "summary": "Summary",
    "url": "Article URL",
    "image_url": "Image URL",
    "image_alt": "Image alt text",
    "category": "Category",
    "published_at": "Publish date",
}


def _refused(err: InvalidInput) -> Refused:
    """The library's refusal as a marketer reads it ("Article URL: ..."; "Title is empty."),
    on the field it names (a marketer's review found "field 'url': ..." above the page)."""
    line, label = console_message(err), LABELS.get(err.field or "")
    if label and err.reason.startswith("is "):
        line = f"{label} {line[0].lower()}{line[1:]}"
    elif label:
        line = f"{label}: {line}"
    return Refused("snippet", line, err.field or "")


def _form_page(
    request: Request,
    *,
    values: dict[str, Any],
    snippet_id: int | None = None,
    retired: bool = False,
    refused: Refused = NOTHING,
    saved: bool = False,
) -> HTMLResponse:
    values = {**EMPTY_FORM, **values}
    return render(
        request,
        "console/snippet_form.html.j2",
        http_status=400 if refused.form else 200,
        title=f"Snippet {snippet_id}" if snippet_id else "New snippet",
        v=values,
        snippet_id=snippet_id,
        retired=retired,
        preview=library.markdown_preview(str(values.get("summary") or "")),
        refused=refused,
        saved=saved,
    )


@router.get("/new")
def new_form(request: Request, user: Editor) -> HTMLResponse:
    return _form_page(request, values={"category": "general"})


@router.get("/import")
def import_form(request: Request, user: Editor) -> HTMLResponse:
    return _import_page(request)


def _import_page(request: Request, refused: Refused = NOTHING) -> HTMLResponse:
    """The two import forms; with ``refused``, at 400 with the line on its form and what
    was typed (a marketer's review found a feed URL refused on a page of its own)."""
    return render(
        request,
        "console/snippet_import.html.j2",
        http_status=400 if refused.form else 200,
        title="Import snippets",
        report=None,
        refused=refused,
    )


def _start(request: Request, user: ConsoleUser, *, name: str, run: Run, total: int) -> Response:
    """Run an import in the console's job registry, following its report as it grows."""
    engine = request.app.state.engine

    def work(job: ImportJob) -> ImportReport:
        def progress(report: ImportReport) -> None:
            job.counted(read=report.read, kept=report.imported, rejected=len(report.problems))

        with db.session_scope(engine) as session:
            report = run(session, progress)
        progress(report)
        return report

    assert user.id is not None
    job = import_jobs(request).start(owner_id=user.id, filename=name, work=work, total=total)
    return RedirectResponse(f"{PREFIX}/snippets/import/{job.id}", status_code=303)


@router.post("/import/feed")
def import_feed(
    request: Request,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        library.check_feed_url(url)
    except InvalidInput as err:
        return _import_page(request, Refused("feed", console_message(err), "url", {"url": url}))
    return _start(
        request,
        user,
        name=url.strip(),
        total=0,
        run=lambda session, progress: library.import_feed(
            session, settings=settings, url=url, actor=user.email, on_progress=progress
        ),
    )


@router.post("/import/files")
async def import_files(
    request: Request,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    files: Annotated[list[UploadFile], File()],
) -> Response:
    uploads = []
    for upload in files:
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            too_big = f"{upload.filename}: over {MAX_UPLOAD_BYTES:,} bytes"
            return _import_page(request, Refused("files", console_message(InvalidInput(too_big))))
        uploads.append((upload.filename or "upload.md", data))
    try:
        library.check_upload(uploads)
    except InvalidInput as err:
        return _import_page(request, Refused("files", console_message(err), "files"))
    return _start(
        request,
        user,
        name=f"{len(uploads)} Markdown file(s)",
        total=len(uploads),
        run=lambda session, progress: library.import_markdown_files(
            session, settings=settings, files=uploads, actor=user.email, on_progress=progress
        ),
    )


@router.get("/import/{job_id}")
def import_progress(request: Request, user: Editor, job_id: str) -> HTMLResponse:
    """The import's progress, reloading itself until the report of bad entries shows."""
    assert user.id is not None
    job = import_jobs(request).get(job_id, owner_id=user.id)
    return render(request, "console/snippet_import_progress.html.j2", title="Import", job=job)


@router.get("/{snippet_id}")
def edit_form(
    snippet_id: int,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    saved: Annotated[str, Query(max_length=5)] = "",
) -> HTMLResponse:
    entry = library.entry(session, snippet_id=snippet_id)
    s = entry.snippet
    values = {
        "title": s.title,
        "summary": library.summary_source(session, snippet_id=snippet_id),
        "url": s.url,
        "image_url": s.image_url or "",
        "image_alt": s.image_alt or "",
        "category": s.category,
        "published_at": s.published_at.date().isoformat(),
        "pinned": s.pinned,
        "campaigns": entry.listing.used_in,
    }
    return _form_page(
        request, values=values, snippet_id=snippet_id, retired=entry.retired, saved=bool(saved)
    )


@router.post("/new")
def create(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    values: SnippetForm,
    action: Annotated[Literal["save", "preview"], Form()] = "save",
) -> Response:
    if action == "preview":
        return _form_page(request, values=values)
    try:
        entry = library.create_snippet(
            session, settings=settings, data=values, actor=user.email, source="console"
        )
    except InvalidInput as err:
        return _form_page(request, values=values, refused=_refused(err))
    return RedirectResponse(f"{PREFIX}/snippets/{entry.snippet.id}?saved=1", status_code=303)


@router.post("/{snippet_id}")
def save(
    snippet_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Editor,
    _: CsrfDep,
    values: SnippetForm,
    action: Annotated[Literal["save", "preview"], Form()] = "save",
) -> Response:
    if action == "preview":
        return _form_page(request, values=values, snippet_id=snippet_id)
    try:
        library.edit_snippet(
            session, settings=settings, snippet_id=snippet_id, changes=values, actor=user.email
        )
    except InvalidInput as err:
        return _form_page(request, values=values, snippet_id=snippet_id, refused=_refused(err))
    return RedirectResponse(f"{PREFIX}/snippets/{snippet_id}?saved=1", status_code=303)


@router.post("/{snippet_id}/{change}")
def retire(
    snippet_id: int,
    change: Literal["retire", "unretire"],
    session: SessionDep,
    user: Editor,
    _: CsrfDep,
) -> Response:
    """Retire a snippet (no issue picks it again) or put it back in use."""
    act = library.retire if change == "retire" else library.unretire
    act(session, snippet_id=snippet_id, actor=user.email)
    return RedirectResponse(f"{PREFIX}/snippets/{snippet_id}", status_code=303)
