"""VERP return paths: ``bounces+TOKEN@<bounce domain>``, one per recipient of a campaign.

A bounce goes to the message's envelope sender (RFC 5321 4.4 Return-Path), whatever the
bouncing server writes in its report; with one envelope sender per recipient (Variable
Envelope Return Path, D. J. Bernstein 1997), the address a bounce arrives at names the
campaign and the subscriber, even from servers whose reports are unreadable.

The token is ``<campaign id>.<subscriber id>.<mac>``: ids in lower-case hex, the mac the
first 10 bytes (80 bits) of HMAC-SHA256 over ``"<campaign>.<subscriber>.<link key>"``
under a key bound to this purpose (derived from ``NEWSLETTER_SECRET_KEY``; the old keys
still verify, as for links), in lower-case hex. Only hex digits, ``.`` and ``+``: an
RFC 5321 dot-atom that survives servers that fold case, at most 62 octets for ids below
2**63 (about 40 for everyday ids), within the 64 of a local part (RFC 5321 4.5.3.1.1).
The link key ties the token to the person, so an erased subscriber's bounces name
nobody. One HMAC per recipient from SHA-256 states keyed once (about 1 µs; base 32 or
base 36 written in Python would cost more than the HMAC): bench/README.md has the send
loop's figures.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from newsletter.settings import Settings

__all__ = ["PREFIX", "Verp", "VerpClaim"]

PREFIX = "bounces"
_PURPOSE = b"newsletter.verp"
_MAC_BYTES = 10
_TOKEN = re.compile(r"([0-9a-f]{1,16})\.([0-9a-f]{1,16})\.([0-9a-f]{20})")
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@dataclass(frozen=True, slots=True)
class VerpClaim:
    """What a VERP address says, before its mac is checked against the subscriber's key."""

    campaign_id: int
    subscriber_id: int
    mac: str


def _pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states keyed with HMAC's inner and outer pads (RFC 2104), made once: copying
    them per recipient is HMAC-SHA256 without re-keying (``key`` is 32 bytes, below the
    block size, so it is used as it is)."""
    key = key.ljust(hashlib.sha256().block_size, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


class Verp:
    """Makes and checks VERP addresses for one installation (its keys and bounce domain)."""

    def __init__(self, settings: Settings) -> None:
        self.domain = (settings.bounce_domain or "").strip().lower()
        self._keys = [
            _pads(hmac.digest(key.encode(), _PURPOSE, "sha256")) for key in settings.secret_keys
        ]

    @staticmethod
    def _mac(key: tuple[Any, Any], ids: str, link_key: str) -> str:
        inner, outer = key[0].copy(), key[1].copy()
        inner.update(f"{ids}.{link_key}".encode("ascii"))
        outer.update(inner.digest())
        return outer.digest()[:_MAC_BYTES].hex()

    def return_path(self, campaign_id: int, subscriber_id: int, link_key: str) -> str:
        """``bounces+<campaign>.<subscriber>.<mac>@<bounce domain>``, ids in hex."""
        ids = f"{campaign_id:x}.{subscriber_id:x}"
        return f"{PREFIX}+{ids}.{self._mac(self._keys[0], ids, link_key)}@{self.domain}"

    @staticmethod
    def claim(address: str) -> VerpClaim | None:
        """The ids a VERP address names (any domain, any case), or None for another address."""
        local = address.strip().strip("<>").rpartition("@")[0].lower()
        prefix, plus, token = local.partition("+")
        found = _TOKEN.fullmatch(token) if plus and prefix == PREFIX else None
        if found is None:
            return None
        campaign, subscriber, mac = found.groups()
        return VerpClaim(int(campaign, 16), int(subscriber, 16), mac)

    def verify(self, claim: VerpClaim, link_key: str) -> bool:
        """Whether the claim was signed by us for the subscriber holding ``link_key``."""
        ids = f"{claim.campaign_id:x}.{claim.subscriber_id:x}"
        return any(
            hmac.compare_digest(claim.mac, self._mac(key, ids, link_key)) for key in self._keys
        )
