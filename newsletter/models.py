"""The ops tables: what the service records about itself, not about readers or issues.

- ``api_token``: bearer tokens for /api/, only their SHA-256 (:mod:`newsletter.api_tokens`).
- ``lease``: who holds a named lease until when: ``scheduler`` (the active instance) and
  ``send:<campaign id>`` (its one sender) (:mod:`newsletter.leases`).
- ``job_run``: one row per scheduler job run, for health checks and the ops log
  (:mod:`newsletter.job_runs`).

Every timestamp is :class:`newsletter.db.UTCDateTime`: aware UTC in Python on every database.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from newsletter.clock import utcnow
from newsletter.db import UTCDateTime


class ApiToken(SQLModel, table=True):
    """A bearer token for /api/; only the SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Lease(SQLModel, table=True):
    """Who holds the lease ``name`` (the active scheduler, a campaign's sender), until when."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=50)
    holder: str = Field(max_length=200)
    acquired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class JobRun(SQLModel, table=True):
    """One run of a scheduler job, for health reports and the ops log."""

    __tablename__ = "job_run"

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=50, index=True)
    instance: str = Field(max_length=200)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(default="running", sa_type=sa.String(20))
    detail: str = Field(default="", sa_type=sa.Text)
