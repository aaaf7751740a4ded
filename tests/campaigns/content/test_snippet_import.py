"""Importing snippets: Markdown with front matter, RSS and Atom feeds from files and URLs."""

from __future__ import annotations

import codecs
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from campaigns.content.feeds import html_to_text
from campaigns.content.snippet_import import import_snippets
from campaigns.models import Snippet
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from tests.support.content import CONTENT_DIR
from tests.support.servers import QuietHTTPServer


def rss(*items: str, channel_link: str = "https://blog.example.com/") -> str:
    link = f"<link>{channel_link}</link>" if channel_link else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>T</title>'
        f"{link}<description>d</description>{''.join(items)}</channel></rss>"
    )


def item(
    title: str = "A title",
    link: str | None = "https://blog.example.com/a",
    description: str = "A summary.",
    date: str | None = "Mon, 02 Nov 2026 10:00:00 GMT",
    extra: str = "",
) -> str:
    parts = [f"<title>{title}</title>", f"<description>{description}</description>", extra]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    return f"<item>{''.join(parts)}</item>"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def snippets(session: Session) -> dict[str, Snippet]:
    return {s.url: s for s in session.exec(select(Snippet)).all()}


MARKDOWN = """---
title: {title}
url: https://blog.example.com/md/{slug}
category: Leg Cramps
tags: [cramps, night]
published: 2026-11-03
---
{body}
"""


# ---------------------------------------------------------------- shipped samples


def test_shipped_markdown_folder_imports_every_file(session: Session, settings: Settings) -> None:
    report = import_snippets(session, settings=settings, source=str(CONTENT_DIR / "snippets"))
    files = list((CONTENT_DIR / "snippets").glob("*.md"))
    assert (report.created, report.problems) == (len(files), [])
    assert 6 <= len(files) <= 10


def test_shipped_feed_imports_every_entry_with_absolute_links(
    session: Session, settings: Settings
) -> None:
    report = import_snippets(session, settings=settings, source=str(CONTENT_DIR / "feed.xml"))
    assert (report.created, report.problems) == (6, [])
    stored = snippets(session)
    assert "https://blog.painrelief.example/articles/hamstrings-and-sciatica" in stored
    assert all(url.startswith("https://") for url in stored)


def test_reimport_is_idempotent(session: Session, settings: Settings) -> None:
    for source in ("snippets", "feed.xml"):
        import_snippets(session, settings=settings, source=str(CONTENT_DIR / source))
    count = len(snippets(session))
    again = import_snippets(session, settings=settings, source=str(CONTENT_DIR / "feed.xml"))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)
    assert len(snippets(session)) == count


# ---------------------------------------------------------------- Markdown


def test_markdown_front_matter_fills_the_snippet(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "a.md",
        MARKDOWN.format(
            title="Cramps at night", slug="a", body="Stretch the **calf** before [bed](/x)."
        ),
    )
    import_snippets(session, settings=settings, source=str(tmp_path / "a.md"))
    snippet = snippets(session)["https://blog.example.com/md/a"]
    assert snippet.title == "Cramps at night"
    assert snippet.summary == "Stretch the calf before bed."
    assert snippet.category == "leg-cramps"
    assert snippet.tags == ["cramps", "night"]
    assert snippet.published_at.date().isoformat() == "2026-11-03"


def test_changed_markdown_updates_the_snippet_instead_of_duplicating(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "a.md", MARKDOWN.format(title="Old", slug="a", body="Body."))
    import_snippets(session, settings=settings, source=str(path))
    write(tmp_path, "a.md", MARKDOWN.format(title="New", slug="a", body="Body."))
    report = import_snippets(session, settings=settings, source=str(path))
    assert (report.created, report.updated) == (0, 1)
    assert [s.title for s in snippets(session).values()] == ["New"]


def test_invalid_yaml_is_reported_with_file_and_line_and_skipped(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "good.md", MARKDOWN.format(title="Good", slug="good", body="Fine."))
    write(tmp_path, "broken.md", "---\ntitle: ok\nurl: [unclosed\n---\nBody\n")
    report = import_snippets(session, settings=settings, source=str(tmp_path))
    assert report.created == 1
    assert len(report.problems) == 1
    assert report.problems[0].startswith("broken.md:")
    assert "front matter is not valid YAML" in report.problems[0]


def test_missing_title_is_reported_at_line_one(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "untitled.md", "---\nurl: https://blog.example.com/u\n---\nBody\n")
    report = import_snippets(session, settings=settings, source=str(tmp_path))
    assert report.problems == ["untitled.md:1: front matter: missing 'title'"]


def test_relative_markdown_url_is_reported(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "rel.md", "---\ntitle: T\nurl: /just/a/path\npublished: 2026-11-01\n---\nB\n")
    report = import_snippets(session, settings=settings, source=str(tmp_path))
    assert report.problems == ["rel.md:3: url: '/just/a/path' is not an absolute http(s) URL"]


def test_a_folder_without_markdown_is_an_error(
    settings: Settings, session: Session, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="no Markdown"):
        import_snippets(session, settings=settings, source=str(tmp_path))


# ---------------------------------------------------------------- feeds


def test_bad_feed_entry_is_reported_with_its_position_and_the_rest_kept(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    feed = rss(
        item(link="https://blog.example.com/1"),
        item(link=None),
        item(link="https://blog.example.com/3"),
    )
    report = import_snippets(
        session, settings=settings, source=str(write(tmp_path, "feed.xml", feed))
    )
    assert report.problems == ["feed.xml: entry 2: missing link"]
    assert report.created == 2


def test_duplicate_entries_in_one_feed_are_reported_once(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    feed = rss(
        item(link="https://blog.example.com/same"),
        item(title="Again", link="https://blog.example.com/same#frag"),
    )
    report = import_snippets(session, settings=settings, source=str(write(tmp_path, "f.xml", feed)))
    assert report.problems == ["f.xml: entry 2: same link as entry 1; skipped"]
    assert len(snippets(session)) == 1


def test_relative_entry_links_resolve_against_the_site_link(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    feed = rss(
        item(
            link="/posts/cramps", extra='<enclosure url="/img/c.jpg" type="image/jpeg" length="1"/>'
        ),
        channel_link="https://site.example.org/blog/",
    )
    import_snippets(session, settings=settings, source=str(write(tmp_path, "f.xml", feed)))
    snippet = snippets(session)["https://site.example.org/posts/cramps"]
    assert snippet.image_url == "https://site.example.org/img/c.jpg"
    assert snippet.image_alt == snippet.title


def test_relative_link_without_any_base_is_reported(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    feed = rss(item(link="/posts/x"), channel_link="")
    report = import_snippets(session, settings=settings, source=str(write(tmp_path, "f.xml", feed)))
    assert report.created == 0
    assert report.problems[0].startswith("f.xml: entry 1: link '/posts/x' is not an http(s) URL")


def test_html_in_summaries_becomes_clean_text(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    description = (
        "<![CDATA[<p>Ease <b>cramps</b> &amp; sleep.</p><p>See <a href='/guide'>the guide</a>"
        "</p><script>alert(1)</script><img src=x onerror=alert(2)>]]>"
    )
    feed = rss(item(title="Cramps &amp;amp; sleep", description=description))
    import_snippets(session, settings=settings, source=str(write(tmp_path, "f.xml", feed)))
    snippet = snippets(session)["https://blog.example.com/a"]
    assert snippet.summary == "Ease cramps & sleep. See the guide"
    assert snippet.title == "Cramps & sleep"


def test_html_to_text_drops_scripts_and_decodes_entities() -> None:
    assert html_to_text("<div>a<br>b</div><style>p{}</style><script>x()</script>&lt;ok&gt;") == (
        "a b <ok>"
    )


def test_javascript_entry_link_is_refused(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    feed = rss(item(link="javascript:alert(1)"))
    report = import_snippets(session, settings=settings, source=str(write(tmp_path, "f.xml", feed)))
    assert report.created == 0
    assert report.problems and report.problems[0].startswith("f.xml: entry 1: ")


def test_undated_entry_keeps_its_first_date_on_reimport(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "f.xml", rss(item(date=None)))
    import_snippets(session, settings=settings, source=str(path))
    again = import_snippets(session, settings=settings, source=str(path))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


def test_atom_feed_with_xml_base_and_html_title(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    atom = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example.org/blog/">
  <title>Atom</title><id>urn:x</id><updated>2026-11-10T10:00:00Z</updated>
  <link href="https://atom.example.org/"/>
  <entry>
    <title type="html">&lt;em&gt;Sciatica&lt;/em&gt; basics</title>
    <link href="posts/one"/><id>urn:1</id><updated>2026-11-10T10:00:00Z</updated>
    <author><name>Dr. A</name></author>
    <category term="Sciatica"/>
    <content type="html">&lt;p&gt;Nerve pain explained.&lt;/p&gt;</content>
  </entry>
</feed>"""
    report = import_snippets(
        session, settings=settings, source=str(write(tmp_path, "a.atom", atom))
    )
    assert report.problems == []
    snippet = snippets(session)["https://atom.example.org/blog/posts/one"]
    assert (snippet.title, snippet.summary, snippet.category, snippet.author) == (
        "Sciatica basics",
        "Nerve pain explained.",
        "sciatica",
        "Dr. A",
    )


def test_a_file_that_is_not_a_feed_is_an_error(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="not an RSS or Atom feed"):
        import_snippets(
            session, settings=settings, source=str(write(tmp_path, "notes.txt", "just some words"))
        )


# ---------------------------------------------------------------- from a URL


def local(settings: Settings) -> Settings:
    """Settings that let a fetch reach the test's server on 127.0.0.1 (refused by default)."""
    return settings.model_copy(update={"fetch_allow_private": True})


@pytest.fixture
def feed_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_feed_from_url_resolves_relative_links_against_the_feed_url(
    session: Session, settings: Settings, feed_server: tuple[str, Path]
) -> None:
    base, root = feed_server
    (root / "feeds").mkdir()
    write(root / "feeds", "rss.xml", rss(item(link="/articles/a"), channel_link=""))
    report = import_snippets(session, settings=local(settings), source=f"{base}/feeds/rss.xml")
    assert (report.created, report.problems) == (1, [])
    assert f"{base}/articles/a" in snippets(session)


def test_unreachable_feed_url_is_a_clear_error(
    session: Session, settings: Settings, feed_server: tuple[str, Path]
) -> None:
    base, _ = feed_server
    with pytest.raises(InvalidInput, match="HTTP 404"):
        import_snippets(session, settings=local(settings), source=f"{base}/missing.xml")


def test_shipped_feed_from_its_url_gives_the_same_snippets_as_the_file(
    session: Session, settings: Settings, feed_server: tuple[str, Path]
) -> None:
    base, root = feed_server
    (root / "feed.xml").write_bytes((CONTENT_DIR / "feed.xml").read_bytes())
    from_url = import_snippets(session, settings=local(settings), source=f"{base}/feed.xml")
    from_file = import_snippets(session, settings=settings, source=str(CONTENT_DIR / "feed.xml"))
    assert (from_url.created, from_url.problems, from_file.created) == (6, [], 0)
    stored = snippets(session)
    assert len(stored) == 6
    hamstrings = stored["https://blog.painrelief.example/articles/hamstrings-and-sciatica"]
    assert hamstrings.image_url == "https://blog.painrelief.example/images/towel-stretch.jpg"


def test_atom_feed_from_url_resolves_relative_links_against_the_feed_url(
    session: Session, settings: Settings, feed_server: tuple[str, Path]
) -> None:
    base, root = feed_server
    (root / "feeds").mkdir()
    atom = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom</title><id>urn:x</id><updated>2026-11-10T10:00:00Z</updated>
  <entry>
    <title>Cramps at night</title><link href="posts/cramps"/><id>urn:1</id>
    <updated>2026-11-10T10:00:00Z</updated><summary>Stretch the calf.</summary>
  </entry>
</feed>"""
    write(root / "feeds", "a.atom", atom)
    report = import_snippets(session, settings=local(settings), source=f"{base}/feeds/a.atom")
    assert (report.created, report.problems) == (1, [])
    assert f"{base}/feeds/posts/cramps" in snippets(session)


def test_relative_markdown_image_resolves_against_the_article_url(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "img.md",
        "---\ntitle: T\nurl: https://blog.example.com/articles/t\nimage: /img/t.jpg\n"
        "image_alt: A calf stretch\npublished: 2026-11-01\n---\nBody.\n",
    )
    report = import_snippets(session, settings=settings, source=str(tmp_path / "img.md"))
    assert report.problems == []
    snippet = snippets(session)["https://blog.example.com/articles/t"]
    assert snippet.image_url == "https://blog.example.com/img/t.jpg"


# ---------------------------------------------------------------- encodings (issue 13)


def test_markdown_saved_with_a_utf8_bom_imports(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    text = MARKDOWN.format(title="Bom", slug="bom", body="Saved by Notepad.")
    (tmp_path / "bom.md").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    report = import_snippets(session, settings=settings, source=str(tmp_path))
    assert (report.created, report.problems) == (1, [])
    assert snippets(session)["https://blog.example.com/md/bom"].title == "Bom"


def test_markdown_in_utf16_with_a_bom_imports(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    text = MARKDOWN.format(title="Caf\u00e9", slug="u16", body="Saved as Unicode.")
    (tmp_path / "u16.md").write_bytes(text.encode("utf-16"))  # with its BOM
    report = import_snippets(session, settings=settings, source=str(tmp_path))
    assert (report.created, report.problems) == (1, [])
    assert snippets(session)["https://blog.example.com/md/u16"].title == "Caf\u00e9"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_markdown_in_utf16_without_a_bom_is_reported_as_utf16(
    session: Session, settings: Settings, tmp_path: Path, codec: str
) -> None:
    text = MARKDOWN.format(title="No bom", slug="nobom", body="Body.")
    (tmp_path / "nobom.md").write_bytes(text.encode(codec))
    write(tmp_path, "good.md", MARKDOWN.format(title="Good", slug="good", body="Body."))
    report = import_snippets(session, settings=settings, source=str(tmp_path))
    assert report.created == 1
    assert len(report.problems) == 1
    assert report.problems[0].startswith("nobom.md: looks like UTF-16")
    assert "save it as UTF-8" in report.problems[0]
    assert "front matter" not in report.problems[0]


def test_feed_file_with_a_utf8_bom_imports(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bom.xml"
    path.write_bytes(codecs.BOM_UTF8 + rss(item()).encode("utf-8"))
    report = import_snippets(session, settings=settings, source=str(path))
    assert (report.created, report.problems) == (1, [])


def test_feed_in_utf16_with_a_bom_imports_from_a_file_and_a_url(
    session: Session, settings: Settings, tmp_path: Path, feed_server: tuple[str, Path]
) -> None:
    base, root = feed_server
    feed = rss(item(title="Caf\u00e9 stretches")).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    (root / "u16.xml").write_bytes(feed.encode("utf-16"))
    from_url = import_snippets(session, settings=local(settings), source=f"{base}/u16.xml")
    assert (from_url.created, from_url.problems) == (1, [])
    assert snippets(session)["https://blog.example.com/a"].title == "Caf\u00e9 stretches"
    # The same feed declaring UTF-8 (an editor re-saved it without fixing the declaration).
    path = tmp_path / "declared-utf8.xml"
    path.write_bytes(rss(item(link="https://blog.example.com/b")).encode("utf-16"))
    from_file = import_snippets(session, settings=settings, source=str(path))
    assert (from_file.created, from_file.problems) == (1, [])


def test_feed_in_utf16_without_a_bom_names_the_encoding(
    session: Session, settings: Settings, tmp_path: Path, feed_server: tuple[str, Path]
) -> None:
    base, root = feed_server
    data = rss(item()).encode("utf-16-le")
    (root / "nobom.xml").write_bytes(data)
    (tmp_path / "nobom.xml").write_bytes(data)
    for source in (f"{base}/nobom.xml", str(tmp_path / "nobom.xml")):
        with pytest.raises(InvalidInput, match=r"looks like UTF-16.*save it as UTF-8"):
            import_snippets(session, settings=local(settings), source=source)


def test_feed_declaring_windows_1252_is_still_read_in_its_encoding(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    feed = rss(item(title="Caf\u00e9")).replace('encoding="UTF-8"', 'encoding="windows-1252"')
    path = tmp_path / "cp1252.xml"
    path.write_bytes(feed.encode("cp1252"))
    report = import_snippets(session, settings=settings, source=str(path))
    assert (report.created, report.problems) == (1, [])
    assert snippets(session)["https://blog.example.com/a"].title == "Caf\u00e9"
