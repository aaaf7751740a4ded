"""The tracking door: ``/r/{token}/{n}`` (a click, 302 to the link) and ``/o/{token}`` (the
open pixel). What counts as a valid link, and how hits are judged and written, is the
room's (``campaigns.tracking.hits.Recorder``, one per app in ``app.state.tracking``).

A redirect never goes anywhere but a URL from the campaign's own link table: a tampered,
foreign or out-of-range link answers the 404 page (``LinkNotFound`` in the one error map).
The pixel answers the same 1x1 transparent GIF whatever the token, so it tells a prober
nothing. Both answer ``Cache-Control: no-store`` (a cached pixel hides later opens;
a cached redirect hides clicks) and, like every answer, ``Referrer-Policy: no-referrer``
(web/security.py), so the site a reader lands on never sees the token. Plain ``def``
routes: the room may read the database on a cache miss, which must not block the loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from campaigns.tracking.hits import Recorder
from web.deps import ClientDep

# The smallest transparent GIF: 1x1, one transparent colour (GIF89a, 43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(tags=["tracking"], include_in_schema=False)


def recorder(request: Request) -> Recorder:
    return request.app.state.tracking


@router.api_route("/r/{token}/{position}", methods=["GET", "HEAD"])
def click(token: str, position: str, request: Request, client: ClientDep) -> Response:
    url = recorder(request).click(
        token,
        int(position) if position.isdigit() and len(position) < 6 else -1,
        method=request.method,
        user_agent=client.user_agent,
        ip=client.ip,
    )
    return Response(status_code=302, headers={"Location": url, **NO_STORE})


@router.api_route("/o/{token}", methods=["GET", "HEAD"])
def pixel(token: str, request: Request, client: ClientDep) -> Response:
    recorder(request).open(token, method=request.method, user_agent=client.user_agent, ip=client.ip)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Write the clicks and opens still in the buffer when the app stops."""
    yield
    app.state.tracking.close()
