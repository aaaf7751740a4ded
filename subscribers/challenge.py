"""The sign-up form's proof of work: the ALTCHA protocol (v2), verified with ``altcha``.

Why: a form that mails whatever address it is given can be used to flood someone's inbox
with confirmation requests. A per-IP limit does not stop someone with many addresses; a
little work for every post makes floods expensive, without a third-party service, a
cookie or a picture puzzle (https://altcha.org/docs/v2/).

The server issues a signed challenge (HMAC-SHA-256 over its parameters, with a key
derived from the secret key): PBKDF2/SHA-256 of ``cost`` iterations over ``nonce +
counter`` (a big-endian uint32), where the counter the server picked at random is below
``max_number``; the browser tries counters from 0 until the derived key starts with the
challenge's ``keyPrefix``. The answer is the base64 of ``{"challenge", "solution":
{"counter", "derivedKey"}}`` in the form's ``altcha`` field. The server checks the
signature, the expiry and the derived key's HMAC (no re-derivation), then remembers the
challenge (table ``used_challenge``) until it expires, so each solution is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import altcha
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel

from newsletter import db
from newsletter.errors import ChallengeFailed
from newsletter.settings import Settings

ALGORITHM = "PBKDF2/SHA-256"
FIELD = "altcha"  # the form field, as the ALTCHA widget names it
MAX_PAYLOAD = 4096  # a real payload is about 700 characters of base64


class UsedChallenge(SQLModel, table=True):
    """A challenge whose solution was accepted; kept until the challenge expires."""

    __tablename__ = "used_challenge"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, sa_column_kwargs={"unique": True})  # sha256(signature)
    expires_at: float = Field(sa_type=sa.Float, index=True)  # seconds since the epoch


def _secrets(settings: Settings) -> tuple[bytes, bytes]:
    """Two keys of their own, derived from the secret key: one signs challenges, one the
    derived key (so a leaked challenge key cannot forge solutions, and neither is the
    key that signs links)."""
    key = settings.require("secret_key").encode()
    return (
        hmac.new(key, b"altcha-challenge", hashlib.sha256).digest(),
        hmac.new(key, b"altcha-derived-key", hashlib.sha256).digest(),
    )


def new_challenge(settings: Settings, *, now: float | None = None) -> dict[str, Any]:
    """A fresh signed challenge as the JSON the browser's solver reads::

        {"parameters": {"algorithm", "cost", "keyLength", "keyPrefix", "nonce", "salt",
                        "expiresAt", "keySignature"}, "signature": "<hex>"}

    Raises ConfigError without a secret key.
    """
    challenge_key, derived_key = _secrets(settings)
    expires = int((now or time.time()) + settings.signup_challenge_expiry_seconds)
    challenge = altcha.create_challenge(
        ALGORITHM,
        settings.signup_challenge_cost,
        counter=secrets.randbelow(settings.signup_challenge_max_number),
        expires_at=expires,
        hmac_secret=challenge_key,
        hmac_key_secret=derived_key,
    )
    return challenge.to_dict()


def _verified(settings: Settings, payload: str) -> altcha.Payload:
    """The payload when its challenge is ours, unexpired and solved; ChallengeFailed else."""
    if not payload:
        raise ChallengeFailed(
            "the form was sent before your browser finished its anti-robot check; "
            "please wait a moment and send it again (it needs JavaScript)",
            field=FIELD,
        )
    if len(payload) > MAX_PAYLOAD:
        raise ChallengeFailed("the anti-robot check could not be read", field=FIELD)
    challenge_key, derived_key = _secrets(settings)
    result = altcha.verify_solution(payload, challenge_key, hmac_key_secret=derived_key)
    if result.expired:
        raise ChallengeFailed(
            "the anti-robot check expired; please send the form again", field=FIELD
        )
    if result.error or not result.verified:
        raise ChallengeFailed("the anti-robot check did not pass; please try again", field=FIELD)
    return altcha.Payload.from_base64(payload)


def redeem(session: Session, *, settings: Settings, payload: str, now: float | None = None) -> None:
    """Accept ``payload`` (the form's ``altcha`` field) once: verify it, then remember its
    challenge until it expires. Raises ChallengeFailed when it is missing, forged, wrong,
    expired or was accepted before.

    The mark is written in a savepoint of the caller's transaction; a concurrent use of
    the same challenge waits on the unique digest and is refused when this one commits.
    """
    parsed = _verified(settings, payload)
    now = now or time.time()
    signature = str(parsed.challenge.signature)
    digest = hashlib.sha256(signature.encode()).hexdigest()
    expires = float(parsed.challenge.parameters.expires_at or now)
    table = UsedChallenge.__table__
    session.execute(sa.delete(table).where(table.c.expires_at < now))
    try:
        with db.savepoint(session):
            session.execute(sa.insert(table).values(digest=digest, expires_at=expires))
    except IntegrityError as err:
        raise ChallengeFailed(
            "this anti-robot check was already used; please send the form again", field=FIELD
        ) from err
