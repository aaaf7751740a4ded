"""The fast per-recipient links are exactly the tokens subscribers.tokens makes and verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from itsdangerous.timed import TimestampSigner

from campaigns.delivery.recipient_links import RecipientLinks
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings


def test_links_equal_tokens_urls_at_the_same_moment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    cfg = make_settings("sqlite://", tmp_path, old_secret_keys=["an-older-key-0123456789"])
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_800_000_000)
    tokens, links = Tokens(cfg), RecipientLinks(cfg)
    for subscriber_id in (1, 9, 64, 999_999, 123_456_789):
        values = links.values(subscriber_id, "Zo\u00eb <&>")
        assert values["unsubscribe_url"] == tokens.url(Purpose.UNSUBSCRIBE, subscriber_id)
        assert values["preferences_url"] == tokens.url(Purpose.PREFERENCES, subscriber_id)
        assert values["name_html"] == "Zo\u00eb &lt;&amp;&gt;"


def test_links_verify_with_tokens(tmp_path: Path):
    cfg = make_settings("sqlite://", tmp_path)
    token = RecipientLinks(cfg).values(42, None)["unsubscribe_url"].rsplit("/", 1)[1]
    assert Tokens(cfg).verify(Purpose.UNSUBSCRIBE, token) == 42


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
