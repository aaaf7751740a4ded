"""``/api/subscribers``: search the list and show one person, as the console's subscriber
pages and ``newsletter subscribers list|show`` do (subscribers.directory)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from subscribers.directory import (
    SubscriberPage,
    SubscriberRecord,
    search_subscribers,
    subscriber_record,
)
from subscribers.models import SubscriberStatus
from web.api.common import error
from web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/subscribers", tags=["subscribers"])

# No control characters: PostgreSQL refuses NUL in text, and no address has any.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
NO_SUBSCRIBER: dict[int | str, dict[str, object]] = {404: error("no subscriber has that address")}


@router.get(
    "",
    response_model=SubscriberPage,
    summary="Subscribers whose address contains q, in a status, who chose a topic; paginated",
)
def list_subscribers(
    session: SessionDep,
    settings: SettingsDep,
    q: Annotated[
        str, Query(max_length=320, pattern=PRINTABLE, description="part of the address")
    ] = "",
    status: SubscriberStatus | None = None,
    topic: Annotated[str | None, Query(max_length=100, description="a topic's slug")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> SubscriberPage:
    """Oldest first; ``total`` counts every match. An unknown topic answers 422."""
    return search_subscribers(
        session,
        query=q,
        status=status,
        topic=topic,
        topics=settings.topics,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{email}",
    response_model=SubscriberRecord,
    responses=NO_SUBSCRIBER,
    summary="One subscriber with their suppression and whole consent history",
)
def show_subscriber(
    session: SessionDep,
    email: Annotated[
        str, Path(max_length=320, pattern=PRINTABLE, description="the address, any case")
    ],
) -> SubscriberRecord:
    return subscriber_record(session, email=email)
