"""Address normal form and validation: one address, one spelling, clear errors."""

from __future__ import annotations

import hashlib

import pytest

from newsletter.errors import InvalidEmail, InvalidInput
from subscribers.addresses import clean_name, email_hash, normalise_email


def test_normalise_trims_and_lower_cases() -> None:
    assert normalise_email("  Jane.Doe@Example.COM \n") == "jane.doe@example.com"


def test_internationalised_domain_is_stored_in_ascii() -> None:
    assert normalise_email("anna@Bücher.de") == "anna@xn--bcher-kva.de"


def test_internationalised_local_part_is_refused_clearly() -> None:
    with pytest.raises(InvalidEmail) as caught:
        normalise_email("jürgen@example.com")
    assert "Internationalized characters before the @-sign are not supported" in str(caught.value)
    assert caught.value.field == "email"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "field 'email': an email address is required"),
        ("   ", "field 'email': an email address is required"),
        (
            "no-at-sign",
            "field 'email': 'no-at-sign' is not a valid email address: An email "
            "address must have an @-sign.",
        ),
        (
            "a@b",
            "field 'email': 'a@b' is not a valid email address: The part after the @-sign "
            "is not valid. It should have a period.",
        ),
        (
            "Jane <jane@example.com>",
            "field 'email': 'Jane <jane@example.com>' is not a valid "
            "email address: A display name and angle brackets around the email address are not "
            "permitted here.",
        ),
    ],
)
def test_malformed_addresses_get_a_clear_message(raw: str, expected: str) -> None:
    with pytest.raises(InvalidEmail) as caught:
        normalise_email(raw)
    assert str(caught.value) == expected


def test_sql_looking_address_is_just_invalid() -> None:
    with pytest.raises(InvalidEmail, match="is not a valid email address"):
        normalise_email("x'; DROP TABLE subscriber; --@example.com")


def test_overlong_address_is_refused_with_its_length() -> None:
    raw = "a" * 60 + "@" + "b" * 200 + ".com"
    with pytest.raises(InvalidEmail) as caught:
        normalise_email(raw)
    assert caught.value.reason == "the address is too long (265 characters; at most 254)"


def test_overlong_local_part_is_refused() -> None:
    with pytest.raises(InvalidEmail) as caught:
        normalise_email("a" * 65 + "@example.com")
    assert caught.value.reason == "the part before the @ is too long (65 characters; at most 64)"


def test_huge_input_never_reaches_the_parser() -> None:
    with pytest.raises(InvalidEmail, match="too long"):
        normalise_email("a@" * 100_000)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidEmail, match="an email address is required"):
        normalise_email(None)


def test_hash_is_sha256_of_the_normal_form() -> None:
    expected = hashlib.sha256(b"jane@example.com").hexdigest()
    assert email_hash(" JANE@example.com") == expected


def test_hash_of_an_unparseable_address_still_works() -> None:
    assert email_hash(" Odd@Localhost ") == hashlib.sha256(b"odd@localhost").hexdigest()


def test_clean_name_collapses_whitespace() -> None:
    assert clean_name("  Jane \t  Doe ") == "Jane Doe"


def test_empty_name_is_none() -> None:
    assert clean_name("   ") is None


def test_name_with_control_characters_is_refused() -> None:
    with pytest.raises(InvalidInput, match="control characters"):
        clean_name("Jane\x00Doe")


def test_name_with_bidi_override_is_refused() -> None:
    with pytest.raises(InvalidInput, match="control characters"):
        clean_name("Jane\u202eeoD")


def test_overlong_name_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"the name is too long \(201 characters"):
        clean_name("x" * 201)
