"""Test copies to typed addresses (campaigns/delivery/proofs.py)."""

from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.delivery import proofs
from newsletter.audit import AuditEntry
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from tests.support.content import make_campaign, make_snippet


def test_typed_addresses_are_split_normalised_and_deduplicated() -> None:
    typed = "Me@Example.com, you@example.com;\nme@example.com  "
    assert proofs.clean_addresses(proofs.split_addresses(typed)) == [
        "me@example.com",
        "you@example.com",
    ]


@pytest.mark.parametrize(
    ("typed", "message"),
    [("", "at least one"), ("me@example.com, not-an-address", "'not-an-address'")],
)
def test_bad_typed_addresses_are_refused_naming_the_first_bad_one(typed: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        proofs.clean_addresses(proofs.split_addresses(typed))


def test_each_address_gets_a_copy_marked_as_a_test_and_the_audit_log_names_them(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session, [make_snippet(session, sqlite_settings)])
        sent = proofs.send_test_copies(
            session,
            settings=sqlite_settings,
            campaign_id=campaign.id or 0,
            addresses=["a@example.com", "b@example.com"],
            actor="jane@example.com",
        )
        audit = session.exec(select(AuditEntry)).one()
    assert sent == ["a@example.com", "b@example.com"]
    assert audit.after == {"to": sent}
    files = sorted(sqlite_settings.outbox_dir.glob("*.eml"))
    recipients = sorted(
        email.message_from_bytes(f.read_bytes(), policy=policy.default)["To"] for f in files
    )
    assert recipients == ["a@example.com", "b@example.com"]
    subject = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)["Subject"]
    assert "TEST" in subject.upper()
