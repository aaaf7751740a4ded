"""newsletter.text.decode_text: the one way a text file from a person becomes a str."""

from __future__ import annotations

import codecs

import pytest

from newsletter.errors import InvalidInput
from newsletter.text import decode_text, utf16_encoding

SAMPLE = "---\ntitle: Caf\u00e9 cr\u00e8me\n---\nBody line \u2013 two.\n"


def test_plain_utf8_is_returned_as_is() -> None:
    assert decode_text(SAMPLE.encode("utf-8"), source="a.md") == SAMPLE


def test_a_utf8_bom_is_dropped() -> None:
    text = decode_text(codecs.BOM_UTF8 + SAMPLE.encode("utf-8"), source="a.md")
    assert text == SAMPLE
    assert text.startswith("---")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_decoded(codec: str) -> None:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    data = bom + SAMPLE.encode(codec)
    assert decode_text(data, source="a.md") == SAMPLE
    assert utf16_encoding(data) == "UTF-16"


@pytest.mark.parametrize(("codec", "name"), [("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE")])
def test_utf16_without_a_bom_is_named_not_called_nul_bytes(codec: str, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_text(SAMPLE.encode(codec), source="notes/a.md")
    assert caught.value.where == "notes/a.md"
    assert caught.value.reason.startswith(f"looks like UTF-16 ({name}")
    assert caught.value.reason.endswith("save it as UTF-8")
    assert "NUL" not in str(caught.value)


def test_binary_with_nul_bytes_is_not_text() -> None:
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    assert utf16_encoding(data) is None
    with pytest.raises(InvalidInput, match="NUL bytes: it is not a text file"):
        decode_text(data, source="x.png")


def test_a_byte_that_is_not_utf8_is_reported_with_its_line() -> None:
    data = b"line one\nline two\n" + "caf\u00e9\n".encode("cp1252")
    with pytest.raises(InvalidInput, match=r"is not UTF-8 \(byte 0xe9 on line 3\)"):
        decode_text(data, source="a.md")


def test_empty_input_is_empty_text() -> None:
    assert decode_text(b"", source="a.md") == ""
    assert decode_text(codecs.BOM_UTF8, source="a.md") == ""
