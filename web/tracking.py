"""The tracking door: ``/r/{token}/{n}`` (a click, 302 to the link) and ``/o/{token}`` (the
open pixel). What counts as a valid link, and how hits are judged and written, is the
room's (``campaigns.tracking.hits.Recorder``, one per app in ``app.state.tracking``).

A redirect never goes anywhere but a URL from the campaign's own link table: a tampered,
foreign or out-of-range link answers the 404 page (``LinkNotFound`` in the one error map).
The pixel answers the same 1x1 transparent GIF whatever the token, so it tells a prober
nothing. Both answer ``Cache-Control: no-store`` (a cached pixel hides later opens;
a cached redirect hides clicks) and, like every answer, ``Referrer-Policy: no-referrer``
(web/security.py), so the site a reader lands on never sees the token. A click whose
campaign and reader the room has cached is answered on the event loop; one that needs
the database goes to a worker thread, so the loop never waits on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from campaigns.tracking.hits import Recorder
from newsletter.errors import LinkNotFound
from web.clients import Network, client_ip
from web.deps import ClientDep, get_client

# The smallest transparent GIF: 1x1, one transparent colour (GIF89a, 43 bytes).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = {"Cache-Control": "no-store"}
URL_SAFE = "/:?#[]@!$&'()*+,;=%~"  # RFC 3986 reserved characters, and escapes already made

router = APIRouter(tags=["tracking"], include_in_schema=False)


def recorder(request: Request) -> Recorder:
    return request.app.state.tracking


@router.api_route("/r/{token}/{position}", methods=["GET", "HEAD"])
async def click(token: str, position: str, request: Request) -> Response:
    client = get_client(request)
    number = int(position) if position.isdigit() and len(position) < 6 else -1
    room = recorder(request)
    answer = partial(
        room.click, token, number, method=request.method, user_agent=client.user_agent,
        ip=client.ip,
    )  # fmt: skip
    # FastClicks (below) answers every valid click before routing; what reaches the route
    # is a link it could not answer: checked again here, in a worker thread (it may read
    # the database), to give the 404 page the usual way.
    url = await run_in_threadpool(answer)
    location = url if url.isascii() else quote(url, safe=URL_SAFE)  # headers are bytes
    return Response(status_code=302, headers={"Location": location, **NO_STORE})


@router.api_route("/o/{token}", methods=["GET", "HEAD"])
def pixel(token: str, request: Request, client: ClientDep) -> Response:
    recorder(request).open(token, method=request.method, user_agent=client.user_agent, ip=client.ip)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


class FastClicks:
    """Answers a ``/r/`` click from the room's caches before FastAPI routes it.

    A redirect must answer in a few milliseconds while hundreds of readers click at once;
    FastAPI's routing and dependency machinery cost more than the click itself, so this
    pure ASGI layer (inside web/security.py's, which still adds every header) answers the
    302 of every valid click: from the room's caches on the event loop, or, for a cache
    miss, with the room's database read in a worker thread. A bad link goes on to the
    route above, which answers the 404 page the usual way.
    """

    def __init__(self, app: ASGIApp, *, room: Recorder, trusted: Sequence[Network]) -> None:
        self.app = app
        self.room = room
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        url = await self._answer(scope) if scope["type"] == "http" else None
        if url is None:
            await self.app(scope, receive, send)
            return
        headers = [(b"location", url), (b"cache-control", b"no-store"), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _answer(self, scope: Scope) -> bytes | None:
        path, method = scope["path"], scope["method"]
        if not path.startswith("/r/") or method not in ("GET", "HEAD"):
            return None
        token, _, number = path[3:].partition("/")
        if not number.isdigit() or len(number) > 5:
            return None
        agent, forwarded = None, []
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
        peer = scope["client"][0] if scope.get("client") else None
        answer = partial(
            self.room.click, token, int(number), method=method, user_agent=agent,
            ip=client_ip(peer, forwarded, self.trusted),
        )  # fmt: skip
        try:
            # From the caches on the loop; a reader's first click reads the database in a
            # worker thread, without FastAPI's routing (most clicks are first clicks).
            url = self.room.click_now(
                token, int(number), method=method, user_agent=agent,
                ip=client_ip(peer, forwarded, self.trusted),
            )  # fmt: skip
            if url is None:
                url = await run_in_threadpool(answer)
        except LinkNotFound:
            return None  # the route answers with the 404 page
        return (url if url.isascii() else quote(url, safe=URL_SAFE)).encode("ascii")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the click writer with the app; write the clicks and opens still in the
    buffer when the app stops."""
    await run_in_threadpool(app.state.tracking.start_writer)
    yield
    app.state.tracking.close()
