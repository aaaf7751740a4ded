"""JSON-lines logs for the long-running doors (the scheduler service).

One JSON object per line on stderr: easy to grep, and journald, Loki or CloudWatch parse
it as is. Structured fields travel in ``extra={"fields": {...}}``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


class JsonLines(logging.Formatter):
    """ts, level, logger, msg, then the record's ``fields`` (and ``exc`` on errors)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=_plain)


def _plain(value: object) -> str:
    """Times as ISO 8601 (what log tools parse), anything else as its str()."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def configure(
    loggers: Iterable[str], *, level: int = logging.INFO, quiet: Iterable[str] = ()
) -> None:
    """Send these loggers (and ``quiet`` ones, warnings only) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    quiet = set(quiet)
    for name in [*loggers, *quiet]:
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonLines) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(logging.WARNING if name in quiet else level)
        logger.propagate = False
