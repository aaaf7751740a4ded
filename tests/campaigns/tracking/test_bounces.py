"""Parsing the bounce samples we wrote (tests/support/dsn): who failed, hard or soft, whose."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Delivery
from campaigns.tracking.bounces import Bounce, Owners, parse_bounce
from campaigns.tracking.events import RejectReason
from newsletter.settings import Settings
from tests.support.delivery import add_subscribers, make_campaign
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


def owners_of(engine: Engine, settings: Settings, nonce: str) -> dict[str, object] | None:
    """Whose a no-VERP hard bounce about user1 is, quoting ``<campaign>.<delivery>.<nonce>@``."""
    add_subscribers(engine, 1)
    with Session(engine) as session:
        campaign = make_campaign(session)
        delivery = Delivery(campaign_id=campaign.id, subscriber_id=1, status="sent")
        session.add(delivery)
        session.flush()
        stem = f"{campaign.id}.{delivery.id}"
        delivery.provider_message_id = f"{stem}.9f3c2a7e51d04b68@news.example.com"
        session.commit()
        quoted = f"{stem}.{nonce}@news.example.com"
        bounce = Bounce("user1@example.com", RejectReason.INVALID, "5.1.1", None, None, quoted)
        return Owners(session, settings).ids(bounce)


def test_the_exact_stored_message_id_names_its_delivery(engine: Engine, settings: Settings):
    ids = owners_of(engine, settings, "9f3c2a7e51d04b68")
    assert ids is not None and ids["email"] == "user1@example.com"


def test_a_message_id_with_another_nonce_names_nobody(engine: Engine, settings: Settings):
    assert owners_of(engine, settings, "0000000000000000") is None
