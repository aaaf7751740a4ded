"""A fast fake SendGrid v3 Mail Send server for the benchmark, in its own process.

It is not the strict test fake (``tests/support/fake_sendgrid.py``): it checks only what a
benchmark needs to trust its figures (the bearer key, the JSON shape, at most 1000
personalizations) and answers 202 with an ``X-Message-Id``. It counts every recipient
and every address it has seen before, so the harness can prove exactly-once delivery.
Only the bearer key and the outline of the body are checked before the 202 goes out;
the full JSON parse and the counting happen right after, so the server's parse time is
not on the sender's critical path (SendGrid, too, accepts first and processes later);
``GET /__stats`` returns the counts and the server's own CPU time, so a reader sees
whether the server or the sender was the limit.

Run: ``python -m bench.fake_sendgrid_server --api-key KEY`` prints the bound port on
its first line of stdout, then serves until SIGTERM. It imports only the standard library
and pysimdjson, so it starts in a fraction of a second. On the benchmark's two cores the
peer takes CPU from the sender it measures (the real SendGrid
parses on its own machines), so it parses as cheaply as a full check allows: simdjson
validates the whole body (structure and UTF-8) and the shape checks walk its lazy view,
turning into Python objects only the few values they look at. That was 0.8 ms a request
against 2.4 ms for ``orjson.loads`` (which builds ~30,000 objects per 1000 recipients)
and about 5 ms for ``json.loads``; for the same reason the cyclic garbage collector is off.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import simdjson

from bench.orphans import stop_when_orphaned

SEND_PATH = "/v3/mail/send"
STATS_PATH = "/__stats"
MAX_PERSONALIZATIONS = 1000
MAX_BODY = 30 * 1024 * 1024  # SendGrid's limit on the whole request
REASONS = {202: "Accepted", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


@dataclass
class Counts:
    requests: int = 0
    rejected: int = 0
    invalid_after_accept: int = 0
    recipients: int = 0
    duplicates: int = 0
    body_bytes: int = 0
    max_personalizations: int = 0
    first_request_at: float | None = None
    last_request_at: float | None = None
    errors: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "invalid_after_accept": self.invalid_after_accept,
            "recipients": self.recipients,
            "distinct_recipients": len(self.seen),
            "duplicates": self.duplicates,
            "body_bytes": self.body_bytes,
            "max_personalizations": self.max_personalizations,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "active_seconds": round((self.last_request_at or 0) - (self.first_request_at or 0), 3),
            "errors": self.errors[-5:],
        }


def _problem(payload: Any) -> tuple[str | None, list[str]]:
    """The first shape error of a mail/send body (or None), and its recipient addresses.

    ``payload`` is simdjson's lazy view (``simdjson.Object``/``Array``; scalars are Python's).
    """
    if not isinstance(payload, simdjson.Object):
        return "body is not a JSON object", []
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, simdjson.Array) or not len(personalizations):
        return "personalizations: required, a non-empty list", []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        return f"personalizations: more than {MAX_PERSONALIZATIONS}", []
    sender = payload.get("from")
    if not isinstance(sender, simdjson.Object) or not sender.get("email"):
        return "from.email: required", []
    if not payload.get("template_id") and not _has_content(payload.get("content")):
        return "content: required (type and value)", []
    has_subject = bool(payload.get("subject"))
    addresses: list[str] = []
    for index, block in enumerate(personalizations):
        to = block.get("to") if isinstance(block, simdjson.Object) else None
        if not isinstance(to, simdjson.Array) or not len(to):
            return f"personalizations.{index}.to: required", []
        if not has_subject and not block.get("subject"):
            return f"personalizations.{index}.subject: required", []
        for person in to:
            email = person.get("email") if isinstance(person, simdjson.Object) else None
            if not email or not isinstance(email, str):
                return f"personalizations.{index}.to.email: required", []
            addresses.append(email.lower())
    return None, addresses


def _has_content(content: Any) -> bool:
    """A non-empty list of parts, each with a non-empty value."""
    return (
        isinstance(content, simdjson.Array)
        and len(content) > 0
        and all(isinstance(part, simdjson.Object) and part.get("value") for part in content)
    )


class FakeSendGrid:
    def __init__(self, api_key: str) -> None:
        self.expected_auth = f"Bearer {api_key}".encode()
        self.counts = Counts()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; True when the client wants the connection kept open."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            await self._reply(writer, 413, {"errors": [{"message": "too large"}]}, close=True)
            return False
        body = await reader.readexactly(length) if length else b""
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if method == "GET" and path == STATS_PATH:
            await self._reply(writer, 200, self.counts.as_dict(), close=not keep)
        elif method == "POST" and path.split("?", 1)[0] == SEND_PATH:
            status, answer = self._accept(headers, body)
            # write() sends at once; counting before drain() keeps /__stats race-free.
            self._write_reply(writer, status, answer, close=not keep, message_id=status == 202)
            if status == 202:
                self._count(body)
            await writer.drain()
        else:
            await self._reply(writer, 404, {"errors": [{"message": "not found"}]}, close=not keep)
        return keep

    def _accept(self, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        """The cheap checks made before answering; the full parse happens after the reply."""
        counts = self.counts
        now = time.monotonic()
        counts.first_request_at = counts.first_request_at or now
        counts.last_request_at = now
        counts.requests += 1
        counts.body_bytes += len(body)
        if headers.get("authorization", "").encode() != self.expected_auth:
            counts.rejected += 1
            return 401, {"errors": [{"message": "authorization required", "field": None}]}
        if not headers.get("content-type", "").startswith("application/json") or not (
            body.startswith(b"{") and body.rstrip().endswith(b"}") and b'"personalizations"' in body
        ):
            counts.rejected += 1
            counts.errors.append("body is not a mail/send JSON object")
            return 400, {"errors": [{"message": "invalid JSON body", "field": None}]}
        return 202, None

    def _count(self, body: bytes) -> None:
        """Parse an accepted body and count its recipients (off the sender's critical path).

        A body that turns out malformed is counted in ``invalid_after_accept``, which
        makes the harness's exactly-once check fail rather than pass silently.
        """
        counts = self.counts
        parser = simdjson.Parser()  # a view holds its parser: one each, never reused
        try:
            payload = parser.parse(body)
        except ValueError:  # malformed JSON or UTF-8 (UnicodeDecodeError is one too)
            payload = None
        problem, addresses = _problem(payload)
        if problem is not None:
            counts.invalid_after_accept += 1
            counts.errors.append(problem)
            return
        counts.max_personalizations = max(
            counts.max_personalizations, len(payload["personalizations"])
        )
        del payload
        seen = counts.seen
        before = len(seen)
        seen.update(addresses)
        counts.recipients += len(addresses)
        counts.duplicates += len(addresses) - (len(seen) - before)

    async def _reply(
        self, writer: asyncio.StreamWriter, status: int, answer: Any, *, close: bool
    ) -> None:
        self._write_reply(writer, status, answer, close=close)
        await writer.drain()

    def _write_reply(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        answer: Any,
        *,
        close: bool,
        message_id: bool = False,
    ) -> None:
        body = b"" if answer is None else json.dumps(answer).encode()
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        if message_id:
            lines.append(f"X-Message-Id: bench{self.counts.requests:016x}")
        lines.append(f"Content-Length: {len(body)}")
        if body:
            lines.append("Content-Type: application/json")
        lines.append("Connection: close" if close else "Connection: keep-alive")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


async def serve(api_key: str, host: str, port: int) -> None:
    fake = FakeSendGrid(api_key)
    server = await asyncio.start_server(fake.handle, host, port, backlog=256)
    bound = server.sockets[0].getsockname()[1]
    print(bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = loop.create_task(stop_when_orphaned(stop))  # a SIGKILLed harness
    async with server:
        await stop.wait()
    watch.cancel()


class FakeSendGridProcess:
    """Starts the server in a child process and reads its counts (used by the harness)."""

    def __init__(self, api_key: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_sendgrid_server", "--api-key", api_key],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"fake SendGrid server did not start (said {line!r})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + STATS_PATH, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> FakeSendGridProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # Each parsed body is a tree of about 10,000 dicts and lists, freed by reference
    # counting; the cyclic collector walking them was a quarter of the peer's CPU, taken
    # from the sender it measures on the same cores (bench/README.md, "fifth pass").
    gc.disable()
    asyncio.run(serve(args.api_key, args.host, args.port))


if __name__ == "__main__":
    main()
