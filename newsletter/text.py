"""Text files from people: bytes to ``str``, whatever their editor did to them.

Notepad and PowerShell save UTF-8 with a byte-order mark (BOM, U+FEFF as EF BB BF), and
"Unicode" in Windows dialogs means UTF-16. Every text input (Markdown snippets, feeds,
template overrides, ``.env``, and the subscribers' CSV import) goes through
:func:`decode_text` so each accepts a BOM and explains a UTF-16 file instead of failing
on an invisible first character or "NUL bytes".
"""

from __future__ import annotations

import codecs

from newsletter.errors import InvalidInput

_SNIFF_BYTES = 4096


def utf16_without_bom(data: bytes) -> str | None:
    """'UTF-16LE' or 'UTF-16BE' when BOM-less bytes look like UTF-16, else None.

    Mostly-ASCII text in UTF-16 has a NUL in every other byte (the high byte of each code
    unit): at odd offsets for little-endian, at even ones for big-endian. UTF-8 text never
    contains NUL, so a third of the pairs is far beyond chance.
    """
    sample = data[: _SNIFF_BYTES - _SNIFF_BYTES % 2]
    pairs = len(sample) // 2
    if not pairs or b"\x00" not in sample:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= pairs * 0.3 and even <= odd * 0.1:
        return "UTF-16LE"
    if even >= pairs * 0.3 and odd <= even * 0.1:
        return "UTF-16BE"
    return None


def utf16_encoding(data: bytes) -> str | None:
    """'UTF-16' (with a BOM), 'UTF-16LE' / 'UTF-16BE' (without), or None for other bytes."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    return utf16_without_bom(data)


def decode_text(data: bytes, *, source: str) -> str:
    """The text of a file meant to be UTF-8; a UTF-8 BOM is dropped.

    UTF-16 with a BOM is decoded (the BOM says what it is). Raises InvalidInput (``where``
    = ``source``) naming the encoding for UTF-16 without a BOM ("looks like UTF-16LE ...;
    save it as UTF-8"), for NUL bytes (not a text file) and for bytes that are not UTF-8
    (with the line of the first bad byte). BOMs: Unicode 15, section 23.8.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # the BOM picks the byte order and is consumed
        except UnicodeDecodeError as err:
            raise InvalidInput(
                f"is not valid UTF-16 ({err.reason}); save it as UTF-8", where=source
            ) from err
    data = data.removeprefix(codecs.BOM_UTF8)
    guess = utf16_without_bom(data)
    if guess is not None:
        raise InvalidInput(
            f"looks like UTF-16 ({guess}, without a byte-order mark); save it as UTF-8",
            where=source,
        )
    if b"\x00" in data:
        raise InvalidInput("contains NUL bytes: it is not a text file", where=source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InvalidInput(
            f"is not UTF-8 (byte 0x{data[err.start]:02x} on line {line}); save it as UTF-8",
            where=source,
        ) from err
