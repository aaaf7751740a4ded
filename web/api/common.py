"""What every API operation shares: the id of a campaign, and the one error body.

Documented here so the OpenAPI document tells the truth about every answer (checked by
schemathesis, tests/web/api/test_fuzz.py): ids are positive 32-bit integers (PostgreSQL's
``integer``), so a larger or negative one is refused with 422 before it reaches the
database; and every error, FastAPI's validation included, is ``{"detail": "<message>"}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

MAX_ID = 2**31 - 1  # PostgreSQL integer; SQLite's rowids are bigger, ours never are

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID, description="a campaign's id")]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorBody(BaseModel):
    """Every error answer of the API: what went wrong, for a human."""

    detail: str = Field(examples=["campaign 42 does not exist"])


def error(description: str) -> dict[str, object]:
    """An error response for ``responses=``: JSON even on an operation that answers HTML
    (the preview), where FastAPI would file the model under the route's media type."""
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {
        "model": ErrorBody,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


# On every operation of the API router (web/api/__init__.py).
COMMON: dict[int | str, dict[str, object]] = {
    401: error("missing, wrong or revoked token"),
    422: error("the request is malformed or asks for something impossible"),
    503: error("the database or the mail provider is unavailable; try again later"),
}
NOT_FOUND: dict[int | str, dict[str, object]] = {404: error("no such campaign")}
CHANGE: dict[int | str, dict[str, object]] = {
    **NOT_FOUND,
    409: error("not allowed in the campaign's state"),
}
