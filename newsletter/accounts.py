"""The people who use the marketer's console: their email, password hash and role.

Roles, from least to most (issue 14): ``viewer`` reads everything; ``editor`` also edits
snippets and campaigns, sends, and adds or imports subscribers; ``owner`` also manages
users, erases subscribers and reads the audit log. Passwords are hashed with argon2id
through pwdlib (OWASP Password Storage Cheat Sheet); a hash made with older parameters
is replaced at the next sign-in. A disabled user keeps their row (the audit log names
them) but can no longer sign in.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from newsletter import audit
from newsletter.clock import utcnow
from newsletter.db import UTCDateTime
from newsletter.errors import InvalidEmail, InvalidInput, LoginFailed, NotFound, StateError

MIN_PASSWORD_CHARS = 12  # NIST SP 800-63B 3.1.1.2 asks for 8 at least; we ask a little more
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this only bounds the work per try
# At most this many argon2 verifications at once in a process (64 MiB each with the
# production parameters): a flood of sign-ins waits here instead of exhausting memory.
VERIFY_SLOTS = 4
_verify_slots = threading.BoundedSemaphore(VERIFY_SLOTS)


class Role(StrEnum):
    """A console role; compared by power: ``Role.viewer < Role.editor < Role.owner``."""

    viewer = "viewer"
    editor = "editor"
    owner = "owner"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def __lt__(self, other: object) -> bool:
        return self.rank < Role(other).rank if isinstance(other, str) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= Role(other).rank if isinstance(other, str) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > Role(other).rank if isinstance(other, str) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= Role(other).rank if isinstance(other, str) else NotImplemented


_RANKS = {Role.viewer: 0, Role.editor: 1, Role.owner: 2}


class ConsoleUser(SQLModel, table=True):
    """Someone who may sign in to the console (``/admin/``)."""

    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=20)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def can(self, role: Role) -> bool:
        """True when this user's role is ``role`` or stronger."""
        return Role(self.role) >= role


class ConsoleSessionEpoch(SQLModel, table=True):
    """The value every session cookie of a user must carry (security fixes of the console's
    sign-in): replaced at sign-out and when the user is disabled, so every cookie signed
    before is refused. No row: the user has never signed out (epoch ``""``)."""

    __tablename__ = "console_session_epoch"

    user_id: int = Field(foreign_key="console_user.id", primary_key=True, ondelete="CASCADE")
    epoch: str = Field(max_length=64)


class ConsoleUserPublic(BaseModel):
    """A user as the CLI's ``--json`` and the console show them (never the hash)."""

    id: int
    email: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None


def public(user: ConsoleUser) -> ConsoleUserPublic:
    assert user.id is not None
    return ConsoleUserPublic(
        id=user.id,
        email=user.email,
        role=Role(user.role),
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        disabled_at=user.disabled_at,
    )


@lru_cache(maxsize=1)
def production_hasher() -> PasswordHash:
    """argon2id with argon2-cffi's defaults through pwdlib: 64 MiB, 3 passes, 4 lanes
    (RFC 9106 section 4's second recommended option)."""
    return PasswordHash((Argon2Hasher(),))


def hasher() -> PasswordHash:
    """The hasher every function here uses (tests swap it for a cheap one)."""
    return production_hasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """A hash to verify against when the email is unknown, so the answer takes as long
    as for a known one and does not tell which addresses have an account."""
    return hasher().hash("not the password of anyone")


def parse_role(text: str) -> Role:
    """``Role`` from its name; InvalidInput naming the choices otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {text!r}; choose {choices}", field="role") from None


def check_password(password: str) -> None:
    """InvalidInput unless ``password`` has 12 to 1024 characters."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_CHARS} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"a password has at most {MAX_PASSWORD_CHARS} characters", field="password"
        )


def normalize_login(email: str) -> str:
    """A sign-in address in one form (trimmed, lower-cased, the domain in ASCII);
    InvalidEmail when it is not an address. No DNS look-up: a user may sign in offline."""
    text = email.strip()
    if not text or len(text) > 254:
        raise InvalidEmail("an email address of at most 254 characters is required", field="email")
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as err:
        raise InvalidEmail(f"{text!r} is not a valid email address: {err}", field="email") from err
    return checked.normalized.lower()


def login_key(email: str) -> str:
    """The address the sign-in limits count under: :func:`normalize_login`'s form, so
    every spelling that signs in as one user (full-width letters, ``。`` for a dot) is one
    key; the trimmed, lower-cased text when it is not an address."""
    try:
        return normalize_login(email)
    except InvalidInput:
        return email.strip().lower()


def session_epoch(session: Session, user_id: int) -> str:
    """The epoch the session cookies of ``user_id`` must carry now (``""`` at first)."""
    row = session.get(ConsoleSessionEpoch, user_id)
    return row.epoch if row is not None else ""


def end_sessions(session: Session, user_id: int) -> None:
    """Refuse every session cookie ``user_id`` holds: a new random epoch (OWASP Session
    Management Cheat Sheet, "Session Expiration": logout invalidates on the server)."""
    epoch = secrets.token_urlsafe(16)
    table = ConsoleSessionEpoch.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(user_id=user_id, epoch=epoch)
    session.execute(
        statement.on_conflict_do_update(index_elements=["user_id"], set_={"epoch": epoch})
    )


def find_user(session: Session, email: str) -> ConsoleUser | None:
    return session.exec(
        select(ConsoleUser).where(ConsoleUser.email == normalize_login(email))
    ).first()


def get_user(session: Session, user_id: int) -> ConsoleUser:
    """The user with ``user_id``; NotFound otherwise."""
    user = session.get(ConsoleUser, user_id)
    if user is None:
        raise NotFound(f"console user {user_id} does not exist")
    return user


def create_user(
    session: Session, email: str, role: Role | str, password: str, *, actor: str | None = None
) -> ConsoleUser:
    """Add a user (audit-logged as ``actor`` when given); InvalidInput for a malformed
    email, a password shorter than 12 characters, an unknown role or an email that
    already has an account."""
    address = normalize_login(email)
    chosen = parse_role(str(role))
    check_password(password)
    if find_user(session, address) is not None:
        raise InvalidInput(f"{address} already has a console account", field="email")
    user = ConsoleUser(email=address, password_hash=hasher().hash(password), role=chosen.value)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as err:  # the same address, created at the same moment
        raise InvalidInput(f"{address} already has a console account", field="email") from err
    if actor is not None:
        audit.record(session, actor, "user.create", "console_user", address, after={"role": chosen})
    return user


def authenticate(session: Session, email: str, password: str) -> ConsoleUser:
    """The active user with this email and password, with ``last_login_at`` set now (and
    the hash upgraded when pwdlib's parameters changed); LoginFailed otherwise, with the
    same message and about the same time for an unknown email, a wrong password and a
    disabled user."""
    try:
        user = find_user(session, email)
    except InvalidInput:
        user = None
    with _verify_slots:
        if user is None or len(password) > MAX_PASSWORD_CHARS:
            hasher().verify(password[:MAX_PASSWORD_CHARS], _decoy_hash())
            raise LoginFailed("wrong email or password")
        valid, new_hash = hasher().verify_and_update(password, user.password_hash)
    if not valid or not user.active:
        raise LoginFailed("wrong email or password")
    if new_hash is not None:
        user.password_hash = new_hash
    user.last_login_at = utcnow()
    session.add(user)
    session.flush()
    return user


def sign_in(session: Session, email: str, password: str) -> tuple[ConsoleUser, str]:
    """:func:`authenticate`, and the session epoch the new session cookie must carry;
    LoginFailed as there."""
    user = authenticate(session, email, password)
    assert user.id is not None
    return user, session_epoch(session, user.id)


def disable_user(session: Session, email: str, *, actor: str | None = None) -> ConsoleUser:
    """Stop ``email`` from signing in (their open sessions end at their next request),
    audit-logged as ``actor`` when given; NotFound for no such user, StateError when
    already disabled or the last active owner."""
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no console user {normalize_login(email)}")
    if not user.active:
        raise StateError(f"{user.email} is already disabled")
    if user.role == Role.owner.value and _active_owners(session) <= 1:
        raise StateError(f"{user.email} is the last active owner; create another owner first")
    user.disabled_at = utcnow()
    session.add(user)
    session.flush()
    assert user.id is not None
    end_sessions(session, user.id)
    if actor is not None:
        audit.record(
            session,
            actor,
            "user.disable",
            "console_user",
            user.email,
            before={"disabled_at": None},
            after={"disabled_at": user.disabled_at},
        )
    return user


def _active_owners(session: Session) -> int:
    query = (
        select(sa.func.count())
        .select_from(ConsoleUser)
        .where(ConsoleUser.role == Role.owner.value, col(ConsoleUser.disabled_at).is_(None))
    )
    return int(session.exec(query).one())


def list_users(session: Session) -> list[ConsoleUser]:
    """Every user, disabled ones included, in the order they were created."""
    return list(session.exec(select(ConsoleUser).order_by(col(ConsoleUser.id))).all())
