"""Many rows as one bound parameter: a JSON array the database unpacks into a table.

A webhook request may carry 100,000 events. Bound row by row (``executemany``), most of
the time goes to per-row parameter handling in SQLAlchemy and the driver, and on
PostgreSQL to one protocol message per row. Here a chunk's rows travel as one JSON text
and the database turns them into a table to ``INSERT ... SELECT`` from or ``UPDATE ...
FROM``: PostgreSQL's ``json_to_recordset`` (with a column definition list), SQLite's
``json_each`` with ``json_extract`` per column (SQLite >= 3.33 for ``UPDATE ... FROM``).

Values are encoded as each database reads them: on SQLite a timestamp is the text
SQLAlchemy stores (the column type's own bind processor makes it, so comparisons of
stored and new values stay text comparisons of one format), on PostgreSQL an RFC 3339
string that ``timestamptz`` parses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class RowSet:
    """A table of ``columns`` (name -> SQLAlchemy type) read from the bound parameter ``name``."""

    def __init__(self, dialect: Dialect, name: str, columns: Mapping[str, Any]) -> None:
        self.name = name
        self.postgres = dialect.name == "postgresql"
        self.names = list(columns)
        rows = sa.bindparam(name, type_=sa.Text)
        if self.postgres:
            self.table: Any = (
                sa.func.json_to_recordset(sa.cast(rows, sa.JSON))
                .table_valued(*(sa.column(n, t) for n, t in columns.items()))
                .render_derived(name=name, with_types=True)
            )
            self._encoders: dict[str, Callable[[Any], Any]] = {}
        else:
            each = sa.func.json_each(rows).table_valued("value")
            self.table = sa.select(
                *(sa.func.json_extract(each.c.value, f"$.{n}").label(n) for n in columns)
            ).subquery(name)
            self._encoders = {
                n: _sqlite_encoder(t, dialect)
                for n, t in columns.items()
                if isinstance(t, sa.DateTime) or isinstance(getattr(t, "impl", None), sa.DateTime)
            }

    @property
    def c(self) -> Any:
        return self.table.c

    def params(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """The bound parameter for ``rows`` (missing names are NULL)."""
        encoders = self._encoders
        if encoders:
            rows = [
                {
                    n: (encoders[n](v) if n in encoders and v is not None else v)
                    for n, v in r.items()
                }
                for r in rows
            ]
        else:
            rows = list(rows)
        try:
            text = orjson.dumps(rows).decode()
        except (orjson.JSONEncodeError, TypeError):  # an integer beyond 64 bits, say
            text = json.dumps(rows, default=_iso)
        return {self.name: text}


def among(column: Any, values: Iterable[Any], postgres: bool) -> sa.ColumnElement[bool]:
    """``column IN (...)`` of a chunk's values; on PostgreSQL one array parameter
    (``= ANY(:values)``), cheaper to plan than thousands of bound parameters."""
    values = list(values)
    if postgres and values:
        kind = sa.Integer if isinstance(values[0], int) else sa.String
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(kind)))
    return column.in_(values)


def _sqlite_encoder(type_: Any, dialect: Dialect) -> Callable[[Any], Any]:
    processor = type_.bind_processor(dialect)
    return processor if processor is not None else (lambda value: value)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
