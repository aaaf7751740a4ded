"""GET /api/campaigns/{id}/report over real HTTP, behind the API's bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import api_tokens
from newsletter.settings import Settings
from tests.support.servers import live_server
from tests.support.tracking import (
    add_campaign,
    add_delivery,
    add_subscriber,
    apply,
    engagement,
    sg_event,
)
from web.app import create_app


@pytest.fixture
def server(settings: Settings, engine: Engine) -> Iterator[str]:
    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture
def token(engine: Engine) -> str:
    with Session(engine) as session:
        _record, plaintext = api_tokens.create(session, name="reports")
        session.commit()
    return plaintext


@pytest.fixture
def campaign_id(session: Session, settings: Settings) -> int:
    campaign = add_campaign(session, subject="Sciatica", week="2026-W48")
    for name in ("ann", "bob"):
        delivery = add_delivery(session, campaign, add_subscriber(session, f"{name}@x.com"))
        apply(session, settings, sg_event("delivered", delivery, f"{name}@x.com"))
    apply(session, settings, sg_event("open", delivery, "bob@x.com"))
    engagement(session, settings, delivery, "clicked", machine=True)  # a link scanner
    return campaign.id


def test_the_report_answers_exact_json(server: str, token: str, campaign_id: int) -> None:
    response = httpx.get(
        f"{server}/api/campaigns/{campaign_id}/report",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "campaign_id": campaign_id,
        "subject": "Sciatica",
        "week": "2026-W48",
        "status": "sent",
        "figures": {
            "recipients": {"count": 2, "rate": None},
            "sent": {"count": 2, "rate": 1.0},
            "delivered": {"count": 2, "rate": 1.0},
            "dropped": {"count": 0, "rate": 0.0},
            "bounces": {"count": 0, "rate": 0.0},
            "hard_bounces": {"count": 0, "rate": 0.0},
            "soft_bounces": {"count": 0, "rate": 0.0},
            "complaints": {"count": 0, "rate": 0.0},
            "unsubscribes": {"count": 0, "rate": 0.0},
            "unique_opens": {"count": 1, "rate": 0.5},
            "machine_opens": {"count": 0, "rate": 0.0},
            "unique_clicks": {"count": 0, "rate": 0.0},
            "machine_clicks": {"count": 1, "rate": 0.5},
        },
        "warnings": [],
        "provider_events": True,
    }


def test_the_report_needs_a_token(server: str, campaign_id: int) -> None:
    response = httpx.get(f"{server}/api/campaigns/{campaign_id}/report")
    assert (response.status_code, response.json()) == (401, {"detail": "missing bearer token"})


def test_an_unknown_campaign_is_404(server: str, token: str) -> None:
    response = httpx.get(
        f"{server}/api/campaigns/4040/report", headers={"Authorization": f"Bearer {token}"}
    )
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "campaign 4040 does not exist"},
    )


def test_the_comparison_lists_the_last_issues_with_rates_of_delivered(
    server: str, token: str, campaign_id: int
) -> None:
    response = httpx.get(
        f"{server}/api/reports/comparison",
        params={"last": 12},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    (line,) = response.json()["issues"]
    assert (line["campaign_id"], line["delivered"], line["human_open_rate"]) == (
        campaign_id,
        2,
        0.5,
    )
    assert response.json()["rates_of"]["human_open_rate"] == "delivered"


def test_the_comparison_refuses_an_issue_count_out_of_range(server: str, token: str) -> None:
    response = httpx.get(
        f"{server}/api/reports/comparison?last=105", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422
