"""newsletter/hostnames.py: what counts as a host name in a URL we keep."""

from __future__ import annotations

import pytest

from newsletter.hostnames import ascii_hostname, has_unsafe_characters


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("img.example.org", "img.example.org"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("192.0.2.7", "192.0.2.7"),
        ("2001:DB8::1", "2001:db8::1"),
        ("img.example *", None),
        ("img.example;", None),
        ("img_example", None),
        ("-img.example", None),
        ("a..example", None),
        ("a" * 64 + ".example", None),
        ("", None),
    ],
)
def test_a_host_is_an_ldh_or_idna_name_or_an_ip_address(host: str, expected: str | None) -> None:
    assert ascii_hostname(host) == expected


def test_whitespace_and_control_characters_are_unsafe() -> None:
    assert [has_unsafe_characters(t) for t in ("a b", "a\nb", "a\x7fb", "a%20b")] == [
        True,
        True,
        True,
        False,
    ]
