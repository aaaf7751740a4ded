"""Header lines that carry user data, written one way (RFC 5322, RFC 2047).

Names, subjects and list values come from people; written naively, a line break in
one ends its header and starts one of the writer's choosing (a ``Bcc:``, a second
``Content-Type`` and a body). Every such value goes through :func:`header_value` or
:func:`address_header` (SMTP, the outbox, transactional mail) or, for JSON APIs that
write the headers themselves (SendGrid), :func:`check_header_text`. They refuse
control characters with HeaderInjection rather than mend them, and write non-ASCII
text and text holding ``=?`` as RFC 2047 encoded words, so what a client decodes is
exactly the text. ``newsletter.mail`` re-exports them.
"""

from __future__ import annotations

import binascii
import re

from newsletter.errors import HeaderInjection, InvalidInput

_FOLD_AT = 78
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_ESCAPES = re.compile(r'[\\"]')


def fold(name: str, value: str) -> str:
    """``Name: value`` folded at spaces into lines of at most 78 characters where possible.

    Only for values already checked (:func:`header_value` is the public way in).
    """
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return line
    words = line.split(" ")
    lines = [words[0]]
    for word in words[1:]:
        if (
            len(lines[-1]) + 1 + len(word) > _FOLD_AT
            and len(lines) + len(lines[-1]) > len(name) + 2
        ):
            lines.append(" " + word)
        elif word:
            lines[-1] += " " + word
    return "\r\n".join(lines)


# What no header value may hold: C0 and C1 controls (CR, LF, NUL, TAB included), DEL,
# the Unicode line and paragraph separators, and bidi overrides/isolates (they make a
# name display as something else). A parser or a client may turn any of these into a
# line break or a forged-looking header; RFC 5322 2.2 allows none of them unencoded.
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# RFC 5322 3.6.8: a field name is printable ASCII except ":" (here also no space).
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_ENCODED_WORD = "=?"  # RFC 2047 2: text that a reader's client might decode
_EW_CHUNK = 39  # bytes per encoded word: base64 52, the word 64, "Subject: " + word < 78


# Valid field names met so far: a send checks the same few names for every recipient.
_FIELD_NAMES_SEEN: set[str] = set()


def _plain(value: str) -> bool:
    """Printable ASCII only (space to "~"): nothing ``_UNSAFE_TEXT`` matches can be in it.

    Two C-level scans instead of a regex search; a send checks several values per
    recipient, nearly all of them plain."""
    return value.isascii() and value.isprintable()


def check_header_text(name: str, value: str) -> str:
    """``value`` unchanged when it may be a header value; for JSON APIs (SendGrid) too.

    Raises HeaderInjection naming the header for an invalid field name or a value with
    a control character (see ``_UNSAFE_TEXT``), so no value can end its header line.
    """
    if name not in _FIELD_NAMES_SEEN:
        if not _FIELD_NAME.fullmatch(name):
            raise HeaderInjection(f"{name!r} is not a header field name (RFC 5322 3.6.8)")
        if len(_FIELD_NAMES_SEEN) < 1000:
            _FIELD_NAMES_SEEN.add(name)
    if _plain(value):
        return value
    found = _UNSAFE_TEXT.search(value)
    if found:
        raise HeaderInjection(
            f"the {name} header would contain a control character "
            f"({found.group()!r}); refused so no header or body can be injected"
        )
    return value


def encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words of at most 75 characters, joined by folding.

    Used for every non-ASCII value and every value holding ``=?``: the whole text is one
    run of encoded words, so what a client decodes is exactly the text, never a header.
    """
    data = text.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + _EW_CHUNK, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # not inside a character
            end -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:end], newline=False).decode()}?=")
        start = end
    return " ".join(words)


def header_value(name: str, value: str) -> str:
    """The one way a header line carrying user data is written: ``Name: value``.

    ASCII is folded at spaces (RFC 5322 2.2.3); non-ASCII text and text holding ``=?``
    become RFC 2047 encoded words. Raises HeaderInjection (check_header_text).
    """
    check_header_text(name, value)
    if value.isascii() and _ENCODED_WORD not in value:
        return fold(name, value)
    return fold(name, encoded_words(value))


def address_header(name: str, display_name: str | None, addr: str) -> str:
    """``Name: Display <addr>`` for From/To/Reply-To (RFC 5322 3.4).

    The display name is quoted when it holds specials, or encoded words when it is not
    ASCII or holds ``=?`` (RFC 2047 5(3)). Raises HeaderInjection for a control character
    in either part or an address with a space, a comma or angle brackets.
    """
    check_header_text(name, display_name or "")
    check_header_text(name, addr)
    if any(ch in addr for ch in " ,<>") or not addr:
        raise HeaderInjection(f"{addr!r} cannot be an address in the {name} header")
    return fold(name, address(display_name, addr, field=name))


def address(name: str | None, email: str, *, field: str = "To") -> str:
    """``Name <a@b>`` (unfolded, unchecked: use :func:`address_header` for a header)."""
    if not name:
        return email
    if name.isascii() and _ENCODED_WORD not in name:
        # formataddr's quoting, without its refusal of a UTF-8 address
        name = _ESCAPES.sub(r"\\\g<0>", name)
        return f'"{name}" <{email}>' if _SPECIALS.search(name) else f"{name} <{email}>"
    return f"{encoded_words(name)} <{email}>"


def safe_display_name(name: str | None) -> str | None:
    """A stored reader's name when it may go into a header, else None (address only).

    Input refuses such names (subscribers.addresses.clean_name); a row written before
    that, or by hand, must still neither inject a header nor stop a send.
    """
    if name and not _plain(name) and _UNSAFE_TEXT.search(name):
        return None
    return name or None


def one_line(value: str) -> str:
    """``value`` with every control character and whitespace run as one space: a
    reader's name spliced into a subject line, which must never stop a send."""
    if _plain(value) and "  " not in value and value == value.strip(" "):
        return value  # already one line with single spaces: what the rest would return
    return " ".join(_UNSAFE_TEXT.sub(" ", value).split())


def shown_alike(text: str) -> str:
    """A subject as an inbox shows it, for comparing two: spaces collapsed, case folded
    ("Same" and "same " are one subject to a reader)."""
    return " ".join(text.split()).casefold()


_URL_BREAK = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def check_url_text(url: str, *, field: str = "url") -> str:
    """``url`` unchanged, or InvalidInput (``field``) if it holds whitespace or a control
    character: RFC 3986 has no place for them, and a CR LF inside the request line of a
    fetch or a webhook's POST would start a header of the sender's choosing."""
    if _URL_BREAK.search(url):
        raise InvalidInput("take out the spaces, tabs or line breaks inside the URL", field=field)
    return url
