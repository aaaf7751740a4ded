"""``GET /healthz`` for monitors: the database, the active scheduler instance, and the last
and next run of every job. When the database cannot be reached the error map answers 503
with ``database_ok: false`` (web/errors.py)."""

from __future__ import annotations

from fastapi import APIRouter

from newsletter import job_runs
from web.deps import EngineDep

PATH = "/healthz"
router = APIRouter(tags=["ops"])


@router.get(PATH, response_model=job_runs.SchedulerStatus)
def healthz(engine: EngineDep) -> job_runs.SchedulerStatus:
    return job_runs.status(engine)
