"""What a receiving server's status code says about an address (RFC 3463, RFC 5321 4.2).

One rule for a refusal read during the send (an SMTP reply) and one read later from a
delivery status notification (the ``Status:`` of RFC 3464 2.3.4), in the field's words
(``RejectReason``), so both end in the same effects as a provider's bounce event
(``campaigns.tracking.effects``):

- ``5.1.x`` (addressing: no such user, bad domain...) is a hard bounce, ``INVALID``:
  the address stops at once;
- every other refusal (``5.2.2`` mailbox full, ``5.7.x`` policy, ``5.x.x`` of the
  mail system, any ``4.x.x``) is a soft bounce, ``BLOCKED``: counted, and the address
  stops only after ``soft_bounce_limit`` in a row;
- without an enhanced code, the basic code decides: 551 (user not local) and 553
  (mailbox name not allowed) are hard, the rest soft (550 also means "refused by
  policy", RFC 5321 4.2.3).
"""

from __future__ import annotations

import re

from campaigns.tracking.events import RejectReason

__all__ = ["enhanced_code", "reject_reason"]

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_BASIC = re.compile(r"^\s*([245]\d\d)\b")
_HARD_BASIC = {551, 553}


def enhanced_code(text: str) -> str | None:
    """The first RFC 3463 status code in ``text`` ("5.1.1"), or None."""
    found = _ENHANCED.search(text)
    return ".".join(found.groups()) if found else None


def reject_reason(text: str, *, code: int | None = None) -> RejectReason:
    """``INVALID`` (hard) or ``BLOCKED`` (soft) for a refusal, by the rules above.

    ``text`` is the reply or the DSN's status ("550 5.1.1 User unknown", "4.2.2");
    ``code`` the basic SMTP code when known apart from it.
    """
    enhanced = enhanced_code(text)
    if enhanced is not None:
        return RejectReason.INVALID if enhanced.startswith("5.1.") else RejectReason.BLOCKED
    if code is None:
        basic = _BASIC.match(text)
        code = int(basic.group(1)) if basic else None
    return RejectReason.INVALID if code in _HARD_BASIC else RejectReason.BLOCKED
