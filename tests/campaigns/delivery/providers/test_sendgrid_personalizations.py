"""Personalizations written as bytes straight from unsigned recipients equal the ones the
values dicts make, for every kind of address and name, and their links verify."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
from itsdangerous.timed import TimestampSigner

from campaigns.delivery.providers.base import UNSIGNED, Recipient
from campaigns.delivery.providers.sendgrid_personalizations import (
    _JSON_CARE,
    _NAME_CARE,
    PersonalizationEncoder,
    encode,
)
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.tracking.links import TrackingValues, make_token, tracking_keys
from newsletter.mail import ANY_CASE_HOLE
from newsletter.settings import Settings
from subscribers.models import new_link_key
from subscribers.tokens import Purpose, Tokens
from tests.conftest import make_settings

NAMES = (
    None,
    "",
    "Ana",
    "Ana Smith",
    "Chloé García",  # accents go into the JSON as UTF-8
    "李小龍",
    'Jo "JJ" Oakes',  # JSON escapes the quotes; the HTML greeting escapes them too
    "Back\\slash",
    "Ann & Bob",
    "<b>Bold</b>",
    "O'Neil",
    "  Padded  ",
    "Two  spaces",
    "Tab\there",
    "Line\nbreak",
    "No\u00a0break",  # whitespace one_line turns into a space
    "Bidi\u202eevil",  # refused in a header: the To carries the address alone
    "Sep\u2028arator",
    "Del\x7f",
    "Ann [%preferences_url%]",  # a placeholder in a name stays text (personal_values)
    "[%NAME%] [x]",
)
EMAILS = ("r{i}@example.com", "zoë{i}@example.com", '"q{i}"@example.com', "R{i}@Example.COM")


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_800_000_000)
    return make_settings("sqlite://", tmp_path, base_url="https://news.example.com")


def links_for(cfg: Settings, *, tracked: bool) -> RecipientLinks:
    links = RecipientLinks(cfg, campaign_id=7)
    if tracked:
        links.tracking = TrackingValues(cfg, campaign_id=7)
    return links


def unsigned(count: int = 0) -> list[Recipient]:
    people = [
        Recipient(1000 + i, 500 + i, email.format(i=i), name, UNSIGNED, plain, None, new_link_key())
        for i, (name, email, plain) in enumerate(
            (name, email, plain) for name in NAMES for email in EMAILS for plain in (False, True)
        )
    ]
    return people[:count] if count else people


def reference(links: RecipientLinks, people: list[Recipient]) -> list[dict]:
    """What the values dicts make: the slower path every other provider uses."""
    signed = [
        Recipient(
            r.delivery_id,
            r.subscriber_id,
            r.email,
            r.name,
            links.values(r.subscriber_id, r.name, r.link_key, not r.plain),
            r.plain,
        )
        for r in people
    ]
    return orjson.loads(encode(7, signed, test=False))


@pytest.mark.parametrize("tracked", [True, False])
def test_encoder_writes_what_the_values_make_for_every_kind_of_reader(cfg: Settings, tracked: bool):
    links = links_for(cfg, tracked=tracked)
    people = unsigned()
    fast = orjson.loads(PersonalizationEncoder(links, 7).encode(people))
    assert fast == reference(links, people)


def test_no_substituted_value_holds_a_placeholder_sendgrid_could_fill_again(cfg: Settings):
    people = unsigned()
    encoded = orjson.loads(PersonalizationEncoder(links_for(cfg, tracked=True), 7).encode(people))
    values = [v for p in encoded for v in p["substitutions"].values()]
    assert values and not [v for v in values if ANY_CASE_HOLE.search(v)]


def test_encoder_output_is_valid_json_with_one_personalization_each(cfg: Settings):
    people = unsigned()
    encoded = PersonalizationEncoder(links_for(cfg, tracked=True), 7).encode(people)
    assert len(orjson.loads(encoded)) == len(people)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_encoder_makes_a_json_array_for_no_one_or_few_readers(cfg: Settings, count: int):
    links = links_for(cfg, tracked=False)
    people = unsigned(count) if count else []
    encoded = PersonalizationEncoder(links, 7).encode(people)
    assert orjson.loads(encoded) == (reference(links, people) if people else [])


def test_encoded_links_verify_for_their_reader_and_purpose(cfg: Settings):
    people = unsigned(8)
    tokens = Tokens(cfg)
    items = orjson.loads(PersonalizationEncoder(links_for(cfg, tracked=True), 7).encode(people))
    for person, item in zip(people, items, strict=True):
        unsubscribe = item["substitutions"]["[%unsubscribe_url%]"]
        preferences = item["substitutions"]["[%preferences_url%]"]
        assert item["headers"]["List-Unsubscribe"] == f"<{unsubscribe}>"
        assert tokens.verify(Purpose.UNSUBSCRIBE, unsubscribe.rsplit("/", 1)[1]) == (
            person.subscriber_id
        )
        assert tokens.verify(Purpose.PREFERENCES, preferences.rsplit("/", 1)[1]) == (
            person.subscriber_id
        )


def test_tracking_token_is_the_readers_own_and_absent_for_plain_readers(cfg: Settings):
    people = unsigned(4)  # tracked, plain, tracked, plain
    items = orjson.loads(PersonalizationEncoder(links_for(cfg, tracked=True), 7).encode(people))
    key = tracking_keys(cfg)[0]
    for person, item in zip(people, items, strict=True):
        token = item["substitutions"].get("[%track%]")
        if person.plain:
            assert token is None
        else:
            assert token == make_token(key, 7, person.subscriber_id, person.link_key)


def test_a_base_url_json_must_escape_takes_the_values_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_800_000_000)
    cfg = make_settings("sqlite://", tmp_path, base_url="https://bücher.example.com/news")
    links = links_for(cfg, tracked=True)
    people = unsigned(12)
    fast = orjson.loads(PersonalizationEncoder(links, 7).encode(people))
    assert fast == reference(links, people)


def test_name_care_covers_every_whitespace_but_the_space():
    """one_line (newsletter.headers) splits on str.isspace's set: the fast path may only
    keep a name holding none of it but single spaces."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and c != 0x20]
    assert [hex(ord(c)) for c in spaces if not _NAME_CARE.search(c)] == []


def test_name_care_lets_accents_and_scripts_through():
    assert not any(_NAME_CARE.search(name) for name in ("Chloé García", "Müller", "李小龍"))


def test_every_character_a_header_refuses_sends_a_reader_down_the_checked_path():
    """The fast path writes To and List-Unsubscribe without newsletter.headers' check:
    whatever that check refuses or changes must never reach it."""
    from newsletter.headers import _UNSAFE_TEXT

    unsafe = [chr(c) for c in range(sys.maxunicode + 1) if _UNSAFE_TEXT.search(chr(c))]
    assert unsafe and [hex(ord(c)) for c in unsafe if not _NAME_CARE.search(c)] == []
    assert [hex(ord(c)) for c in unsafe if not _JSON_CARE.search(c)] == []
