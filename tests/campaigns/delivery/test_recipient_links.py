"""The fast per-recipient links are exactly the tokens subscribers.tokens makes and verifies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from itsdangerous.timed import TimestampSigner

from campaigns.delivery.recipient_links import RecipientLinks
from newsletter.errors import TokenInvalid
from subscribers.models import new_link_key
from subscribers.tokens import LinkClaim, Purpose, Tokens
from tests.conftest import make_settings


@dataclass(frozen=True)
class Person:
    id: int
    link_key: str


def test_links_equal_tokens_urls_at_the_same_moment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    cfg = make_settings("sqlite://", tmp_path, old_secret_keys=["an-older-key-0123456789"])
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_800_000_000)
    tokens, links = Tokens(cfg), RecipientLinks(cfg)
    for campaign_id in (None, 7, 123_456):
        links.for_campaign(campaign_id)
        for subscriber_id in (1, 9, 64, 999_999, 123_456_789):
            person = Person(subscriber_id, new_link_key())
            values = links.values(subscriber_id, "Zo\u00eb <&>", person.link_key)
            assert values["unsubscribe_url"] == tokens.url(
                Purpose.UNSUBSCRIBE, person, campaign_id=campaign_id
            )
            assert values["preferences_url"] == tokens.url(
                Purpose.PREFERENCES, person, campaign_id=campaign_id
            )
            assert values["name_html"] == "Zo\u00eb &lt;&amp;&gt;"


def test_links_equal_tokens_for_many_random_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """itsdangerous compresses a payload when zlib makes it shorter; the fast path never
    does, so no random key may be compressible."""
    cfg = make_settings("sqlite://", tmp_path)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_800_000_000)
    tokens, links = Tokens(cfg), RecipientLinks(cfg, campaign_id=3)
    for subscriber_id in range(1, 3001):
        person = Person(subscriber_id, new_link_key())
        assert links.values(subscriber_id, None, person.link_key)["unsubscribe_url"] == (
            tokens.url(Purpose.UNSUBSCRIBE, person, campaign_id=3)
        )


def test_links_verify_with_tokens(tmp_path: Path):
    cfg = make_settings("sqlite://", tmp_path)
    key = new_link_key()
    token = RecipientLinks(cfg, campaign_id=5).values(42, None, key)["unsubscribe_url"]
    claim = Tokens(cfg).claim(Purpose.UNSUBSCRIBE, token.rsplit("/", 1)[1])
    assert claim == LinkClaim(subscriber_id=42, link_key=key, campaign_id=5)


def test_a_test_send_link_names_no_one(tmp_path: Path) -> None:
    cfg = make_settings("sqlite://", tmp_path)
    token = RecipientLinks(cfg).values(0, None)["unsubscribe_url"].rsplit("/", 1)[1]
    with pytest.raises(TokenInvalid):
        Tokens(cfg).claim(Purpose.UNSUBSCRIBE, token)


def test_values_carry_a_greeting_that_reads_well_without_a_name(tmp_path: Path):
    links = RecipientLinks(make_settings("sqlite://", tmp_path))
    named = links.values(7, "Zo\u00eb <&>")
    assert (named["greeting"], named["greeting_html"]) == (
        "Hello Zo\u00eb <&>,",
        "Hello Zo\u00eb &lt;&amp;&gt;,",
    )
    for name in (None, "", "   "):
        values = links.values(8, name)
        assert (values["greeting"], values["greeting_html"]) == ("Hello,", "Hello,")
