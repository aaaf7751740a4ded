"""Test copies ("proofs") of a campaign to addresses a marketer types.

Each address goes through the same path as ``newsletter campaigns test-send``
(:func:`campaigns.delivery.sending.test_send`): the suppression guard first, a copy
marked as a test, nothing recorded in the ledger. The audit log keeps who sent which
proof to which addresses.
"""

from __future__ import annotations

import re

from sqlmodel import Session

from campaigns.delivery.sending import test_send
from newsletter import audit
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from subscribers.addresses import normalise_email

MAX_ADDRESSES = 10
_SEPARATORS = re.compile(r"[\s,;]+")


def split_addresses(text: str) -> list[str]:
    """Addresses typed in one field, separated by commas, semicolons, spaces or lines."""
    return [a for a in _SEPARATORS.split(text or "") if a]


def clean_addresses(addresses: list[str]) -> list[str]:
    """Each address normalised (RFC 5321 via email-validator), duplicates dropped.
    InvalidInput naming the first bad one, or when there are none or over
    :data:`MAX_ADDRESSES`."""
    cleaned: list[str] = []
    for raw in addresses:
        try:
            email = normalise_email(raw.strip())
        except InvalidInput as err:  # named once: "'me@x' is not a valid...", not twice
            said = (
                err.reason if repr(raw.strip()) in err.reason else f"{raw.strip()!r}: {err.reason}"
            )
            raise InvalidInput(said, field="to") from None
        if email not in cleaned:
            cleaned.append(email)
    if not cleaned:
        raise InvalidInput("type at least one address", field="to")
    if len(cleaned) > MAX_ADDRESSES:
        raise InvalidInput(f"at most {MAX_ADDRESSES} addresses per test", field="to")
    return cleaned


def send_test_copies(
    session: Session, *, settings: Settings, campaign_id: int, addresses: list[str], actor: str
) -> list[str]:
    """Send one test copy to each address; returns the addresses, normalised.

    Raises what ``test_send`` raises (NotFound, Suppressed, ContentError, ProviderError)
    at the first address that fails (the copies before it are gone already). All
    addresses are checked before the first copy goes.
    """
    sent: list[str] = []
    for email in clean_addresses(addresses):
        test_send(session, settings=settings, campaign_id=campaign_id, to_email=email)
        sent.append(email)
    audit.record(session, actor, "campaign.test_send", "campaign", campaign_id, after={"to": sent})
    return sent
