"""How the door answers with a page: HTML that no cache keeps (links carry tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import HTMLResponse

NO_STORE = {"Cache-Control": "no-store"}


def page(html: str, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """``html`` as a ``text/html`` answer with ``Cache-Control: no-store``."""
    return HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})
