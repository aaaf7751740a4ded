"""``GET /metrics``: the Prometheus text format (issue 17 point 2).

The metrics are defined in newsletter/metrics.py; this door adds the one figure read at
scrape time (recipients still queued per campaign, from the ledger) and renders them.
Behind ``Authorization: Bearer <NEWSLETTER_METRICS_TOKEN>`` when that is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from campaigns.delivery.ledger import queued_per_campaign
from newsletter import metrics
from web.deps import MetricsAccessDep, SessionDep

PATH = "/metrics"
router = APIRouter(tags=["ops"])


@router.get(PATH, include_in_schema=False)
def scrape(_: MetricsAccessDep, session: SessionDep) -> Response:
    body, content_type = metrics.exposition(queued_per_campaign(session))
    return Response(content=body, media_type=content_type)
