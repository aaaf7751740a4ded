"""Parsing the bounce samples we wrote (tests/support/dsn): who failed, hard or soft, whose."""

from __future__ import annotations

import pytest

from campaigns.tracking.bounces import parse_bounce
from campaigns.tracking.events import RejectReason
from tests.support.imap import dsn_sample

VERP = "bounces+7.2a.0123456789abcdef0123@bounce.news.example.com"
OURS = "7.102.0123456789abcdef@news.example.com"
ADDRESS = "ann@example.org"


def parsed(name: str, **values: str):
    given = {"verp": VERP, "recipient": ADDRESS, "message_id": OURS, **values}
    return parse_bounce(dsn_sample(name, **given))


@pytest.mark.parametrize(
    ("sample", "reason", "status"),
    [
        ("rfc3464_hard_5.1.1.eml", RejectReason.INVALID, "5.1.1"),
        ("rfc3464_soft_4.2.2.eml", RejectReason.BLOCKED, "4.2.2"),
        ("postfix_nonstandard.eml", RejectReason.INVALID, "5.1.1"),
        ("exim_nonstandard.eml", RejectReason.BLOCKED, "5.2.2"),
    ],
)
def test_each_sample_names_the_failed_address_and_how_hard(sample, reason, status):
    (bounce,) = parsed(sample)
    assert (bounce.address, bounce.reason, bounce.status) == (ADDRESS, reason, status)


@pytest.mark.parametrize(
    "sample", ["rfc3464_hard_5.1.1.eml", "postfix_nonstandard.eml", "exim_nonstandard.eml"]
)
def test_the_verp_address_and_our_message_id_are_found(sample):
    (bounce,) = parsed(sample)
    assert (bounce.verp, bounce.message_id) == (VERP, OURS)


def test_an_auto_reply_is_not_a_bounce():
    assert parsed("autoreply_not_a_bounce.eml") == []


def test_a_message_id_not_of_ours_is_not_taken_for_one():
    (bounce,) = parsed("rfc3464_hard_5.1.1.eml", message_id="CAF00@mail.example.org")
    assert bounce.message_id is None


def test_the_dsn_diagnostic_is_kept_in_one_line():
    (bounce,) = parsed("rfc3464_hard_5.1.1.eml")
    assert bounce.diagnostic == (
        f"smtp; 550 5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown"
    )
