"""``/api/webhooks``: outgoing webhook endpoints (issue 16 point 4), as ``newsletter
webhooks`` does: add (the answer carries the signing secret, once), list, enable,
remove, and each endpoint's delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from campaigns import outgoing_webhooks
from web.api.common import MAX_ID, error
from web.deps import ActorDep, SessionDep, SettingsDep

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, description="a webhook endpoint's id")]
NO_ENDPOINT: dict[int | str, dict[str, object]] = {404: error("no such webhook endpoint")}


class EndpointCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2000, examples=["https://example.com/hooks"])
    events: list[outgoing_webhooks.EventName] = Field(
        default_factory=list, description="the events to send; empty: all"
    )


class EndpointCreated(outgoing_webhooks.EndpointView):
    secret: str = Field(description="the signing secret (whsec_...): shown only here")


@router.post(
    "",
    response_model=EndpointCreated,
    status_code=201,
    summary="Add an endpoint; the answer carries its signing secret",
)
def add_endpoint(
    body: EndpointCreate, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> EndpointCreated:
    endpoint, secret = outgoing_webhooks.add_endpoint(
        session,
        settings=settings,
        url=body.url,
        events=[str(e) for e in body.events],
        actor=actor,
    )
    return EndpointCreated(**endpoint.model_dump(), secret=secret)


@router.get("", response_model=list[outgoing_webhooks.EndpointView], summary="List the endpoints")
def list_endpoints(session: SessionDep) -> list[outgoing_webhooks.EndpointView]:
    return outgoing_webhooks.list_endpoints(session)


@router.delete(
    "/{endpoint_id}",
    response_model=outgoing_webhooks.EndpointView,
    responses=NO_ENDPOINT,
    summary="Remove an endpoint, its undelivered messages and its log",
)
def remove_endpoint(
    endpoint_id: EndpointId, session: SessionDep, actor: ActorDep
) -> outgoing_webhooks.EndpointView:
    return outgoing_webhooks.remove_endpoint(session, endpoint_id=endpoint_id, actor=actor)


@router.post(
    "/{endpoint_id}/enable",
    response_model=outgoing_webhooks.EndpointView,
    responses={**NO_ENDPOINT, 409: error("the endpoint is not disabled")},
    summary="Enable a disabled endpoint again; what it missed is delivered next",
)
def enable_endpoint(
    endpoint_id: EndpointId, session: SessionDep, actor: ActorDep
) -> outgoing_webhooks.EndpointView:
    return outgoing_webhooks.enable_endpoint(session, endpoint_id=endpoint_id, actor=actor)


@router.get(
    "/{endpoint_id}/log",
    response_model=list[outgoing_webhooks.AttemptView],
    responses=NO_ENDPOINT,
    summary="The endpoint's delivery attempts, newest first",
)
def delivery_log(
    endpoint_id: EndpointId,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[outgoing_webhooks.AttemptView]:
    return outgoing_webhooks.delivery_log(session, endpoint_id=endpoint_id, limit=limit)
