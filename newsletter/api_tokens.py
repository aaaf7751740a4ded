"""Bearer tokens for the HTTP API.

The plaintext is shown once, at creation; only its SHA-256 is stored, so a copy of the
database does not hand out API access. Tokens are 256 random bits, which is why a plain
(unsalted, fast) hash is enough here, unlike for passwords.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.clock import utcnow
from newsletter.errors import InvalidInput, NotFound, StateError, TokenInvalid
from newsletter.models import ApiToken

TOKEN_PREFIX = "nlt_"


class ApiTokenPublic(BaseModel):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def public(token: ApiToken) -> ApiTokenPublic:
    assert token.id is not None
    return ApiTokenPublic(
        id=token.id,
        name=token.name,
        created_at=token.created_at,  # type: ignore[arg-type]
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


def create(session: Session, *, name: str) -> tuple[ApiTokenPublic, str]:
    """Store a new token named ``name``; return it and the plaintext (shown only now)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token name must have 1 to 100 characters", field="name")
    if session.exec(select(ApiToken).where(ApiToken.name == name)).first() is not None:
        raise InvalidInput(f"an API token named {name!r} already exists", field="name")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=hash_token(plaintext))
    session.add(token)
    try:
        session.flush()
    except IntegrityError as err:
        raise InvalidInput(f"an API token named {name!r} already exists", field="name") from err
    return public(token), plaintext


def verify(session: Session, *, token: str, now: datetime | None = None) -> ApiTokenPublic:
    """The token's record, or TokenInvalid (unknown or revoked); notes when it was used."""
    record = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
    if record is None:
        raise TokenInvalid("invalid API token")
    if record.revoked_at is not None:
        raise TokenInvalid(f"API token {record.name!r} has been revoked")
    record.last_used_at = now or utcnow()
    session.add(record)
    session.flush()
    return public(record)


def revoke(session: Session, *, name: str, now: datetime | None = None) -> ApiTokenPublic:
    record = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
    if record is None:
        raise NotFound(f"no API token named {name!r}")
    if record.revoked_at is not None:
        raise StateError(f"API token {name!r} is already revoked")
    record.revoked_at = now or utcnow()
    session.add(record)
    session.flush()
    return public(record)


def list_tokens(session: Session) -> list[ApiTokenPublic]:
    return [public(t) for t in session.exec(select(ApiToken).order_by(col(ApiToken.id))).all()]
