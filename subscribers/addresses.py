"""One normal form for an email address, so that the list, the suppression list and
every lookup agree on who is who.

Normal form: trimmed, lower-cased, the domain in ASCII (IDNA), validated by
email-validator without DNS look-ups. Internationalised local parts (SMTPUTF8) are
refused with a clear message: not every provider and mailbox on the way can carry them.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import InvalidEmail, InvalidInput

MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit minus the angle brackets
MAX_LOCAL_LENGTH = 64
MAX_NAME_LENGTH = 200
_RAW_LIMIT = 1000  # never hand anything longer to the parser
# Bidirectional overrides can make a name display as something else.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# A line break followed by "Field-Name:" is a header injection attempt (RFC 5322 3.6.8
# field name); a plain wrapped name (a CSV cell over two lines) is only collapsed.
_INJECTED_FIELD = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]\s*[!-9;-~]+\s*:")


def normalise_email(raw: object, *, where: str | None = None) -> str:
    """Return the normal form of ``raw`` or raise InvalidEmail saying what is wrong."""
    if not isinstance(raw, str):
        raise InvalidEmail("an email address is required", where=where, field="email")
    text = raw.strip()
    if not text:
        raise InvalidEmail("an email address is required", where=where, field="email")
    if len(text) > _RAW_LIMIT or len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidEmail(
            f"the address is too long ({len(text)} characters; at most {MAX_ADDRESS_LENGTH})",
            where=where,
            field="email",
        )
    local = text.rpartition("@")[0]
    if len(local) > MAX_LOCAL_LENGTH:
        raise InvalidEmail(
            f"the part before the @ is too long ({len(local)} characters; "
            f"at most {MAX_LOCAL_LENGTH})",
            where=where,
            field="email",
        )
    try:
        address = _validated(text)
    except EmailNotValidError as err:
        raise InvalidEmail(
            f"{text!r} is not a valid email address: {err}", where=where, field="email"
        ) from err
    if len(address) > MAX_ADDRESS_LENGTH:  # an IDN domain can grow when encoded
        raise InvalidEmail(
            f"the address is too long once encoded ({len(address)} characters; "
            f"at most {MAX_ADDRESS_LENGTH})",
            where=where,
            field="email",
        )
    return address


@functools.lru_cache(maxsize=4096)
def _validated(text: str) -> str:
    """email-validator's normal form, lower-cased; raises EmailNotValidError.

    Cached (bounded): an import checks each address of a chunk, then hashes the same
    addresses for the suppression list, and validation is the costliest step of a row.
    """
    result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    return (result.ascii_email or result.normalized).lower()


def email_hash(email: str) -> str:
    """sha256 of the normal form: what the suppression list keeps after erasure."""
    return hashlib.sha256(normalise_for_hash(email).encode("utf-8")).hexdigest()


def normalise_for_hash(email: str) -> str:
    """The normal form when the address validates; else trimmed and lower-cased.

    Suppression must work even for an address we would refuse to sign up (a complaint
    about an odd address still has to stop mail to it).
    """
    try:
        return normalise_email(email)
    except InvalidInput:
        return email.strip().lower()


def clean_name(raw: object, *, where: str | None = None) -> str | None:
    """A display name fit for a To: header and a greeting, or None when empty.

    Whitespace runs (tabs and line breaks included) become one space. Raises InvalidInput
    (field "name") for: more than 200 characters; a control character (Unicode Cc, incl.
    NUL and C1), a surrogate, a private-use character or a bidi override; a line break
    followed by a header field name ("\\r\\nBcc:"); RFC 2047 encoded-word syntax
    ("=?"), which some clients decode into anything, CR LF and a forged header included.
    Every door (form, ``subscribers add``, CSV import, API) calls this.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("the name must be text", where=where, field="name")
    if _INJECTED_FIELD.search(raw):
        raise InvalidInput(
            "the name contains a line break followed by a header field", where=where, field="name"
        )
    if "=?" in raw:
        raise InvalidInput(
            'the name contains "=?" (RFC 2047 encoded-word syntax)', where=where, field="name"
        )
    text = " ".join(raw.split())
    if not text:
        return None
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"the name is too long ({len(text)} characters; at most {MAX_NAME_LENGTH})",
            where=where,
            field="name",
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") or ch in _BIDI for ch in text):
        raise InvalidInput("the name contains control characters", where=where, field="name")
    return text
