"""VERP return paths: ``bounces+TOKEN@<bounce domain>``, one per recipient of a campaign.

A bounce goes to the message's envelope sender (RFC 5321 4.4 Return-Path), whatever the
bouncing server writes in its report; with one envelope sender per recipient (Variable
Envelope Return Path, D. J. Bernstein 1997), the address a bounce arrives at names the
campaign and the subscriber, even from servers whose reports are unreadable.

The token is ``<campaign id>.<subscriber id>.<mac>``: ids in base 36, the mac the first
10 bytes (80 bits) of HMAC-SHA256 over ``"<campaign>.<subscriber>.<link key>"`` under a
key bound to this purpose (derived from ``NEWSLETTER_SECRET_KEY``; the old keys still
verify, as for links), written in lower-case base 32. Only letters, digits, ``.`` and
``+``: an RFC 5321 dot-atom that survives servers that fold case, and at most 47 octets,
well within the 64 of a local part (RFC 5321 4.5.3.1.1). The link key ties the token to
the person, so an erased subscriber's bounces name nobody. One HMAC per recipient
(~1 µs): the send loop's cost is unchanged to the eye (bench/README.md).
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

from newsletter.settings import Settings

__all__ = ["PREFIX", "Verp", "VerpClaim"]

PREFIX = "bounces"
_PURPOSE = b"newsletter.verp"
_MAC_BYTES = 10
_TOKEN = re.compile(r"([0-9a-z]{1,13})\.([0-9a-z]{1,13})\.([a-z2-7]{16})")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class VerpClaim:
    """What a VERP address says, before its mac is checked against the subscriber's key."""

    campaign_id: int
    subscriber_id: int
    mac: str


def _base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if not number:
            return text


class Verp:
    """Makes and checks VERP addresses for one installation (its keys and bounce domain)."""

    def __init__(self, settings: Settings) -> None:
        self.domain = (settings.bounce_domain or "").strip().lower()
        self._keys = [hmac.digest(key.encode(), _PURPOSE, "sha256") for key in settings.secret_keys]

    def _mac(self, key: bytes, campaign_id: int, subscriber_id: int, link_key: str) -> str:
        value = b"%d.%d.%s" % (campaign_id, subscriber_id, link_key.encode("ascii"))
        digest = hmac.digest(key, value, "sha256")[:_MAC_BYTES]
        return base64.b32encode(digest).decode("ascii").lower()

    def return_path(self, campaign_id: int, subscriber_id: int, link_key: str) -> str:
        """``bounces+<campaign>.<subscriber>.<mac>@<bounce domain>`` (≤ 47 octets before @)."""
        mac = self._mac(self._keys[0], campaign_id, subscriber_id, link_key)
        token = f"{_base36(campaign_id)}.{_base36(subscriber_id)}.{mac}"
        return f"{PREFIX}+{token}@{self.domain}"

    @staticmethod
    def claim(address: str) -> VerpClaim | None:
        """The ids a VERP address names (any domain, any case), or None for another address."""
        local = address.strip().strip("<>").rpartition("@")[0].lower()
        prefix, plus, token = local.partition("+")
        found = _TOKEN.fullmatch(token) if plus and prefix == PREFIX else None
        if found is None:
            return None
        campaign, subscriber, mac = found.groups()
        return VerpClaim(int(campaign, 36), int(subscriber, 36), mac)

    def verify(self, claim: VerpClaim, link_key: str) -> bool:
        """Whether the claim was signed by us for the subscriber holding ``link_key``."""
        return any(
            hmac.compare_digest(
                claim.mac, self._mac(key, claim.campaign_id, claim.subscriber_id, link_key)
            )
            for key in self._keys
        )
