"""A minimal SMTP sink for the benchmark: counts messages and recipients, discards the rest.

aiosmtpd spends about 1.1 ms of CPU per 36 KB message, so it cannot measure a sender
that does 2,500 messages a second. This sink speaks just enough SMTP (EHLO, HELO, MAIL,
RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH; pipelined commands are answered in
one write) on a bare
``asyncio.Protocol``: during DATA it only looks for the ``CRLF.CRLF`` terminator, never
copies or parses the message. Its own CPU time is part of its counts, so a reader sees
whether the sink or the sender was the limit.

Side channel: the non-standard verb ``XSTATS`` answers ``250 {json counts}``.
Run: ``python -m bench.smtp_sink`` prints the bound port on its first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.orphans import stop_when_orphaned

TERMINATOR = b"\r\n.\r\n"
MAX_LINE = 4096
EHLO_REPLY = b"\r\n".join(
    [b"250-bench-sink", b"250-PIPELINING", b"250-8BITMIME", b"250-SMTPUTF8", b"250 SIZE 52428800"]
)


@dataclass
class Counts:
    connections: int = 0
    messages: int = 0
    recipients: int = 0
    duplicates: int = 0
    message_bytes: int = 0
    first_message_at: float | None = None
    last_message_at: float | None = None
    seen: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "connections": self.connections,
            "messages": self.messages,
            "recipients": self.recipients,
            "distinct_recipients": len(self.seen),
            "duplicates": self.duplicates,
            "message_bytes": self.message_bytes,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "cpu_user_seconds": round(usage.ru_utime, 3),
            "active_seconds": round((self.last_message_at or 0) - (self.first_message_at or 0), 3),
        }


class SinkProtocol(asyncio.Protocol):
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = b""
        self.in_data = False
        self.tail = b""  # last bytes of DATA seen, to find a terminator split across reads
        self.size = 0
        self.recipients: list[str] = []
        self.sender: str | None = None
        self.out: list[bytes] = []
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.counts.connections += 1
        self.transport.write(b"220 bench-sink ESMTP ready\r\n")

    def data_received(self, data: bytes) -> None:
        # Replies to pipelined commands go out in one write (one syscall per read).
        self.out = []
        self.closing = False
        while data and not self.closing:
            data = self._data(data) if self.in_data else self._command(data)
        if self.out:
            self.transport.write(b"".join(self.out))
        if self.closing:
            self.transport.close()

    def _data(self, data: bytes) -> bytes:
        window = self.tail + data
        end = window.find(TERMINATOR)
        if end < 0:
            self.size += len(data)
            self.tail = window[-4:]
            return b""
        consumed = end + len(TERMINATOR) - len(self.tail)
        self.size += consumed
        self._message_done()
        return data[consumed:]

    def _message_done(self) -> None:
        counts = self.counts
        now = time.monotonic()
        counts.first_message_at = counts.first_message_at or now
        counts.last_message_at = now
        counts.messages += 1
        counts.message_bytes += self.size
        seen = counts.seen
        for address in self.recipients:
            counts.recipients += 1
            if address in seen:
                counts.duplicates += 1
            else:
                seen.add(address)
        self.in_data = False
        self.recipients = []
        self.sender = None
        self.out.append(b"250 2.0.0 Ok: queued\r\n")

    def _command(self, data: bytes) -> bytes:
        buffer = self.buffer + data
        newline = buffer.find(b"\r\n")
        if newline < 0:
            if len(buffer) > MAX_LINE:
                self._reply(b"500 5.5.2 line too long", close=True)
                return b""
            self.buffer = buffer
            return b""
        line, rest = buffer[:newline], buffer[newline + 2 :]
        self.buffer = b""
        self._dispatch(line.decode("utf-8", "replace"))
        return rest

    def _dispatch(self, line: str) -> None:
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self._reply(EHLO_REPLY)
        elif verb == "HELO":
            self._reply(b"250 bench-sink")
        elif verb == "MAIL":
            self.sender = _address(argument)
            self.recipients = []
            self._reply(b"250 2.1.0 Ok")
        elif verb == "RCPT":
            if self.sender is None:
                self._reply(b"503 5.5.1 MAIL first")
                return
            self.recipients.append(_address(argument).lower())
            self._reply(b"250 2.1.5 Ok")
        elif verb == "DATA":
            if not self.recipients:
                self._reply(b"503 5.5.1 RCPT first")
                return
            self.in_data = True
            self.tail = b"\r\n"  # the CRLF before "." may be the one ending DATA itself
            self.size = 0
            self._reply(b"354 End data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self.sender, self.recipients = None, []
            self._reply(b"250 2.0.0 Ok")
        elif verb == "NOOP":
            self._reply(b"250 2.0.0 Ok")
        elif verb == "QUIT":
            self._reply(b"221 2.0.0 Bye", close=True)
        elif verb == "XSTATS":
            self._reply(b"250 " + json.dumps(self.counts.as_dict()).encode())
        else:
            self._reply(b"502 5.5.2 command not implemented")

    def _reply(self, line: bytes, *, close: bool = False) -> None:
        self.out.append(line + b"\r\n")
        self.closing = self.closing or close


def _address(argument: str) -> str:
    """The address of ``FROM:<a@b> SIZE=1`` or ``TO:<a@b>``."""
    start, end = argument.find("<"), argument.find(">")
    if start >= 0 and end > start:
        return argument[start + 1 : end]
    return argument.partition(":")[2].strip()


async def serve(host: str, port: int) -> None:
    counts = Counts()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(counts), host, port, backlog=256)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = loop.create_task(stop_when_orphaned(stop))  # a SIGKILLed harness
    async with server:
        await stop.wait()
    watch.cancel()


def _read_reply(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


class SmtpSinkProcess:
    """Starts the sink in a child process and reads its counts (used by the harness)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.smtp_sink"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"SMTP sink did not start (said {line!r})")
        self.port = int(line)
        self.url = f"smtp://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            _read_reply(sock)  # the greeting
            sock.sendall(b"XSTATS\r\n")
            answer = _read_reply(sock)
            sock.sendall(b"QUIT\r\n")
            _read_reply(sock)
        if not answer.startswith("250 "):
            raise RuntimeError(f"SMTP sink refused XSTATS: {answer!r}")
        return json.loads(answer[4:])

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

    def __enter__(self) -> SmtpSinkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
