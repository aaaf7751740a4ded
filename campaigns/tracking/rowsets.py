"""A chunk's rows as one bound parameter: a JSON array the database unpacks into a table.

A webhook request may carry 100,000 events. Bound row by row (``executemany``), most of
the time goes to per-row parameter handling in SQLAlchemy and the driver, and on
PostgreSQL to one protocol message per row. Here a chunk's rows travel as one JSON text
and the database turns them into a table to ``INSERT ... SELECT`` from or ``UPDATE ...
FROM``: PostgreSQL's ``json_to_recordset`` (with a column definition list), SQLite's
``json_each`` with ``json_extract`` per column (SQLite >= 3.33 for ``UPDATE ... FROM``).
(SQLite's own ``executemany`` over tuples was tried: 40% slower here.)

Values are encoded as each database reads them: on SQLite a timestamp is the text
SQLAlchemy stores (the column type's bind processor for the dialect makes it, so stored
and new values compare as text of one format), on PostgreSQL an RFC 3339 string that
``timestamptz`` parses; JSON stays JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect


class RowSet:
    """A table of ``columns`` (name -> SQLAlchemy type) read from the bound parameter ``name``."""

    def __init__(self, dialect: Dialect, name: str, columns: Mapping[str, Any]) -> None:
        self.name = name
        self.postgres = dialect.name == "postgresql"
        rows = sa.bindparam(name, type_=sa.Text)
        self._encoders: dict[str, Callable[[Any], Any]] = {}
        if self.postgres:
            table = (
                sa.func.json_to_recordset(sa.cast(rows, sa.JSON))
                .table_valued(*(sa.column(n, t) for n, t in columns.items()))
                .render_derived(name=name, with_types=True)
            )
        else:
            each = sa.func.json_each(rows).table_valued("value")
            table = sa.select(
                *(sa.func.json_extract(each.c.value, f"$.{n}").label(n) for n in columns)
            ).subquery(name)
            self._encoders = {
                n: _processor(t, dialect) for n, t in columns.items() if _is(t, sa.DateTime)
            }
        self.c: Any = table.c

    def execute(
        self, connection: Connection, statement: Any, rows: Iterable[Mapping[str, Any]]
    ) -> Any:
        """Run ``statement`` (written against :attr:`c`) for ``rows``; missing names are NULL."""
        return connection.execute(statement, {self.name: _dumps(self._encoded(rows))})

    def _encoded(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        rows = [dict(r) for r in rows]
        for name, encoder in self._encoders.items():
            memo: dict[Any, Any] = {}  # the events of a batch share few distinct seconds
            for row in rows:
                value = row.get(name)
                if value is not None:
                    encoded = memo.get(value)
                    if encoded is None:
                        encoded = memo[value] = encoder(value)
                    row[name] = encoded
        return rows


def among(column: Any, values: Iterable[Any], postgres: bool) -> sa.ColumnElement[bool]:
    """``column IN (...)`` of a chunk's values, as one parameter rather than thousands of
    bound ones (each compiled and processed per execution): on PostgreSQL an array
    (``= ANY(:values)``), on SQLite a JSON array (``IN (SELECT value FROM json_each(:v))``).
    """
    values = list(values)
    if not values:
        return sa.false()
    if postgres:
        kind = sa.Integer if isinstance(values[0], int) else sa.String
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(kind)))
    each = sa.func.json_each(sa.bindparam(None, _dumps(values), type_=sa.Text))
    return column.in_(sa.select(each.table_valued("value").c.value))


def _is(type_: Any, kind: type) -> bool:
    return isinstance(type_, kind) or isinstance(getattr(type_, "impl", None), kind)


def _processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any]:
    """The column type's bind processor for this dialect (``dialect_impl``: the generic
    type's own would leave a datetime for the driver to format its way)."""
    processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else (lambda value: value)


def _dumps(value: Any) -> str:
    """JSON text; orjson, or the standard library for what orjson refuses (an integer
    beyond 64 bits, a lone surrogate)."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
