"""What every command starts from: the settings, the database, and who is acting.

Settings are read from the environment (and ``.env``) once per command, as the scheduler's
jobs do; rooms get them passed down and never read the environment themselves.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import db
from newsletter.settings import Settings, load_settings


def settings() -> Settings:
    """The settings of this run; raises ConfigError (exit 1) when one is invalid."""
    return load_settings()


def engine_for(cfg: Settings, *, migrate: bool | None = None) -> Engine:
    """The engine, checked: an embedded SQLite database is migrated on first use.

    A server database is only checked, never migrated behind the operator's back
    (``newsletter db upgrade`` does that). Raises DatabaseError when unreachable.
    """
    engine = db.get_engine(cfg.database_url)
    if migrate if migrate is not None else cfg.is_sqlite:
        db.upgrade(engine)
    else:
        db.check_connection(engine)
    return engine


@contextmanager
def session_for(cfg: Settings) -> Iterator[Session]:
    """A session that commits when the command's work succeeds, rolls back otherwise."""
    with db.session_scope(engine_for(cfg)) as session:
        yield session


def actor() -> str:
    """Who made a change, for campaign logs: ``cli:<login>`` (100 chars at most)."""
    try:
        return f"cli:{getpass.getuser()}"[:100]
    except (KeyError, OSError):
        return "cli"
