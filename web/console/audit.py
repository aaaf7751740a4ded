"""``GET /admin/audit``: the audit log, newest first, 50 a page (owners only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from newsletter import audit
from web.console.deps import OwnerUser, render
from web.deps import SessionDep

router = APIRouter(prefix="/audit")

PAGE_SIZE = 50


@router.get("")
def audit_log(
    request: Request,
    user: OwnerUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    found = audit.recent(session, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(
        request,
        "console/audit.html.j2",
        title="Audit log",
        found=found,
        page=page,
        pages=max(1, -(-found.total // PAGE_SIZE)),
    )
