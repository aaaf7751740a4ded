"""RFC 3463 codes to hard or soft: the one rule for SMTP replies and DSNs."""

from __future__ import annotations

import pytest

from campaigns.tracking.events import RejectReason
from campaigns.tracking.status_codes import enhanced_code, reject_reason

HARD, SOFT = RejectReason.INVALID, RejectReason.BLOCKED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("550 5.1.1 <a@example.org>: User unknown", HARD),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound", HARD),
        ("552 5.2.2 Mailbox full", SOFT),
        ("550 5.7.1 Message rejected by policy", SOFT),
        ("4.2.2", SOFT),
        ("553 mailbox name not allowed", HARD),
        ("550 Requested action not taken", SOFT),
    ],
)
def test_only_addressing_failures_are_hard(text, expected):
    assert reject_reason(text) is expected


def test_a_version_number_is_not_a_status_code():
    assert enhanced_code("Postfix 3.7.10 said: 550 5.1.1 unknown") == "5.1.1"
