"""A fake SendGrid v3 Mail Send API: a real HTTP server on 127.0.0.1, in a thread.

It validates requests the way the real API does (Bearer auth, required fields, the
1000-personalization limit, no address twice in one request, custom_args size, string
values, 30 MB total), answers 202 with an X-Message-Id, records what it accepted and
counts deliveries per address. Faults are scripted: ``fail_next`` queues 429 / 5xx /
400 answers (with SendGrid-shaped error JSON), ``slow_next`` delays answers past a
client timeout, ``hold_after`` accepts the n-th request and then keeps the answer back
(the moment a crash hurts most).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import QuietHTTPServer

MAX_PERSONALIZATIONS = 1000
MAX_CUSTOM_ARGS = 10_000
MAX_BYTES = 30 * 1024 * 1024


class Invalid(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0


def error_body(errors: list[dict[str, Any]]) -> bytes:
    return json.dumps({"errors": errors}).encode()


def validate(body: Any) -> list[str]:
    """Raise Invalid like SendGrid would; return the recipients' addresses."""
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise Invalid("The personalizations field is required.", "personalizations")
    if len(personalizations) > MAX_PERSONALIZATIONS:
        raise Invalid(
            "The personalizations field may not have more than 1000 items.", "personalizations"
        )
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        raise Invalid("The from object must be provided for every email send.", "from.email")
    _check_content(body.get("content"))
    _check_tracking(body.get("tracking_settings", {}))
    _check_strings(body.get("headers", {}), "headers")
    _check_strings(body.get("custom_args", {}), "custom_args")
    seen: dict[str, None] = {}  # an ordered set
    for index, item in enumerate(personalizations):
        _check_personalization(body, f"personalizations.{index}", item, seen)
    return list(seen)


def _check_tracking(settings: Any) -> None:
    """tracking_settings as the v3 Mail Send reference has them: each a {"enable": bool}."""
    known = {"click_tracking", "open_tracking", "subscription_tracking", "ganalytics"}
    if not isinstance(settings, dict) or set(settings) - known:
        raise Invalid("Invalid tracking_settings.", "tracking_settings")
    for name, value in settings.items():
        if not isinstance(value, dict) or not isinstance(value.get("enable"), bool):
            raise Invalid("The enable field must be a boolean.", f"tracking_settings.{name}")


def _check_content(content: Any) -> None:
    if not isinstance(content, list) or not content:
        raise Invalid("Unless a valid template_id is provided, content is required.", "content")
    for index, part in enumerate(content):
        if not part.get("type") or not isinstance(part.get("value"), str) or not part["value"]:
            raise Invalid("The content value must be a string.", f"content.{index}.value")
    if [p["type"] for p in content][:1] != ["text/plain"] and any(
        p["type"] == "text/plain" for p in content
    ):
        raise Invalid("If present, text/plain must be first.", "content.0.type")


def _check_personalization(
    body: dict[str, Any], where: str, item: dict[str, Any], seen: dict[str, None]
) -> None:
    """One personalization; its addresses join ``seen`` (no address twice a request)."""
    if not body.get("subject") and not item.get("subject"):
        raise Invalid("The subject is required.", "subject")
    to = item.get("to")
    if not isinstance(to, list) or not to:
        raise Invalid("The to array is required for all personalization objects.", f"{where}.to")
    for kind in ("to", "cc", "bcc"):
        for person in item.get(kind, []):
            email = person.get("email")
            if not isinstance(email, str) or "@" not in email:
                raise Invalid("Does not contain a valid address.", f"{where}.{kind}")
            if email.lower() in seen:
                raise Invalid(
                    "Each email address in the personalization block should be unique "
                    "between to, cc, and bcc.",
                    f"{where}.{kind}",
                )
            seen[email.lower()] = None
    _check_strings(item.get("headers", {}), f"{where}.headers")
    _check_strings(item.get("substitutions", {}), f"{where}.substitutions")
    args = item.get("custom_args", {})
    _check_strings(args, f"{where}.custom_args")
    size = len(json.dumps({**body.get("custom_args", {}), **args}).encode())
    if size > MAX_CUSTOM_ARGS:
        raise Invalid("The custom_args may not exceed 10,000 bytes.", f"{where}.custom_args")


def _check_strings(mapping: Any, where: str) -> None:
    if not isinstance(mapping, dict):
        raise Invalid("must be an object", where)
    for key, value in mapping.items():
        if not isinstance(value, str):
            raise Invalid(f"Values must be strings ({key}).", f"{where}.{key}")


class FakeSendGrid:
    """Start with ``with FakeSendGrid(api_key) as fake:``; ``fake.url`` is its host."""

    def __init__(self, api_key: str = "SG.test-key") -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # accepted bodies
        self.deliveries: Counter[str] = Counter()  # address -> accepted how often
        self.attempts = 0  # every POST, accepted or not
        self.accepted = 0
        # (time.monotonic(), recipients) per accepted request: rates measured at the server.
        self.accepted_at: list[tuple[float, int]] = []
        self.faults: deque[Fault] = deque()
        self.hold: tuple[int, float] | None = None
        self.held = threading.Event()
        self.keep_bodies = True
        self.server = QuietHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeSendGrid:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---------------------------------------------------------------- scripting

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        for _ in range(count):
            self.faults.append(Fault(status, dict(headers or {}), list(errors or [])))

    def slow_next(self, seconds: float, *, count: int = 1) -> None:
        """The next answers come after ``seconds`` as 503, the request not accepted."""
        for _ in range(count):
            self.faults.append(Fault(503, delay=seconds))

    def hold_after(self, accepted: int, seconds: float) -> None:
        """Accept request number ``accepted`` (1-based), then keep its answer back."""
        self.hold = (accepted, seconds)

    @property
    def recipients(self) -> int:
        return sum(self.deliveries.values())

    def duplicates(self) -> dict[str, int]:
        return {a: n for a, n in self.deliveries.items() if n > 1}

    # ---------------------------------------------------------------- the server

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})


UNAUTHORIZED = error_body(
    [{"message": "The provided authorization grant is invalid, expired, or revoked", "field": None}]
)


class _Handler(BaseHTTPRequestHandler):
    """POST /v3/mail/send for one FakeSendGrid (``fake``, set per server)."""

    fake: FakeSendGrid
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the client may have given up (timeouts)

    def _refusal(self, fault: Fault | None, length: int) -> tuple[int, bytes, dict] | None:
        """The answer for a request refused before its body is read, if it is."""
        if self.path != "/v3/mail/send":
            return 404, error_body([{"message": "not found"}]), {}
        if self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            return 401, UNAUTHORIZED, {}
        if fault is not None:
            time.sleep(fault.delay)
            errors = fault.errors or [{"message": f"injected {fault.status}"}]
            return fault.status, error_body(errors), fault.headers
        media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type.lower() != "application/json":  # parameters such as charset: fine
            return 415, error_body([{"message": "Content-Type should be application/json"}]), {}
        if length > MAX_BYTES:
            return 413, error_body([{"message": "too large"}]), {}
        return None

    def do_POST(self) -> None:
        fake = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with fake.lock:
            fake.attempts += 1
            fault = fake.faults.popleft() if fake.faults else None
        refusal = self._refusal(fault, length)
        if refusal is not None:
            return self._answer(*refusal)
        try:
            body = json.loads(raw)
            addresses = validate(body)
        except (ValueError, Invalid) as err:
            where = getattr(err, "field", None)
            return self._answer(400, error_body([{"message": str(err), "field": where}]))
        with fake.lock:
            if fake.keep_bodies:
                fake.requests.append(body)
            fake.deliveries.update(addresses)
            fake.accepted += 1
            fake.accepted_at.append((time.monotonic(), len(addresses)))
            number = fake.accepted
            hold = fake.hold
        if hold is not None and number == hold[0]:
            fake.held.set()
            time.sleep(hold[1])
        self._answer(202, b"", {"X-Message-Id": uuid.uuid4().hex[:22]})
