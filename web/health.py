"""Probes for monitors and orchestrators.

- ``GET /healthz`` (liveness and the scheduler's state): the database, the active
  scheduler instance, and the last and next run of every job. When the database cannot
  be reached the error map answers 503 with ``database_ok: false`` (web/errors.py).
- ``GET /readyz`` (readiness, issue 17): 200 when the database answers and its Alembic
  revision is the code's head; 503 with a JSON ``reason`` otherwise, so a load balancer
  sends no traffic to an instance whose schema is behind its code.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from newsletter import db, job_runs
from web.deps import EngineDep

PATH = "/healthz"
READY_PATH = "/readyz"
router = APIRouter(tags=["ops"])


@router.get(PATH, response_model=job_runs.SchedulerStatus)
def healthz(engine: EngineDep) -> job_runs.SchedulerStatus:
    return job_runs.status(engine)


@router.get(
    READY_PATH,
    responses={503: {"description": "the database is unreachable or its schema is behind"}},
)
def readyz(engine: EngineDep) -> JSONResponse:
    """``{"ready", "database_ok", "revision", "head", "reason"}``; 503 when not ready."""
    state = db.readiness(engine)
    return JSONResponse(
        asdict(state), 200 if state.ready else 503, headers={"Cache-Control": "no-store"}
    )
