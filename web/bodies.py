"""Request bodies, read with a size cap before they are read whole.

A declared ``Content-Length`` over the cap is refused without reading; a body that grows
past it while streaming is refused at the first byte too many. Forms are urlencoded or
multipart, without files, at most 50 fields (Starlette's parser does the parsing).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.types import Message

from newsletter.errors import PayloadTooLarge
from subscribers.forms import PostedForm
from web.deps import SettingsDep

MAX_FIELDS = 50


async def read_at_most(request: Request, *, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, *, limit: int, what: str = "request body") -> bytes:
    """The raw body; PayloadTooLarge (413) when it is larger than ``limit`` bytes."""
    body = await read_at_most(request, limit=limit)
    if body is None:
        raise PayloadTooLarge(f"{what} larger than {limit} bytes")
    return body


async def _parse_form(request: Request, body: bytes) -> PostedForm:
    sent = False

    async def replay() -> Message:  # the body once more, for Starlette's form parser
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=0, max_fields=MAX_FIELDS)
    except (MultiPartException, StarletteHTTPException) as err:
        problem = getattr(err, "detail", None) or getattr(err, "message", str(err))
        return PostedForm(problem=str(problem))
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            return PostedForm(problem="files cannot be uploaded here")
        fields.setdefault(key, []).append(value)
    return PostedForm(fields=fields)


async def posted_form(request: Request, settings: SettingsDep) -> PostedForm:
    """The posted form's fields (``form_max_bytes`` at most; PayloadTooLarge past it);
    a body that is not a form gives no fields, one that cannot be parsed a ``problem``."""
    body = await read_body(request, limit=settings.form_max_bytes, what="form")
    return await _parse_form(request, body)


async def link_post_body(request: Request, settings: SettingsDep) -> bytes:
    """The body of a POST to a signed link; b"" when too large, since the link alone
    decides (an RFC 8058 one-click body is 26 bytes)."""
    return await read_at_most(request, limit=settings.form_max_bytes) or b""


FormDep = Annotated[PostedForm, Depends(posted_form)]
LinkPostDep = Annotated[bytes, Depends(link_post_body)]
