"""SendGrid's answers read: how long to wait (Retry-After), what a refusal says.

Both read what the v3 API sends with an error status: ``Retry-After`` in seconds or as an
HTTP date (RFC 9110 10.2.3), else ``X-RateLimit-Reset`` (an epoch second, SendGrid's rate
limit headers), and a JSON body ``{"errors": [{"message", "field"}]}``.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any


def retry_after(headers: Any) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date) or X-RateLimit-Reset."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


def rejection(body: bytes | str | None) -> str:
    """'field X: message' from SendGrid's error JSON, else the raw body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        errors = json.loads(text).get("errors") or []
    except (ValueError, AttributeError):
        return text.strip()[:500] or "no details"
    parts = []
    for item in errors:
        field = item.get("field")
        message = item.get("message", "")
        parts.append(f"field {field!r}: {message}" if field else message)
    return "; ".join(parts) or text.strip()[:500]
