"""The snippet library as marketers edit it (campaigns/content/snippet_library.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.content import snippet_library as library
from campaigns.content.assembly import select_snippets
from newsletter import db
from newsletter.audit import AuditEntry
from newsletter.errors import InvalidInput, StateError
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.content import make_campaign, make_snippet

GOOD_MD = b"""---
title: Sitting well
url: https://blog.example.com/sitting-well
category: back-pain
date: 2026-11-20
---
Feet flat, hips back, screen at eye level.
"""
NO_URL_MD = b"""---
title: Missing its link
---
Body.
"""


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    root = tmp_path_factory.mktemp("library")
    settings = make_settings(f"sqlite:///{root / 'library.db'}", root)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    yield engine, settings
    db.dispose_engine(settings.database_url)


def test_a_markdown_summary_is_kept_as_the_text_a_card_shows(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        entry = library.create_snippet(
            session,
            settings=settings,
            data={
                "title": "Stretch",
                "summary": "**Five** stretches, [gently](https://example.com).",
                "url": "https://blog.example.com/stretch-md",
                "published_at": "2026-11-20",
            },
            actor="jane@example.com",
            source="console",
        )
        assert entry.snippet.summary == "Five stretches, gently."
        assert entry.snippet.published_at.isoformat() == "2026-11-20T00:00:00+00:00"
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "snippet.create")).one()
        assert (audit.actor, audit.target_id) == ("jane@example.com", str(entry.snippet.id))


def test_the_markdown_preview_is_sanitised_html() -> None:
    html = library.markdown_preview(
        "**Bold** <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com)"
    )
    assert "<strong>Bold</strong>" in html
    assert "<script>" not in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.com" rel="noopener noreferrer">ok</a>' in html


def test_an_edit_with_a_url_already_in_the_library_is_refused_naming_the_field(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        first, second = make_snippet(session, settings), make_snippet(session, settings)
        with pytest.raises(InvalidInput) as err:
            library.edit_snippet(
                session,
                settings=settings,
                snippet_id=second.id or 0,
                changes={"url": first.url},
                actor="a",
            )
        assert err.value.field == "url"


def test_a_retired_snippet_is_never_picked_and_unretire_brings_it_back(
    session: Session, settings: Settings
) -> None:
    settings = settings.model_copy(update={"snippets_per_issue": 1})
    snippet = make_snippet(session, settings, pinned=True)
    make_snippet(session, settings)
    library.retire(session, snippet_id=snippet.id or 0, actor="a")
    with pytest.raises(StateError, match="retired already"):
        library.retire(session, snippet_id=snippet.id or 0, actor="a")
    [picked] = select_snippets(session, settings=settings, week="2026-W49")
    assert picked.snippet.id != snippet.id
    library.unretire(session, snippet_id=snippet.id or 0, actor="a")
    [picked] = select_snippets(session, settings=settings, week="2026-W49")
    assert picked.snippet.id == snippet.id


def test_the_list_filters_by_text_category_use_pin_and_retirement(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    settings = sqlite_settings
    with Session(sqlite_engine) as session:
        cramps = make_snippet(session, settings, title="Night cramps", category="leg-cramps")
        pinned = make_snippet(session, settings, pinned=True)
        used = make_snippet(session, settings)
        gone = make_snippet(session, settings)
        make_campaign(session, [used])
        library.retire(session, snippet_id=gone.id or 0, actor="a")

        def ids(**wanted: object) -> list[int | None]:
            found = library.search_snippets(session, wanted=library.SnippetFilter(**wanted))  # type: ignore[arg-type]
            return [e.snippet.id for e in found]

        assert ids(query="CRAMPS") == [cramps.id]
        assert ids(category="leg-cramps") == [cramps.id]
        assert ids(pinned=True) == [pinned.id]
        assert ids(used=True) == [used.id]
        assert ids(retired=True) == [gone.id]
        assert gone.id not in ids()


def test_uploaded_markdown_files_are_imported_and_bad_ones_reported_by_name(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        report = library.import_markdown_files(
            session,
            settings=settings,
            files=[("good.md", GOOD_MD), ("../bad.md", NO_URL_MD), ("notes.txt", b"x")],
            actor="jane@example.com",
        )
    assert report.created == 1
    assert report.problems == [
        "notes.txt: not a Markdown file (.md)",
        "bad.md:1: front matter: missing 'url'",
    ]


def test_a_feed_import_takes_only_an_http_url(shared: tuple[Engine, Settings]) -> None:
    engine, settings = shared
    with Session(engine) as session, pytest.raises(InvalidInput, match="http"):
        library.import_feed(session, settings=settings, url="/etc/passwd", actor="a")


def test_a_feed_url_with_a_line_break_inside_is_refused_before_the_import() -> None:
    with pytest.raises(InvalidInput, match="line breaks inside the URL"):
        library.check_feed_url("https://feeds.example.com/a\r\nHost: evil")


def test_the_markdown_typed_for_a_summary_is_kept_for_the_edit_form(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    typed = "Walk **daily**, [gently](https://example.com)."
    with Session(engine) as session:
        entry = library.create_snippet(
            session,
            settings=settings,
            data={
                "title": "Walk",
                "summary": "plain first",
                "url": "https://blog.example.com/walk-source",
                "published_at": "2026-11-20",
            },
            actor="jane@example.com",
        )
        sid = entry.snippet.id or 0
        library.edit_snippet(
            session, settings=settings, snippet_id=sid, changes={"summary": typed}, actor="j"
        )
        session.commit()
    with Session(engine) as session:
        assert library.summary_source(session, snippet_id=sid) == typed
        assert library.entry(session, snippet_id=sid).snippet.summary == "Walk daily, gently."


def test_a_markdown_file_keeps_its_body_and_progress_counts_each_file(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    seen: list[tuple[int, int, int]] = []
    body = GOOD_MD.replace(b"sitting-well", b"sitting-progress").replace(
        b"Feet flat", b"**Feet** flat"
    )
    with Session(engine) as session:
        report = library.import_markdown_files(
            session,
            settings=settings,
            files=[("notes.txt", b"x"), ("a.md", body), ("b.md", NO_URL_MD)],
            actor="jane@example.com",
            on_progress=lambda r: seen.append((r.read, r.imported, len(r.problems))),
        )
        assert library.summary_source(session, snippet_id=report.snippet_ids[0]).startswith(
            "**Feet** flat"
        )
    assert seen == [(1, 0, 1), (2, 1, 1), (3, 1, 2)]
    assert [(r.source, r.at, r.reason) for r in report.rejected] == [
        ("notes.txt", "", "not a Markdown file (.md)"),
        ("b.md", "line 1", "front matter: missing 'url'"),
    ]


def test_a_summary_typed_with_crlf_line_ends_is_kept_with_lf(
    shared: tuple[Engine, Settings],
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        entry = library.create_snippet(
            session,
            settings=settings,
            data={
                "title": "Typed in a browser",
                "summary": "First.\r\n\r\n- one\r\n- two",
                "url": "https://blog.example.com/typed-crlf",
            },
            actor="jane@example.com",
            source="console",
        )
        snippet_id = entry.snippet.id or 0
        assert library.summary_source(session, snippet_id=snippet_id) == "First.\n\n- one\n- two"
