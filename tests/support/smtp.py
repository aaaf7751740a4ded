"""SMTP servers for provider tests: aiosmtpd with a recording handler, a strict pipelining
server, and a throwaway self-signed certificate for TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Sink:
    """aiosmtpd handler: collects messages; refuses addresses in ``refuse`` with their reply
    (those in ``defer_once`` with a 451, the first time only), drops the connection at RCPT
    of addresses in ``drop``; PIPELINING advertised if asked."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.drop: set[str] = set()
        self.defer_once: set[str] = set()
        self.sessions = 0
        self.servers: list[Any] = []
        self.logins: list[tuple[str, str, bool]] = []  # user, password, over TLS

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        self.servers.append(server)
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.drop:
            server.transport.close()
            return "421 4.3.0 going away"
        if address in self.refuse:
            return self.refuse[address]
        if address in self.defer_once:
            self.defer_once.discard(address)
            return "451 4.7.1 greylisted, try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        assert isinstance(auth_data, LoginPassword)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((user, password, session.ssl is not None))
        return AuthResult(success=(user, password) == ("ann", "s3cret"))

    def close_connections(self, controller: Controller) -> None:
        """Close every open connection from the server side, as an idle timeout does."""
        done = threading.Event()

        def close() -> None:
            for server in self.servers:
                if server.transport is not None:
                    server.transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close)
        assert done.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(handler: Sink, **kwargs: Any) -> Iterator[tuple[Controller, int]]:
    """aiosmtpd on 127.0.0.1 in its own thread; ``kwargs`` go to Controller / SMTP."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield controller, port
    finally:
        controller.stop()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class LazyPipeliningServer:
    """Answers MAIL and RCPT only once DATA has arrived, as RFC 2920 lets a server do.

    A client that waits for each reply before the next command hangs here; one that
    pipelines gets through. Messages are kept as (recipients, bytes as received)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LazyPipeliningServer:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.server = future.result(5)
        return self

    async def _start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._session, "127.0.0.1", self.port)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending: list[bytes] = []

        def flush() -> None:
            writer.write(b"".join(pending))
            pending.clear()

        writer.write(b"220 lazy ESMTP\r\n")
        recipients: list[str] = []
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                pending.append(b"250-lazy\r\n250 PIPELINING\r\n")
                flush()
            elif verb == b"MAIL":
                recipients = []
                pending.append(b"250 2.1.0 Ok\r\n")
            elif verb == b"RCPT":
                recipients.append(line.decode().partition("<")[2].partition(">")[0])
                pending.append(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                pending.append(b"354 go ahead\r\n")
                flush()
                data = await reader.readuntil(b"\r\n.\r\n")
                self.messages.append((recipients, data))
                pending.append(b"250 2.0.0 queued\r\n")
                flush()
            elif verb == b"QUIT":
                pending.append(b"221 bye\r\n")
                flush()
                break
            else:
                pending.append(b"250 Ok\r\n")
                flush()
            await writer.drain()
        writer.close()

    async def _stop(self) -> None:
        # On the server's own loop: Server.close from another thread races the loop's
        # own wake-up when the last connection ends (TypeError in asyncio's _wakeup).
        self.server.close()
        await self.server.wait_closed()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
