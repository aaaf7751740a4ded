"""Subject tests and resends over real HTTP (uvicorn on 127.0.0.1): the same rules as the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import CampaignStatus
from newsletter import api_tokens
from newsletter.clock import utcnow
from newsletter.settings import Settings
from tests.support.delivery import make_campaign
from tests.support.servers import live_server
from web.app import create_app


@pytest.fixture
def client(sqlite_settings: Settings, sqlite_engine: Engine) -> Iterator[httpx.Client]:
    with Session(sqlite_engine) as session:
        _, token = api_tokens.create(session, name="ops")
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    with (
        live_server(create_app(sqlite_settings)) as base,
        httpx.Client(base_url=base, headers=headers, timeout=10) as http,
    ):
        yield http


def test_a_subject_test_and_a_resend_through_the_api(
    client: httpx.Client, sqlite_engine: Engine
) -> None:
    with Session(sqlite_engine) as session:
        cid = make_campaign(session, status=CampaignStatus.DRAFT).id
    body = {"subjects": ["Stretch A", "Stretch B"], "sample_percent": 30, "metric": "opens"}
    made = client.post(f"/api/campaigns/{cid}/subject-test", json=body)
    assert made.status_code == 201
    assert (made.json()["metric"], made.json()["phase"]) == ("opens", "ready")
    assert client.get(f"/api/campaigns/{cid}").json()["subject_test"] == made.json()
    again = client.post(f"/api/campaigns/{cid}/subject-test", json=body)
    assert again.json() == {"detail": f"campaign {cid} already has a subject test"}
    assert again.status_code == 409
    early = client.post(f"/api/campaigns/{cid}/subject-test/winner", json={"label": "A"})
    assert early.status_code == 409
    resend = client.post(f"/api/campaigns/{cid}/resend", json={"subject": "Missed it?"})
    assert (resend.status_code, resend.json()) == (
        409,
        {"detail": f"campaign {cid} is draft: a resend follows a sent campaign"},
    )


def test_a_subject_test_removed_through_the_api_is_gone(
    client: httpx.Client, sqlite_engine: Engine
) -> None:
    with Session(sqlite_engine) as session:
        cid = make_campaign(session, status=CampaignStatus.DRAFT).id
    body = {"subjects": ["Stretch A", "Stretch B"]}
    assert client.post(f"/api/campaigns/{cid}/subject-test", json=body).status_code == 201
    assert client.delete(f"/api/campaigns/{cid}/subject-test").status_code == 204
    assert client.get(f"/api/campaigns/{cid}/subject-test").status_code == 404
    again = client.delete(f"/api/campaigns/{cid}/subject-test")
    assert (again.status_code, again.json()) == (
        404,
        {"detail": f"campaign {cid} has no subject test"},
    )


def test_a_resend_is_cancelled_through_the_api(client: httpx.Client, sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session, status=CampaignStatus.SENT)
        campaign.finished_at = campaign.finished_at or utcnow()
        session.commit()
        cid = campaign.id
    assert client.post(f"/api/campaigns/{cid}/resend", json={"subject": "Missed it?"}).is_success
    assert client.delete(f"/api/campaigns/{cid}/resend").status_code == 204
    again = client.delete(f"/api/campaigns/{cid}/resend")
    assert (again.status_code, again.json()) == (404, {"detail": f"campaign {cid} has no resend"})
