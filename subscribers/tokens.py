"""Signed links: confirm, unsubscribe and preferences, each with its purpose bound in.

The purpose is itsdangerous' salt, so a confirm token never works as an unsubscribe
token. Signing uses the current secret key; verifying also tries the old keys, so a key
can be rotated without breaking links already in inboxes.

A token names a person, not a row number: it carries the subscriber's ``link_key`` (a
random nonce set when the row is created, ``subscribers.models.new_link_key``) and
``check`` compares it with the row. An erased person's links, or the links of an earlier
sign-up of the same address, name a key no row has, so they are dead even if the id
came back. An unsubscribe link in a newsletter also carries the campaign id, signed, so
the report of that issue can count who left through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session

from newsletter.errors import TokenExpired, TokenInvalid
from newsletter.settings import Settings
from subscribers.models import Subscriber

DAY = 86400


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class LinkOwner(Protocol):
    """What a link is made for: a ``Subscriber`` row (or anything with these two)."""

    @property
    def id(self) -> int | None: ...

    @property
    def link_key(self) -> str: ...


@dataclass(frozen=True)
class LinkClaim:
    """What a token says: whose link (id and link key) and, for a newsletter's
    unsubscribe link, which campaign it came in."""

    subscriber_id: int
    link_key: str
    campaign_id: int | None = None


def link_payload(subscriber_id: int, link_key: str, campaign_id: int | None) -> list[Any]:
    """The signed JSON value: ``[id, link_key]`` or ``[id, link_key, campaign_id]``."""
    if campaign_id is None:
        return [subscriber_id, link_key]
    return [subscriber_id, link_key, campaign_id]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _claim_of(value: object) -> LinkClaim | None:
    if not isinstance(value, list) or len(value) not in (2, 3):
        return None
    subscriber_id, link_key, *rest = value
    campaign_id = rest[0] if rest else None
    if not _is_int(subscriber_id) or not isinstance(link_key, str) or not link_key:
        return None
    if campaign_id is not None and not _is_int(campaign_id):
        return None
    return LinkClaim(subscriber_id, link_key, campaign_id)


class Tokens:
    """Makes and checks tokens for one configuration; build once, reuse (it is cheap to call)."""

    def __init__(self, settings: Settings) -> None:
        keys = settings.secret_keys
        # itsdangerous signs with the last key and verifies with all of them.
        self._serializers = {
            purpose: URLSafeTimedSerializer(list(reversed(keys)), salt=f"newsletter.{purpose}")
            for purpose in Purpose
        }
        self._max_age = {
            Purpose.CONFIRM: settings.confirm_token_max_age_days * DAY,
            Purpose.UNSUBSCRIBE: settings.unsubscribe_token_max_age_days * DAY,
            Purpose.PREFERENCES: settings.unsubscribe_token_max_age_days * DAY,
        }
        self._base_url = settings.base_url.rstrip("/")

    def make(
        self,
        purpose: Purpose,
        owner: LinkOwner,
        *,
        campaign_id: int | None = None,
        issued_at: datetime | None = None,
    ) -> str:
        """A token for the subscriber ``owner``; ``campaign_id`` names the newsletter it
        goes out in, ``issued_at`` back-dates it (tests, re-sends)."""
        assert owner.id is not None and owner.link_key, "a link needs a saved subscriber"
        payload = link_payload(owner.id, owner.link_key, campaign_id)
        serializer = self._serializers[purpose]
        if issued_at is None:
            return serializer.dumps(payload)
        signer = serializer.make_signer()
        stamp = int(issued_at.timestamp())
        signer.get_timestamp = lambda: stamp  # type: ignore[method-assign]
        return signer.sign(serializer.dump_payload(payload)).decode("ascii")

    def url(
        self,
        purpose: Purpose,
        owner: LinkOwner,
        *,
        campaign_id: int | None = None,
        issued_at: datetime | None = None,
    ) -> str:
        token = self.make(purpose, owner, campaign_id=campaign_id, issued_at=issued_at)
        return f"{self._base_url}/{purpose.value}/{token}"

    def claim(self, purpose: Purpose, token: str) -> LinkClaim:
        """What a genuine, unexpired token says; TokenExpired/TokenInvalid otherwise.

        Only the signature is checked here: use ``check`` before acting on a link."""
        try:
            value = self._serializers[purpose].loads(token, max_age=self._max_age[purpose])
        except SignatureExpired as err:
            raise TokenExpired(f"this {purpose.value} link has expired") from err
        except BadSignature as err:
            raise TokenInvalid(f"this {purpose.value} link is not valid") from err
        claim = _claim_of(value)
        if claim is None:
            raise TokenInvalid(f"this {purpose.value} link is not valid")
        return claim

    def verify(self, purpose: Purpose, token: str) -> int:
        """The subscriber id a genuine token names (signature only, see ``claim``)."""
        return self.claim(purpose, token).subscriber_id

    def check(self, session: Session, purpose: Purpose, token: str) -> LinkClaim:
        """The claim of a token made for the person who holds its subscriber id now.

        Raises TokenExpired/TokenInvalid; TokenInvalid too when the row with that id has
        another link key (an erased person's id handed on, an address signed up anew).
        A missing row passes: ids are never reused (AUTOINCREMENT, sequences), so the
        caller's lookup answers NotFound as before.
        """
        claim = self.claim(purpose, token)
        key = session.execute(
            sa.select(Subscriber.link_key).where(Subscriber.id == claim.subscriber_id)
        ).scalar_one_or_none()
        if key is not None and key != claim.link_key:
            raise TokenInvalid(f"this {purpose.value} link is not valid")
        return claim
