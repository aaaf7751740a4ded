"""Feeds are read entry by entry (issue 12 point 8: a 200 MB feed once took 4.2 GB).

The stream must give what ``feedparser.parse`` gives, however the bytes are cut; hold
about one entry at a time, not the document; and fall back to feedparser's forgiving
parser for a feed that is not well-formed XML without counting an entry twice.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import feedparser
import pytest
from sqlmodel import Session, select

from campaigns.content.feeds import FeedNotWellFormed, FeedStream
from campaigns.content.snippet_import import import_snippets
from campaigns.models import Snippet
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from tests.support.content import CONTENT_DIR


def item(n: int, link: str | None = None, body: str = "A summary.") -> str:
    return (
        f"<item><title>Entry {n}</title><link>{link or f'https://blog.example.com/{n}'}</link>"
        f"<description>{body}</description><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>"
        "</item>"
    )


def rss(items: str, *, head: str = "<link>https://blog.example.com/</link>", tail: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"{head}<description>d</description>{items}{tail}</channel></rss>"
    )


def streamed(data: bytes, piece: int) -> tuple[list[Any], FeedStream]:
    stream = FeedStream(name="f.xml")
    entries: list[Any] = []
    for start in range(0, len(data), piece):
        entries += stream.write(data[start : start + piece])
    entries += stream.close()
    return entries, stream


def urls(session: Session) -> set[str]:
    return {s.url for s in session.exec(select(Snippet)).all()}


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_the_stream_gives_what_feedparser_gives_however_the_bytes_are_cut(piece: int) -> None:
    data = (CONTENT_DIR / "feed.xml").read_bytes()
    whole = feedparser.parse(data)
    entries, stream = streamed(data, piece)
    fields = ("title", "link", "summary", "published_parsed", "author", "tags", "links")
    assert [[e.get(f) for f in fields] for e in entries] == [
        [e.get(f) for f in fields] for e in whole.entries
    ]
    assert (stream.version, stream.link) == (whole.version, whole.feed.link)


def test_letters_split_between_pieces_and_other_encodings_survive() -> None:
    title = "Caf\u00e9 \u2013 na\u00efve stretches \U0001f9d8"
    utf8 = rss(item(1).replace("Entry 1", title)).encode("utf-8")
    entries, _ = streamed(utf8, 1)  # every multi-byte letter arrives in pieces
    assert entries[0].title == title
    cp1252 = rss(item(1).replace("Entry 1", "Caf\u00e9")).replace('"UTF-8"', '"windows-1252"')
    entries, _ = streamed(cp1252.encode("cp1252"), 3)
    assert entries[0].title == "Caf\u00e9"
    entries, _ = streamed(rss(item(1)).encode("utf-16"), 5)  # with its BOM
    assert entries[0].link == "https://blog.example.com/1"


def test_utf16_without_a_bom_names_the_encoding() -> None:
    with pytest.raises(InvalidInput, match=r"looks like UTF-16 \(UTF-16LE"):
        streamed(rss(item(1) * 50).encode("utf-16-le"), 4096)


def test_a_document_that_is_not_well_formed_says_so() -> None:
    with pytest.raises(FeedNotWellFormed):
        streamed(rss(item(1, body="Salt & pepper")).encode(), 64)


def test_a_doctype_with_entities_is_dropped_before_parsing() -> None:
    """As feedparser.parse does: no entity expansion from a feed's own DOCTYPE."""
    laughs = '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
    data = rss(item(1)).replace("<rss", laughs + "<rss", 1).encode()
    entries, stream = streamed(data, 10)
    assert [e.link for e in entries] == ["https://blog.example.com/1"]
    assert stream.version == "rss20"


def test_the_import_holds_an_entry_at_a_time_not_the_document(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    """Two hundred 50 KB entries: 10 MB of feed, imported with a few MB at most."""
    body = "<![CDATA[<p>" + "Stretch the calf gently before bed. " * 1400 + "</p>]]>"
    path = tmp_path / "big.xml"
    path.write_text(rss("".join(item(n, body=body) for n in range(200))), encoding="utf-8")
    assert path.stat().st_size > 10_000_000
    tracemalloc.start()
    try:
        report = import_snippets(session, settings=settings, source=str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report.created, report.problems) == (200, [])
    assert peak < 4_000_000, f"peak {peak:,} bytes of Python objects for a 10 MB feed"


def test_a_feed_that_is_not_well_formed_is_read_whole_and_counted_once(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    """Four entries are saved by the stream before the bad '&'; they are rolled back and
    the forgiving parser's pass counts all of them once, as created."""
    items = "".join(item(n) for n in range(1, 5)) + item(5, body="Salt & pepper") + item(6)
    path = tmp_path / "sloppy.xml"
    path.write_text(rss(items), encoding="utf-8")
    report = import_snippets(session, settings=settings, source=str(path))
    assert (report.created, report.updated, report.unchanged, report.problems) == (6, 0, 0, [])
    assert len(urls(session)) == 6


def test_relative_links_wait_for_a_site_link_that_comes_after_the_entries(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    items = item(1, link="https://elsewhere.example.org/x") + item(2, link="/posts/two")
    items += item(3, link="https://blog.example.com/3") + item(4, link="/posts/two")
    path = tmp_path / "late.xml"
    path.write_text(
        rss(items, head="", tail="<link>https://late.example.net/</link>"), encoding="utf-8"
    )
    report = import_snippets(session, settings=settings, source=str(path))
    assert report.problems == ["late.xml: entry 4: same link as entry 2; skipped"]
    assert urls(session) == {
        "https://elsewhere.example.org/x",
        "https://late.example.net/posts/two",
        "https://blog.example.com/3",
    }


def test_a_well_formed_document_that_is_not_a_feed_is_an_error(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "page.xml"
    path.write_text("<?xml version='1.0'?><html><body><p>Hello</p></body></html>")
    with pytest.raises(InvalidInput, match="not an RSS or Atom feed"):
        import_snippets(session, settings=settings, source=str(path))


def test_an_entry_whose_link_cannot_be_read_is_one_problem_and_the_rest_imported(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    """urlsplit raises on an unclosed "[" in a host: it ended the whole import."""
    path = tmp_path / "bracket.xml"
    path.write_text(rss(item(1) + item(2, link="https://[%name%]@blog.example.com/b")))
    report = import_snippets(session, settings=settings, source=str(path))
    assert report.created == 1
    assert report.problems == [
        "bracket.xml: entry 2: link 'https://[%name%]@blog.example.com/b' is not a valid URL"
    ]
