"""``/api/snippets``: list, create, edit, retire and unretire snippets, as ``newsletter
snippets`` does; every change is in the audit log as ``api-token:<token name>``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from campaigns.content import snippet_library as library
from web.api.common import MAX_ID, error
from web.deps import ActorDep, SessionDep, SettingsDep

router = APIRouter(prefix="/snippets", tags=["snippets"])

SnippetId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="a snippet's id")]
SNIPPET_NOT_FOUND: dict[int | str, dict[str, object]] = {404: error("no such snippet")}
SNIPPET_CHANGE: dict[int | str, dict[str, object]] = {
    **SNIPPET_NOT_FOUND,
    409: error("already retired, or not retired"),
}


class SnippetOut(BaseModel):
    id: int
    title: str
    summary: str
    url: str
    image_url: str | None
    image_alt: str | None
    category: str
    tags: list[str]
    author: str | None
    published_at: datetime
    source: str
    pinned: bool
    retired: bool
    sent: bool
    created_at: datetime
    updated_at: datetime
    campaigns: list[dict[str, Any]]


class SnippetIn(BaseModel):
    """A new snippet; ``summary`` is Markdown, kept as the plain text a card shows."""

    title: str = Field(min_length=1, max_length=300)
    summary: str = Field(min_length=1, max_length=20_000)
    url: str = Field(min_length=1, max_length=2000)
    image_url: str | None = Field(default=None, max_length=2000)
    image_alt: str | None = Field(default=None, max_length=500)
    category: str = Field(default="general", max_length=100)
    published_at: datetime | None = None
    pinned: bool = False


class SnippetPatch(BaseModel):
    """Only the fields given change."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    summary: str | None = Field(default=None, min_length=1, max_length=20_000)
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    image_url: str | None = Field(default=None, max_length=2000)
    image_alt: str | None = Field(default=None, max_length=500)
    category: str | None = Field(default=None, max_length=100)
    published_at: datetime | None = None
    pinned: bool | None = None


def _out(found: library.LibraryEntry) -> SnippetOut:
    return SnippetOut.model_validate(found.to_dict())


@router.get("", response_model=list[SnippetOut], summary="Snippets, freshest first, filtered")
def list_snippets(
    session: SessionDep,
    q: Annotated[str, Query(max_length=200, description="in title, summary or URL")] = "",
    category: Annotated[str | None, Query(max_length=100)] = None,
    used: bool | None = None,
    pinned: bool | None = None,
    retired: Annotated[bool | None, Query(description="default: hide retired ones")] = False,
) -> list[SnippetOut]:
    wanted = library.SnippetFilter(
        query=q, category=category, used=used, pinned=pinned, retired=retired
    )
    return [
        SnippetOut.model_validate(e.to_dict())
        for e in library.search_snippets(session, wanted=wanted)
    ]


@router.post("", response_model=SnippetOut, status_code=201, summary="Add a snippet")
def create_snippet(
    body: SnippetIn, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> SnippetOut:
    return _out(
        library.create_snippet(
            session, settings=settings, data=body.model_dump(), actor=actor, source="api"
        )
    )


@router.patch(
    "/{snippet_id}",
    response_model=SnippetOut,
    responses=SNIPPET_NOT_FOUND,
    summary="Change some fields of a snippet",
)
def edit_snippet(
    snippet_id: SnippetId,
    body: SnippetPatch,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> SnippetOut:
    return _out(
        library.edit_snippet(
            session,
            settings=settings,
            snippet_id=snippet_id,
            changes=body.model_dump(exclude_unset=True),
            actor=actor,
        )
    )


@router.post(
    "/{snippet_id}/retire",
    response_model=SnippetOut,
    responses=SNIPPET_CHANGE,
    summary="Retire a snippet: no issue picks it again",
)
def retire_snippet(snippet_id: SnippetId, session: SessionDep, actor: ActorDep) -> SnippetOut:
    return _out(library.retire(session, snippet_id=snippet_id, actor=actor))


@router.post(
    "/{snippet_id}/unretire",
    response_model=SnippetOut,
    responses=SNIPPET_CHANGE,
    summary="Put a retired snippet back in use",
)
def unretire_snippet(snippet_id: SnippetId, session: SessionDep, actor: ActorDep) -> SnippetOut:
    return _out(library.unretire(session, snippet_id=snippet_id, actor=actor))
