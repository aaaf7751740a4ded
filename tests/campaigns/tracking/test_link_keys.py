"""campaigns/tracking/link_keys.py: the link-key read of a reader's first click."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.tracking.link_keys import LinkKeyReader
from tests.support.subscribers import make_subscriber


def test_a_readers_link_key_is_read(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        reader = make_subscriber(session, "reader@example.com")
        session.commit()
    keys = LinkKeyReader(engine)
    assert keys.read(reader.id or 0) == reader.link_key
    keys.close()


def test_a_subscriber_id_no_row_has_reads_none(engine: Engine) -> None:
    keys = LinkKeyReader(engine)
    assert keys.read(987654) is None
    keys.close()


def test_a_key_changed_after_a_read_is_read_anew(engine: Engine) -> None:
    # No snapshot is kept between reads (autocommit, or the read's transaction ended).
    with Session(engine, expire_on_commit=False) as session:
        reader = make_subscriber(session, "reader@example.com")
        session.commit()
    keys = LinkKeyReader(engine)
    keys.read(reader.id or 0)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE subscriber SET link_key = 'renewed' WHERE id = :i"), {"i": reader.id}
        )
    assert keys.read(reader.id or 0) == "renewed"
    keys.close()


def test_a_connection_the_server_ended_is_replaced(pg_engine: Engine) -> None:
    with Session(pg_engine, expire_on_commit=False) as session:
        reader = make_subscriber(session, "reader@example.com")
        session.commit()
    keys = LinkKeyReader(pg_engine)
    keys.read(reader.id or 0)
    pid = keys._conn.driver_connection.info.backend_pid
    with pg_engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    assert keys.read(reader.id or 0) == reader.link_key
    keys.close()
