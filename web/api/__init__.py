"""The campaign API under ``/api/``: one module per resource, assembled here.

Every operation needs ``Authorization: Bearer <token>`` with a token from ``newsletter
api-tokens create NAME``; a missing, wrong or revoked token answers 401. Illegal state
changes answer 409, unknown ids 404, bad input 422 (ids are positive 32-bit integers),
always as ``{"detail": "<message>"}`` (web/errors.py, web/api/common.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from web.api import campaigns, previews, reports, snippets, subject_tests, subscribers, webhooks
from web.api.common import COMMON
from web.deps import api_token

TAGS = [
    {
        "name": "campaigns",
        "description": "Queue, pause, resume and cancel campaigns, as `newsletter "
        "campaigns` does. Send `Authorization: Bearer <token>` with a token from "
        "`newsletter api-tokens create NAME`. Times are UTC (`scheduled_at`) with the "
        "newsletter's local time beside them (`scheduled_at_local`).",
    },
    {
        "name": "snippets",
        "description": "The snippet library, as `newsletter snippets` does: list with "
        "filters, create, edit, retire and unretire. Summaries are Markdown, kept as text.",
    },
    {
        "name": "subscribers",
        "description": "Search the list and show one person with their consent history, "
        "as the console and `newsletter subscribers list|show` do.",
    },
    {
        "name": "webhooks",
        "description": "Outgoing webhook endpoints (Standard Webhooks), as `newsletter "
        "webhooks` does: add (the answer carries the signing secret), list, remove, log.",
    },
]

router = APIRouter(
    prefix="/api",
    dependencies=[Depends(api_token)],
    responses=COMMON,
)
router.include_router(campaigns.router)
router.include_router(previews.router)
router.include_router(reports.router)
router.include_router(subject_tests.router)  # issue 16
router.include_router(snippets.router)
router.include_router(subscribers.router)
router.include_router(webhooks.router)  # issue 16 point 4
router.include_router(reports.comparison_router)
