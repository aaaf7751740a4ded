"""Fetching a URL that someone else named: where we may connect, and for how long.

Feed URLs, and the images and links that preflight checks, come from outside: a feed can
name ``http://169.254.169.254/`` (a cloud's metadata service), the database's host or an
admin page on localhost, and a fetch on the service's behalf would reach them (server-side
request forgery; OWASP's SSRF Prevention Cheat Sheet). Every fetch here therefore:

- resolves the host once and connects to an address it checked, never looking the name
  up again (a second lookup is what DNS rebinding answers differently);
- refuses loopback, private, link-local, reserved and other non-public addresses unless
  ``allow_private`` (NEWSLETTER_FETCH_ALLOW_PRIVATE) is on, and unspecified (0.0.0.0
  reaches this host), multicast, 6to4 (2002::/16, which tunnels to any IPv4 address) and
  site-local (fec0::/10) addresses always; a caller may refuse link-local addresses even
  with ``allow_private`` (``allow_link_local=False``: outgoing webhooks, since
  169.254.169.254 is a cloud's metadata service);
- follows redirects itself, at most MAX_REDIRECTS, to http(s) only, each hop resolved and
  checked like the first;
- runs on one deadline for the whole fetch: connect, TLS, redirects, headers and every
  byte. A per-read timeout never ends a server that trickles a byte every two seconds;
  here a watchdog shuts the socket when the time is up.

Proxies named in the environment are not used: the policy must see the address we connect
to. The caller reads the body through :meth:`Response.read` or :meth:`Response.body`.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from newsletter.errors import FetchFailed, FetchRefused, FetchTimedOut, FetchTooLarge

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})  # RFC 9110 15.4
READ_CHUNK = 64 * 1024
ALLOW_PRIVATE = "NEWSLETTER_FETCH_ALLOW_PRIVATE"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressInfo = tuple[Any, ...]  # one of socket.getaddrinfo's 5-tuples
Resolver = Callable[..., list[AddressInfo]]

# Refused unless private networks are allowed, checked in this order (127.0.0.1 and
# 240.0.0.1 are also "private" to ipaddress; the first name that fits is the one given).
_NOT_PUBLIC = (
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private address"),
)
# Refused even with allow_private: deprecated ranges no server should be on, which
# Python 3.11's ipaddress counts as global. 6to4 (RFC 3056, deprecated by RFC 7526)
# carries an IPv4 address, e.g. 2002:a9fe:a9fe:: is 169.254.169.254; site-local (RFC 3879).
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
_ALWAYS_REFUSED = ("an unspecified", "a multicast", "a 6to4", "a site-local", "a link-local")


def address_refusal(
    address: IPAddress, *, allow_private: bool, allow_link_local: bool = True
) -> str | None:
    """Why a fetch may not connect to ``address`` ("a loopback address", ...), or None.

    IPv4-mapped IPv6 (``::ffff:10.0.0.1``) is judged as the IPv4 address it carries.
    Unspecified, multicast, 6to4 and site-local addresses are refused even with
    ``allow_private``: none is a server (on Linux, 0.0.0.0 connects to this host); so are
    link-local ones (169.254.0.0/16, fe80::/10) when ``allow_link_local`` is False.
    Ranges: RFC 6890's registry, as Python's ``ipaddress`` has it, plus the two above.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SIX_TO_FOUR:
        return "a 6to4 address"
    if address in _SITE_LOCAL:
        return "a site-local address"
    if address.is_link_local and not allow_link_local:
        return "a link-local address"
    if allow_private:
        return None
    for test, words in _NOT_PUBLIC:
        if getattr(address, test):
            return words
    return None if address.is_global else "not a public address"


def allowed_addresses(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolve: Resolver = socket.getaddrinfo,
    where: str | None = None,
    allow_link_local: bool = True,
) -> list[AddressInfo]:
    """The addresses of ``host`` a fetch may connect to: the one policy of every fetch.

    Resolves once (``resolve`` has getaddrinfo's signature) and keeps the addresses the
    policy allows, in the resolver's order; the caller connects to these and to nothing
    it looks up again. Raises FetchFailed when the name does not resolve, FetchRefused
    when no address is allowed (naming the first refused one and why).
    """
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise FetchFailed(f"the host name {host!r} does not resolve", where=where) from err
    allowed: list[AddressInfo] = []
    refused: tuple[IPAddress, str] | None = None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop a scope id
        why = address_refusal(
            address, allow_private=allow_private, allow_link_local=allow_link_local
        )
        if why is None:
            allowed.append(info)
        elif refused is None:
            refused = (address, why)
    if allowed:
        return allowed
    if refused is None:
        raise FetchFailed(f"the host name {host!r} does not resolve", where=where)
    address, why = refused
    named = (
        f"{address} is {why}" if str(address) == host else f"{host} resolves to {address}, {why}"
    )
    hint = "" if why.startswith(_ALWAYS_REFUSED) else f" ({ALLOW_PRIVATE})"
    raise FetchRefused(f"refused: {named}{hint}", where=where)


class _Deadline:
    """One clock for a whole fetch; when it runs out, the watched sockets are shut down.

    Shutting a socket down (on a duplicate of its descriptor: TLS wraps the original)
    wakes a thread blocked reading it, which a socket timeout per read never would for a
    server that sends a byte just before each timeout.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds left; raises FetchTimedOut when none are."""
        left = self.ends - time.monotonic()
        if left <= 0:
            self.expired = True
            raise self.timed_out(answered=False)
        return left

    def timed_out(self, *, answered: bool, where: str | None = None) -> FetchTimedOut:
        words = "the answer did not finish" if answered else "no answer"
        return FetchTimedOut(f"{words} within {self.seconds:g} s", where=where)

    def watch(self, sock: socket.socket) -> None:
        duplicate = sock.dup()
        with self._lock:
            self._watched.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._watched:
                _shut(sock)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._watched:
                sock.close()
            self._watched.clear()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected (yet, or any more)
        sock.shutdown(socket.SHUT_RDWR)


class _Connection(http.client.HTTPConnection):
    """HTTP over a socket that ``open_socket`` made (to an address the policy allowed)."""

    def __init__(self, host: str, port: int, *, open_socket: Callable[[], socket.socket]):
        super().__init__(host, port)
        self._open_socket = open_socket

    def connect(self) -> None:
        self.sock = self._open_socket()


class _TlsConnection(_Connection):
    """HTTPS: the certificate is verified against the URL's host name, not the address."""

    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        self.sock = _tls_context().wrap_socket(self._open_socket(), server_hostname=self.host)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class Response:
    """An answer: ``url`` (after redirects), ``status``, ``reason``, ``headers``; the body
    is read within the fetch's deadline."""

    def __init__(self, url: str, raw: http.client.HTTPResponse, clock: _Deadline) -> None:
        self.url = url
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._raw = raw
        self._clock = clock

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` bytes; b"" at the end. FetchTimedOut when the deadline cut it."""
        data = self._raw.read(amount)
        if self._clock.expired:  # a shut socket reads as the end: it was not
            raise self._clock.timed_out(answered=True, where=self.url)
        return data

    def body(self, max_bytes: int) -> bytes:
        """The whole body, at most ``max_bytes``: FetchTooLarge on a larger Content-Length
        before reading, or as soon as more bytes than that have arrived."""
        declared = (self.headers.get("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchTooLarge(
                f"the answer is {int(declared):,} bytes (Content-Length), over the limit of "
                f"{max_bytes:,} bytes",
                where=self.url,
            )
        out = io.BytesIO()
        while chunk := self.read(min(READ_CHUNK, max_bytes + 1 - out.tell())):
            out.write(chunk)
            if out.tell() > max_bytes:
                raise FetchTooLarge(
                    f"the answer is over the limit of {max_bytes:,} bytes (stopped reading "
                    f"at {out.tell():,})",
                    where=self.url,
                )
        return out.getvalue()


@contextmanager
def open_url(
    url: str,
    *,
    deadline_seconds: float,
    allow_private: bool,
    user_agent: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    max_redirects: int = MAX_REDIRECTS,
    resolve: Resolver = socket.getaddrinfo,
    body: bytes | None = None,
    allow_link_local: bool = True,
) -> Iterator[Response]:
    """GET or HEAD ``url`` (or POST ``body``: outgoing webhooks) under the policy above;
    yields the final answer, any status.

    Redirects keep the method (and the body). Raises (as the context is entered, or
    from reads inside it) FetchRefused (address or scheme), FetchTimedOut
    (``deadline_seconds`` for the whole fetch), FetchFailed (no such host, refused
    connection, TLS, too many redirects; ``broken=True`` for an answer that is not
    HTTP), all with ``where`` = URL. ``allow_link_local=False`` refuses link-local
    addresses even with ``allow_private`` (see :func:`address_refusal`).
    """
    clock = _Deadline(deadline_seconds)
    policy = _Policy(allow_private, allow_link_local)
    request_headers = {"User-Agent": user_agent, "Accept-Encoding": "identity"}
    request_headers.update(headers or {})
    connection: _Connection | None = None
    raw: http.client.HTTPResponse | None = None
    answered = False
    try:
        for hop in range(max_redirects + 1):
            connection = _connect(url, clock, policy, resolve, redirected=hop > 0)
            parts = urlsplit(url)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            raw = _exchange(connection, method, target, request_headers, clock, url, body)
            location = raw.headers.get("Location")
            if raw.status not in REDIRECTS or not location:
                answered = True
                yield Response(url, raw, clock)
                return
            raw.close()
            connection.close()
            url = urljoin(url, location.strip())
        raise FetchFailed(f"more than {max_redirects} redirects", where=url)
    except (OSError, http.client.HTTPException) as err:  # from reads in the caller's block
        raise _failure(err, clock, answered=answered, where=url) from err
    finally:
        clock.close()
        if raw is not None:
            raw.close()  # a response read only in part holds the socket open
        if connection is not None:
            connection.close()


class _Policy(NamedTuple):
    allow_private: bool
    allow_link_local: bool


def _connect(
    url: str, clock: _Deadline, policy: _Policy, resolve: Resolver, *, redirected: bool
) -> _Connection:
    """A connection for ``url`` (not yet open): http(s) only, to a checked address."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        words = "redirects to" if redirected else "asked for"
        raise FetchRefused(f"{words} {url!r}, which is not http(s)", where=url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as err:
        raise FetchFailed("not a valid URL (its port)", where=url) from err
    if not host:
        raise FetchFailed("not a valid URL (no host)", where=url)
    port = port or (443 if scheme == "https" else 80)

    def open_socket() -> socket.socket:
        candidates = allowed_addresses(
            host,
            port,
            allow_private=policy.allow_private,
            allow_link_local=policy.allow_link_local,
            resolve=resolve,
            where=url,
        )
        error: OSError = OSError("no address to connect to")
        for family, kind, proto, _name, address in candidates:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(clock.left())
                clock.watch(sock)
                sock.connect(address)
                return sock
            except OSError as err:
                sock.close()
                error = err
        raise error

    kind = _TlsConnection if scheme == "https" else _Connection
    return kind(host, port, open_socket=open_socket)


def _exchange(
    connection: _Connection,
    method: str,
    target: str,
    headers: Mapping[str, str],
    clock: _Deadline,
    url: str,
    body: bytes | None = None,
) -> http.client.HTTPResponse:
    """Send the request and read the answer's head, within the deadline."""
    try:
        connection.request(method, target, body=body, headers=dict(headers))
        return connection.getresponse()
    except (OSError, http.client.HTTPException) as err:
        raise _failure(err, clock, answered=False, where=url) from err


def _failure(err: BaseException, clock: _Deadline, *, answered: bool, where: str) -> FetchFailed:
    """A network or protocol error in words a person can act on."""
    if clock.expired or isinstance(err, TimeoutError):
        return clock.timed_out(answered=answered, where=where)
    if isinstance(err, http.client.HTTPException):  # e.g. a server that hangs up on HEAD
        return FetchFailed(f"a broken HTTP answer ({type(err).__name__})", where=where, broken=True)
    if isinstance(err, ConnectionRefusedError):
        return FetchFailed("the connection was refused", where=where)
    if isinstance(err, ssl.SSLError):
        return FetchFailed(f"TLS failed: {getattr(err, 'reason', None) or err}", where=where)
    return FetchFailed(str(err) or type(err).__name__, where=where)
