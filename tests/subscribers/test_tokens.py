"""Signed links: purpose bound in, expiry per purpose, tampering refused, keys rotate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.clock import utcnow
from newsletter.errors import ConfigError, TokenExpired, TokenInvalid
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings

URL = "sqlite:///unused.db"


@dataclass(frozen=True)
class Person:
    """What a link is made for (a Subscriber row has these two)."""

    id: int
    link_key: str = "5f1c9a3e7b2d4086e1f7a9c35b0d82e4"


def who(subscriber_id: int) -> Person:
    return Person(subscriber_id)


def tokens(tmp_path: Path, **overrides: object) -> Tokens:
    return Tokens(make_settings(URL, tmp_path, **overrides))


def test_a_token_verifies_to_its_subscriber(tmp_path: Path) -> None:
    t = tokens(tmp_path)
    assert t.verify(Purpose.CONFIRM, t.make(Purpose.CONFIRM, who(42))) == 42


def test_wrong_purpose_is_refused(tmp_path: Path) -> None:
    t = tokens(tmp_path)
    with pytest.raises(TokenInvalid, match=r"^this unsubscribe link is not valid$"):
        t.verify(Purpose.UNSUBSCRIBE, t.make(Purpose.CONFIRM, who(42)))


def test_tampered_token_is_refused(tmp_path: Path) -> None:
    t = tokens(tmp_path)
    token = t.make(Purpose.UNSUBSCRIBE, who(42))
    rest = token.partition(".")[2]
    forged = t.make(Purpose.UNSUBSCRIBE, who(43)).partition(".")[0] + "." + rest
    assert forged != token
    with pytest.raises(TokenInvalid):
        t.verify(Purpose.UNSUBSCRIBE, forged)


def test_garbage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenInvalid):
        tokens(tmp_path).verify(Purpose.PREFERENCES, "'; DROP TABLE subscriber; --")


def test_token_from_another_secret_is_refused(tmp_path: Path) -> None:
    other = tokens(tmp_path, secret_key="another-secret-key-0123456789")
    with pytest.raises(TokenInvalid):
        tokens(tmp_path).verify(Purpose.CONFIRM, other.make(Purpose.CONFIRM, who(1)))


def test_confirm_token_expires_after_the_configured_days(tmp_path: Path) -> None:
    t = tokens(tmp_path, confirm_token_max_age_days=7)
    old = t.make(Purpose.CONFIRM, who(5), issued_at=utcnow() - timedelta(days=7, minutes=1))
    with pytest.raises(TokenExpired, match=r"^this confirm link has expired$"):
        t.verify(Purpose.CONFIRM, old)


def test_confirm_token_within_its_age_still_works(tmp_path: Path) -> None:
    t = tokens(tmp_path, confirm_token_max_age_days=7)
    recent = t.make(Purpose.CONFIRM, who(5), issued_at=utcnow() - timedelta(days=6, hours=23))
    assert t.verify(Purpose.CONFIRM, recent) == 5


def test_unsubscribe_link_works_at_least_60_days_after_a_send(tmp_path: Path) -> None:
    t = tokens(tmp_path, unsubscribe_token_max_age_days=60)
    sent = t.make(
        Purpose.UNSUBSCRIBE, who(9), issued_at=utcnow() - timedelta(days=60) + timedelta(minutes=1)
    )
    assert t.verify(Purpose.UNSUBSCRIBE, sent) == 9


def test_unsubscribe_lifetime_below_60_days_is_not_allowed(tmp_path: Path) -> None:
    from newsletter.settings import load_settings

    with pytest.raises(ConfigError, match="UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS"):
        load_settings(_env_file=None, unsubscribe_token_max_age_days=30)


def test_rotated_key_still_verifies_old_links(tmp_path: Path) -> None:
    old = tokens(tmp_path, secret_key="old-secret-key-0123456789abcdef")
    token = old.make(Purpose.UNSUBSCRIBE, who(7))
    rotated = tokens(
        tmp_path,
        secret_key="new-secret-key-0123456789abcdef",
        old_secret_keys=["old-secret-key-0123456789abcdef"],
    )
    assert rotated.verify(Purpose.UNSUBSCRIBE, token) == 7


def test_after_rotation_new_links_are_signed_with_the_new_key(tmp_path: Path) -> None:
    rotated = tokens(
        tmp_path,
        secret_key="new-secret-key-0123456789abcdef",
        old_secret_keys=["old-secret-key-0123456789abcdef"],
    )
    new_only = tokens(tmp_path, secret_key="new-secret-key-0123456789abcdef")
    assert new_only.verify(Purpose.CONFIRM, rotated.make(Purpose.CONFIRM, who(3))) == 3


def test_url_carries_the_purpose_and_base(tmp_path: Path) -> None:
    t = tokens(tmp_path, base_url="https://news.example.com/")
    url = t.url(Purpose.PREFERENCES, who(11))
    assert url.startswith("https://news.example.com/preferences/")
    assert t.verify(Purpose.PREFERENCES, url.rsplit("/", 1)[1]) == 11


def test_no_secret_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY is not set"):
        tokens(tmp_path, secret_key=None)
