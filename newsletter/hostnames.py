"""Strict host names: what may stand for a host in a URL we keep or put in a header.

A URL's host goes into places with their own syntax (a Content-Security-Policy source
list, where a space or ``;`` starts a new source or directive), so a host is accepted
only as an IP address or as dot-separated LDH labels (RFC 1123 section 2.1; RFC 1035
section 2.3.4 for the lengths), a non-ASCII name first converted to its IDNA form.
"""

from __future__ import annotations

import ipaddress
import re

HOSTNAME_MAX = 253  # characters of the ASCII form, without a trailing dot (RFC 1035)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")  # whitespace and control characters


def has_unsafe_characters(text: str) -> bool:
    """Whether ``text`` holds whitespace or a control character (none belongs in a URL)."""
    return _UNSAFE.search(text) is not None


def ascii_hostname(host: str | None) -> str | None:
    """``host`` as a lower-case ASCII name (IDNA, RFC 5891, for non-ASCII labels), or an
    IP address in its compressed form; None when it is neither.

    ``host`` is a URL's ``hostname`` (``urlsplit``'s: no brackets, no port). Refused:
    empty labels, labels over 63 characters or starting or ending with ``-``, any
    character but letters, digits and ``-`` (so ``_``, ``*``, ``;`` and spaces), names
    over 253 characters.
    """
    if not host:
        return None
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        text = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if len(text) > HOSTNAME_MAX or not all(_LABEL.match(label) for label in text.split(".")):
        return None
    return text
