"""The database engine, sessions and migrations.

The engine cache is the only global mutable state of the service: one pool per URL.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from newsletter.clock import as_utc
from newsletter.errors import DatabaseError

T = TypeVar("T")
log = logging.getLogger("newsletter.db")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

CONNECT_TIMEOUT_SECONDS = 10

_engines: dict[str, Engine] = {}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC ``datetime`` in Python, on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and hands back naive
    values, so they are written as UTC and read back with the UTC zone attached. Every
    model's datetime column uses this type, so no module converts values it reads.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, foreign_keys: bool = True) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the sender
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def in_memory(url: str | sa.URL) -> bool:
    """A SQLite database that lives in one engine's memory (``sqlite://``, ``:memory:``)."""
    parsed = sa.make_url(url)
    return parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or "memory" in str(parsed.query)
    )


def _sqlite_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and "///" in url:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = "a file is in the way" if isinstance(err, FileExistsError) else err.strerror
            raise DatabaseError(
                f"cannot create the folder of the SQLite database {path}: {reason}"
            ) from err
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(
        engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, rec, foreign_keys=foreign_keys)
    )
    return engine


def get_engine(url: str, *, pool_size: int = 5) -> Engine:
    """The one engine (connection pool) of ``url``; DatabaseError when it cannot be made.

    Which URLs are accepted is decided once, by the settings
    (:class:`newsletter.settings.Settings`: SQLite or PostgreSQL through psycopg 3).
    ``pool_size`` above the engine's own (a worker running N blocks at once, each with a
    session and its pacer's connection) makes the engine again with that pool.
    """
    engine = _engines.get(url)
    if engine is not None and not url.startswith("sqlite") and engine.pool.size() < pool_size:  # type: ignore[attr-defined]
        engine.dispose()
        engine = None
    if engine is None:
        try:
            if url.startswith("sqlite"):
                engine = _sqlite_engine(url)
            else:
                # A connection attempt to an unreachable server fails in seconds, not after
                # the kernel's two minutes of SYN retries: the scheduler's leader must notice.
                engine = sa.create_engine(
                    url,
                    pool_pre_ping=True,
                    pool_size=pool_size,
                    max_overflow=5,
                    connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                )
        except (ArgumentError, ImportError) as err:
            raise DatabaseError(f"cannot use the database URL: {err}") from err
        _engines[url] = engine
    return engine


def dispose_engine(url: str) -> None:
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def begin_write(session: Session) -> None:
    """On SQLite, open this session's transaction with ``BEGIN IMMEDIATE``: the write lock
    first, then the reads, so what the transaction read cannot go stale before it writes.

    SQLite in WAL mode refuses at once ("database is locked", the busy timeout does not
    apply) a transaction that read a snapshot and then tries to write after another
    connection committed (SQLite's "isolation in WAL mode"). Taking the lock up front
    waits its turn under the busy timeout instead. A no-op where a transaction is already
    open, and on PostgreSQL, whose row locks do this job.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw = connection.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def savepoint(session: Session) -> Iterator[SessionTransaction]:
    """``session.begin_nested()``: a SAVEPOINT inside the caller's transaction, on every database.

        On an error inside it only the savepoint's work is rolled back; the caller's earlier,
        uncommitted work stays, and the caller still decides to commit or roll back.

        The standard library's sqlite3 driver opens a transaction only before INSERT, UPDATE or
        DELETE, so a SAVEPOINT issued first would start a transaction of its own and its RELEASE
        would commit there and then (SQLAlchemy's pysqlite notes, "Serializable isolation /
        Savepoints / Transactional DDL"). On SQLite the transaction is therefore opened first,
    with the write lock (:func:`begin_write`).
    """
    begin_write(session)  # a savepoint is there to write: on SQLite, the lock first
    with session.begin_nested() as nested:
        yield nested


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _migrating(engine: Engine) -> Iterator[Engine]:
    """The engine migrations run on: on SQLite, one with foreign keys off.

    SQLite cannot drop a constraint, so Alembic's batch mode rebuilds the table (copy,
    ``DROP TABLE``, rename); with foreign keys on, that ``DROP TABLE`` deletes the rows
    that reference the table through ``ON DELETE CASCADE`` (campaign_snippet and
    campaign_log of a rebuilt campaign table). SQLite's "Making Other Kinds Of Table
    Schema Changes" procedure turns foreign keys off (which only works outside a
    transaction, hence a connection of its own) and runs ``PRAGMA foreign_key_check``
    before the change is committed. An in-memory database is a new one per engine, so
    it keeps the caller's.
    """
    if engine.dialect.name != "sqlite" or in_memory(engine.url):
        yield engine
        return
    migrating = _sqlite_engine(engine.url.render_as_string(hide_password=False), foreign_keys=False)
    try:
        yield migrating
        with migrating.connect() as connection:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise DatabaseError(f"the migration left {len(broken)} rows with broken references")
    finally:
        migrating.dispose()


def revisions() -> list[str]:
    """Every migration's revision id, oldest first (what ``db upgrade REVISION`` takes)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def head_revision() -> str | None:
    """The newest migration's revision id."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is already there.

    Raises DatabaseError when the database is unreachable or ``revision`` is no
    migration (or one the schema is already past).
    """
    from alembic import command
    from alembic.util import CommandError

    check_connection(engine)
    target = head_revision() if revision == "head" else revision
    try:
        if current_revision(engine) == target:
            return  # every command on SQLite asks: answer without loading the migrations
        with _migrating(engine) as migrating:
            command.upgrade(_alembic_config(migrating), revision)
    except CommandError as err:
        raise DatabaseError(f"cannot upgrade to {revision!r}: {err}") from err
    except DBAPIError as err:  # a damaged file, a full disk, a lost server
        raise DatabaseError(f"cannot migrate the database: {_reason(err)}") from err


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with _migrating(engine) as migrating:
        command.downgrade(_alembic_config(migrating), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class Readiness:
    """Whether this instance may take traffic (issue 17, ``GET /readyz``).

    ``ready`` when the database answers and its Alembic revision is the code's head;
    otherwise ``reason`` says which, in one line naming no host or password.
    """

    ready: bool
    database_ok: bool
    revision: str | None
    head: str | None
    reason: str | None = None


def readiness(engine: Engine) -> Readiness:
    """Connect, and compare the database's revision with the newest migration's.

    Never raises for a database that is down or half migrated: that is the answer.
    """
    head = head_revision()
    try:
        check_connection(engine)
        revision = current_revision(engine)
    except (DatabaseError, DBAPIError) as err:
        log.warning("not ready: %s", err)
        return Readiness(False, False, None, head, "the database is unreachable")
    if revision != head:
        reason = f"migrations are not current: database at {revision or 'none'}, code at {head}"
        return Readiness(False, True, revision, head, reason)
    return Readiness(True, True, revision, head)


def check_connection(engine: Engine) -> None:
    """Connect once; DatabaseError naming the database (never its password) otherwise."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except DBAPIError as err:  # unreachable, refused, bad credentials or options
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot reach the database {where}: {_reason(err)}") from err


# ---------------------------------------------------------------- lost connections


# SQLSTATEs of a connection that is gone (class 08) or a server that shut it down or is
# not ready (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now):
# PostgreSQL's Appendix A, "PostgreSQL Error Codes".
_GONE_STATES = ("08", "57P01", "57P02", "57P03")


def connection_lost(err: BaseException) -> bool:
    """True when ``err`` says the database connection is gone or the server cannot be
    reached (PostgreSQL restarted, a backend terminated, a network cut): the same work
    may succeed on a new connection. SQLite's errors never are: a file has nothing to
    reconnect to, and "database is locked" has already waited ``busy_timeout``."""
    if not isinstance(err, OperationalError | InterfaceError):
        return False
    if err.connection_invalidated:
        return True
    orig = err.orig
    if not type(orig).__module__.startswith("psycopg"):
        return False
    state = getattr(orig, "sqlstate", None)
    return state is None or state.startswith(_GONE_STATES)


def _reason(err: BaseException) -> str:
    orig = err.orig if isinstance(err, DBAPIError) else err
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def lost(err: BaseException, what: str, *, after: float | None = None) -> DatabaseError:
    """The one-line DatabaseError for a connection lost while doing ``what``."""
    waited = "" if after is None else f" and it did not come back within {after:g} s"
    return DatabaseError(f"lost the database connection while {what} ({_reason(err)}){waited}")


def rollback_quietly(session: Session) -> None:
    """Roll back, when the connection may be gone already (nothing to keep then)."""
    with contextlib.suppress(SQLAlchemyError):
        session.rollback()


@contextmanager
def one_line_when_lost(what: str) -> Iterator[None]:
    """Turn a lost connection escaping the block into a one-line DatabaseError."""
    try:
        yield
    except (OperationalError, InterfaceError) as err:
        if not connection_lost(err):
            raise
        raise lost(err, what) from err


def retry_when_lost(
    session: Session,
    work: Callable[[], T],
    *,
    seconds: float,
    what: str,
    undo: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``work`` (one transaction's worth, ending in a commit or only reading) and, when
    the connection is lost, roll back, ``undo`` what ``work`` changed outside the
    database, wait and run it again on a new connection: backoff from 0.1 s doubling to
    5 s, for at most ``seconds`` after the first failure (0: no retry). Then raise
    DatabaseError in one line, naming ``what`` and the database's words.
    """
    delay, deadline = 0.1, None
    while True:
        try:
            return work()
        except (OperationalError, InterfaceError) as err:
            if not connection_lost(err):
                raise
            rollback_quietly(session)
            if undo is not None:
                undo()
            now = time.monotonic()
            deadline = now + seconds if deadline is None else deadline
            if now + delay > deadline:
                raise lost(err, what, after=seconds) from err
            log.warning("database connection lost while %s (%s); retrying", what, _reason(err))
            sleep(delay)
            delay = min(delay * 2, 5.0)
