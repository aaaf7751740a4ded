"""Who the client is: the TCP peer, or what a trusted proxy says it forwarded.

``X-Forwarded-For`` is a list anyone can write to; only the entries that our own proxies
appended are true. So the header counts only when the peer is a trusted proxy
(``NEWSLETTER_TRUSTED_PROXIES``, IPs or CIDRs, none by default), and then the client is
the right-most address that is not a trusted proxy (MDN, "X-Forwarded-For: Selecting an
IP address"; RFC 7239 section 8.1 for the same rule with ``Forwarded``). Run uvicorn
without its own proxy handling (``proxy_headers=False``) so the peer reaches us as is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The parsed ``trusted_proxies`` setting (already validated by Settings)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An X-Forwarded-For entry as an address: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``,
    ``::1``; None for anything else (``unknown``, a host name, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: object, trusted: Sequence[Network]) -> bool:
    return isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address) and any(
        address in network for network in trusted
    )


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address for ``peer`` (the TCP peer's address) and the request's
    ``X-Forwarded-For`` header values, in order.

    The peer unless it is a trusted proxy; then the right-most forwarded address that is
    not a trusted proxy. An entry that is not an address stops the walk: whatever is left
    of it was written by someone we do not trust, so the hop that handed it on counts.
    """
    peer_address = _address(peer) if peer else None
    if not trusted or not _trusted(peer_address, trusted):
        return peer
    chain = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    client = peer
    for entry in reversed(chain):
        address = _address(entry)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client
