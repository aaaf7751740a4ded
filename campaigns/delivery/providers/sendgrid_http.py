"""What travels over HTTP to and from SendGrid, around the official client's quirks.

Going out: a request body we serialised ourselves (orjson), handed to python_http_client
so that it neither serialises it again nor formats it whole into a debug line.
Coming back with an error status: ``Retry-After`` in seconds or as an HTTP date (RFC 9110
10.2.3), else ``X-RateLimit-Reset`` (an epoch second, SendGrid's rate-limit headers), and
a JSON body ``{"errors": [{"message", "field"}]}``.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

# Not exactly "application/json", so the client sends our bytes instead of json.dumps-ing
# a dict (python_http_client/client.py compares the header with ==). SendGrid accepts it.
CONTENT_TYPE = "application/json; charset=utf-8"


class BodyBytes(bytearray):
    """The encoded request body; formats as a summary, never as 500 KB of text.

    python_http_client evaluates ``'PAYLOAD: {data}'.format(data=request.data)`` on every
    request whatever the log level; for plain bytes that is a repr of the whole body.
    A bytearray, so that :meth:`of` writes the pieces into one buffer: each copy of a
    850 KB body (concatenation, a bytes subclass made from bytes) was fresh memory to
    fault in, about a tenth of a SendGrid send's CPU (bench/README.md, "fifth pass").
    urllib and http.client take any buffer: its length, then one ``sendall``.
    """

    @classmethod
    def of(cls, *pieces: bytes | memoryview) -> BodyBytes:
        """The pieces one after the other, copied once into a buffer of the exact size."""
        body = cls(sum(map(len, pieces)))
        with memoryview(body) as view:
            at = 0
            for piece in pieces:
                view[at : at + len(piece)] = piece
                at += len(piece)
        return body

    def _summary(self) -> str:
        return f"<SendGrid mail/send JSON, {len(self)} bytes>"

    def __format__(self, spec: str) -> str:
        return self._summary()

    __repr__ = __str__ = _summary


class SerializedBody(str):
    """A request body already serialised: the client calls ``.encode('utf-8')`` on it."""

    def __new__(cls, payload: BodyBytes) -> SerializedBody:
        body = super().__new__(cls, f"<SendGrid mail/send JSON, {len(payload)} bytes>")
        body.payload = payload
        return body

    payload: BodyBytes

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> BodyBytes:  # type: ignore[override]
        return self.payload


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
