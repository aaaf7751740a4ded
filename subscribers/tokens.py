"""Signed links: confirm, unsubscribe and preferences, each with its purpose bound in.

The purpose is itsdangerous' salt, so a confirm token never works as an unsubscribe
token. Signing uses the current secret key; verifying also tries the old keys, so a key
can be rotated without breaking links already in inboxes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from newsletter.errors import TokenExpired, TokenInvalid
from newsletter.settings import Settings

DAY = 86400


class Purpose(StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


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
        self, purpose: Purpose, subscriber_id: int, *, issued_at: datetime | None = None
    ) -> str:
        """A token for ``subscriber_id``; ``issued_at`` back-dates it (tests, re-sends)."""
        serializer = self._serializers[purpose]
        if issued_at is None:
            return serializer.dumps(subscriber_id)
        signer = serializer.make_signer()
        stamp = int(issued_at.timestamp())
        signer.get_timestamp = lambda: stamp  # type: ignore[method-assign]
        return signer.sign(serializer.dump_payload(subscriber_id)).decode("ascii")

    def url(
        self, purpose: Purpose, subscriber_id: int, *, issued_at: datetime | None = None
    ) -> str:
        token = self.make(purpose, subscriber_id, issued_at=issued_at)
        return f"{self._base_url}/{purpose.value}/{token}"

    def verify(self, purpose: Purpose, token: str) -> int:
        """Return the subscriber id the token was made for, or raise a TokenError."""
        try:
            value = self._serializers[purpose].loads(token, max_age=self._max_age[purpose])
        except SignatureExpired as err:
            raise TokenExpired(f"this {purpose.value} link has expired") from err
        except BadSignature as err:
            raise TokenInvalid(f"this {purpose.value} link is not valid") from err
        if not isinstance(value, int) or isinstance(value, bool):
            raise TokenInvalid(f"this {purpose.value} link is not valid")
        return value
