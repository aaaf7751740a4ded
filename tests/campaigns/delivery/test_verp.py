"""VERP return paths: compact, signed for one person, refused when touched."""

from __future__ import annotations

import hmac
from dataclasses import replace
from pathlib import Path

from campaigns.delivery.verp import Verp
from tests.conftest import make_settings

KEY = "0123456789abcdef0123456789abcdef"


def verp(tmp_path: Path, **overrides: object) -> Verp:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'v.db'}", tmp_path, bounce_domain="Bounce.Example.com", **overrides
    )
    return Verp(settings)


def test_the_address_is_a_short_local_part_at_the_bounce_domain(tmp_path):
    address = verp(tmp_path).return_path(2**31, 2**31, KEY)
    local, _at, domain = address.rpartition("@")
    assert domain == "bounce.example.com" and len(local) <= 64
    assert local.startswith("bounces+") and local.replace("+", "").replace(".", "").isalnum()


def test_a_claim_reads_the_ids_back_in_any_case(tmp_path):
    address = verp(tmp_path).return_path(12, 3456, KEY)
    claim = Verp.claim(address.upper())
    assert claim is not None and (claim.campaign_id, claim.subscriber_id) == (12, 3456)
    assert verp(tmp_path).verify(claim, KEY)


def test_another_subscriber_id_or_link_key_does_not_verify(tmp_path):
    maker = verp(tmp_path)
    claim = Verp.claim(maker.return_path(12, 3456, KEY))
    assert claim is not None
    assert not maker.verify(replace(claim, subscriber_id=3457), KEY)
    assert not maker.verify(claim, "f" * 32)  # erased, or signed up again


def test_an_old_secret_key_still_verifies(tmp_path):
    old = verp(tmp_path, secret_key="old-secret-key-0123456789")
    claim = Verp.claim(old.return_path(1, 2, KEY))
    rotated = verp(
        tmp_path,
        secret_key="new-secret-key-0123456789",
        old_secret_keys=["old-secret-key-0123456789"],
    )
    assert claim is not None and rotated.verify(claim, KEY)


def test_other_addresses_are_no_claim(tmp_path):
    assert Verp.claim("news@example.com") is None
    assert Verp.claim("bounces+1.2.short@example.com") is None
    assert Verp.claim("bounces+1.2.0123456789abcdef012g@example.com") is None


def test_the_mac_is_plain_hmac_sha256_under_the_purpose_key(tmp_path):
    maker = verp(tmp_path)
    claim = Verp.claim(maker.return_path(0x7B, 0x6F855, KEY))
    purpose_key = hmac.digest(b"test-secret-key-0123456789abcdef", b"newsletter.verp", "sha256")
    expected = hmac.new(purpose_key, f"7b.6f855.{KEY}".encode(), "sha256").digest()[:10]
    assert claim is not None and claim.mac == expected.hex()
