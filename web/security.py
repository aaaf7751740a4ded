"""Security headers on every answer, error pages and static files included.

- ``Content-Security-Policy``: scripts and styles only from our own origin, never inline
  (an injected ``<script>`` or ``onclick=`` does not run); no plug-ins; forms post only to
  us; ``frame-ancestors 'none'`` so no other site can frame a page and trick a click
  (clickjacking). The API docs (Swagger UI, ReDoc) add inline *styles*, which their
  libraries insert at run time; scripts stay our own files there too.
- ``X-Content-Type-Options: nosniff``: a response is only what its type says.
- ``Referrer-Policy: no-referrer``: links carry tokens; no other site sees them.
- ``Strict-Transport-Security`` when the configured base URL is https (RFC 6797), so a
  browser never speaks plain HTTP to us again.

A pure ASGI middleware (not ``BaseHTTPMiddleware``): it only adds headers to the start
of each answer and never buffers a body.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS_SECONDS = 365 * 24 * 3600  # one year, as RFC 6797 section 11.2's example

BASE_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
# Swagger UI and ReDoc style their widgets with inline styles; ReDoc searches in a worker.
DOCS_POLICY = {**BASE_POLICY, "style-src": "'self' 'unsafe-inline'", "worker-src": "blob:"}


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeaders:
    """Adds the headers above to every HTTP answer of ``app``."""

    def __init__(self, app: ASGIApp, *, https: bool, docs_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.docs_paths = docs_paths
        self.headers = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if https:
            self.headers["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"
        self.page_policy = policy(BASE_POLICY)
        self.docs_policy = policy(DOCS_POLICY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.docs_policy if scope["path"] in self.docs_paths else self.page_policy

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)
