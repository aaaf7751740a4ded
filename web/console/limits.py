"""Body limits of the console's forms, checked before anything reads the body.

FastAPI reads a route's form fields before it runs the route's dependencies, so a limit
checked there comes too late. This pure ASGI middleware answers a POST under ``/admin/``
at once: 411 without a ``Content-Length`` (browsers always send one with a form), 413
when it declares more than ``form_max_bytes`` or what the largest console form needs
(``deps.FORM_BYTES``, whichever is more), or, for a multipart form (an upload),
``import_max_bytes`` and a little for the other fields.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter.settings import Settings
from web.console.deps import FILE_FORM_SLACK, FORM_BYTES, PREFIX


class ConsoleBodyLimit:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.form_limit = max(settings.form_max_bytes, FORM_BYTES)
        self.upload_limit = settings.import_max_bytes + FILE_FORM_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.upload_limit if multipart else self.form_limit
        declared = headers.get("content-length", "")
        if not declared.isdigit():
            answer = PlainTextResponse("a form needs a Content-Length", 411)
        elif int(declared) > limit:
            answer = PlainTextResponse(f"form larger than {limit} bytes", 413)
        else:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)
