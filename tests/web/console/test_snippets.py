"""The console's snippet library (web/console/snippets.py): list and filters, the form and
its Markdown preview, retire, and the Markdown upload with its bad-entries report."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.content.snippet_library import is_retired
from campaigns.models import Snippet
from newsletter import db
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.console import EDITOR, add_users_cheaply, csrf_of
from tests.support.content import make_snippet
from tests.support.servers import QuietHTTPServer

GOOD_MD = (
    b"---\ntitle: Sitting well\nurl: https://blog.example.com/sitting\ndate: 2026-11-20\n"
    b"---\nFeet flat.\n"
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    root = tmp_path_factory.mktemp("console-snippets")
    # fetch_allow_private: the feed test's server is on 127.0.0.1 (refused by default).
    settings = make_settings(f"sqlite:///{root / 'console.db'}", root, fetch_allow_private=True)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    add_users_cheaply(engine, {EDITOR: Role.editor})
    yield engine, settings
    db.dispose_engine(settings.database_url)


FORM = {
    "title": "Ten-minute walk",
    "summary": "Walk **daily**: <script>x</script>",
    "url": "https://blog.example.com/walk",
    "category": "back-pain",
    "published": "2026-11-20",
}


def test_preview_renders_the_markdown_without_saving(editor: httpx.Client) -> None:
    token = csrf_of(editor, "/admin/snippets/new")
    page = editor.post(
        "/admin/snippets/new", data={**FORM, "csrf_token": token, "action": "preview"}
    )
    assert page.status_code == 200
    assert "Walk <strong>daily</strong>: &lt;script&gt;x&lt;/script&gt;" in page.text
    assert "Ten-minute walk" not in editor.get("/admin/snippets").text


def test_save_creates_the_snippet_and_opens_its_page(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    token = csrf_of(editor, "/admin/snippets/new")
    saved = editor.post("/admin/snippets/new", data={**FORM, "csrf_token": token})
    assert saved.status_code == 303
    snippet_id = int(saved.headers["location"].split("/")[-1].split("?")[0])
    with Session(shared[0]) as session:
        snippet = session.get(Snippet, snippet_id)
        assert snippet is not None
        # Markdown reduced to text; typed markup stays text (escaped wherever it is shown).
        assert (snippet.summary, snippet.category) == (
            "Walk daily: <script>x</script>",
            "back-pain",
        )
    assert "Saved." in editor.get(saved.headers["location"]).text


def test_a_summary_of_the_longest_length_in_cyrillic_is_taken_not_refused_as_too_large(
    editor: httpx.Client,
) -> None:
    """About 37,000 bytes of UTF-8, posted as about 110,000 (each byte "%XX")."""
    token = csrf_of(editor, "/admin/snippets/new")
    summary = "Боль в спине " * 1538  # 19,994 characters, the form's limit is 20,000
    page = editor.post(
        "/admin/snippets/new",
        data={
            **FORM,
            "url": "https://blog.example.com/cyr",
            "summary": summary,
            "csrf_token": token,
            "action": "preview",
        },
    )
    assert page.status_code == 200
    assert "Боль в спине" in page.text


def test_a_bad_url_shows_the_form_again_with_one_line(editor: httpx.Client) -> None:
    token = csrf_of(editor, "/admin/snippets/new")
    page = editor.post("/admin/snippets/new", data={**FORM, "url": "ftp://x", "csrf_token": token})
    assert page.status_code == 400
    line = "Article URL: &#39;ftp://x&#39; is not an absolute http(s) URL."
    assert f'role="alert" id="snippet-error">{line}</p>' in page.text
    assert 'value="ftp://x" aria-invalid="true" aria-describedby="snippet-error"' in page.text
    assert "field &#39;" not in page.text


def test_an_empty_title_is_said_with_its_label_on_its_field(editor: httpx.Client) -> None:
    token = csrf_of(editor, "/admin/snippets/new")
    page = editor.post("/admin/snippets/new", data={**FORM, "title": " ", "csrf_token": token})
    assert page.status_code == 400
    assert 'role="alert" id="snippet-error">Title is empty.</p>' in page.text
    assert 'name="title" required maxlength="300" value=" " aria-invalid="true"' in page.text


def test_the_list_filters_and_retire_hides_a_snippet(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        snippet = make_snippet(session, settings, title="Leg cramps at night", category="cramps")
        session.commit()
        sid = snippet.id or 0
    found = editor.get("/admin/snippets", params={"q": "cramps at", "category": "cramps"}).text
    assert "Leg cramps at night" in found and "1 snippet<" in found
    token = csrf_of(editor, f"/admin/snippets/{sid}")
    assert (
        editor.post(f"/admin/snippets/{sid}/retire", data={"csrf_token": token}).status_code == 303
    )
    with Session(engine) as session:
        assert is_retired(session, snippet_id=sid)
    assert "Leg cramps at night" not in editor.get("/admin/snippets").text
    assert "Leg cramps at night" in editor.get("/admin/snippets", params={"retired": "yes"}).text


def test_a_snippet_no_issue_used_is_listed_available_not_in_use(
    editor: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    with Session(engine) as session:
        make_snippet(session, settings, title="Calf stretch at the wall", category="stretch")
        session.commit()
    listed = editor.get("/admin/snippets", params={"q": "Calf stretch at the wall"}).text
    row = listed[listed.index(">Calf stretch at the wall</a>") :].split("</tr>")[0]
    assert "<td>available</td>" in row and "in use" not in row


def _finished(client: httpx.Client, progress_url: str) -> str:
    """The progress page once the import is done (it stops refreshing itself)."""
    deadline = time.monotonic() + 10
    while 'http-equiv="refresh"' in (page := client.get(progress_url).text):
        assert "entries read:" in page and time.monotonic() < deadline
        time.sleep(0.02)
    return page


def test_edit_shows_the_markdown_typed_not_the_plain_text(editor: httpx.Client) -> None:
    typed = "Walk **daily**, then [rest](https://example.com/rest)."
    token = csrf_of(editor, "/admin/snippets/new")
    saved = editor.post(
        "/admin/snippets/new",
        data={
            **FORM,
            "url": "https://blog.example.com/walk-md",
            "summary": typed,
            "csrf_token": token,
        },
    )
    assert saved.status_code == 303
    page = editor.get(saved.headers["location"]).text
    assert ">Walk **daily**, then [rest](https://example.com/rest).</textarea>" in page


def test_upload_of_several_files_shows_progress_then_the_report(editor: httpx.Client) -> None:
    token = csrf_of(editor, "/admin/snippets/import")
    started = editor.post(
        "/admin/snippets/import/files",
        data={"csrf_token": token},
        files=[
            ("files", ("sitting.md", GOOD_MD, "text/markdown")),
            ("files", ("broken.md", b"no front matter", "text/markdown")),
            ("files", ("notes.txt", b"x", "text/plain")),
            (
                "files",
                ("bad-url.md", GOOD_MD.replace(b"https://blog", b"ftp://blog"), "text/markdown"),
            ),
        ],
    )
    assert started.status_code == 303
    assert started.headers["location"].startswith("/admin/snippets/import/")
    page = _finished(editor, started.headers["location"])
    assert "Done: 4 entries read, 1 imported, 3 rejected" in page
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>", page)
    assert rows == [
        ("notes.txt", "", ""),
        ("broken.md", "line 1", ""),
        ("bad-url.md", "line 3", "url"),
    ]
    assert "front matter missing" in page


FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<link>https://blog.example.com/</link>
<item><title>Stand up</title><link>https://blog.example.com/stand</link>
<description>Stand every hour.</description><pubDate>Fri, 20 Nov 2026 08:00:00 GMT</pubDate></item>
<item><title>No link</title><description>Lost.</description></item>
</channel></rss>"""


def test_a_feed_url_import_ends_with_its_report_naming_the_bad_entry(
    editor: httpx.Client,
) -> None:
    class Feed(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    try:
        token = csrf_of(editor, "/admin/snippets/import")
        started = editor.post("/admin/snippets/import/feed", data={"csrf_token": token, "url": url})
        assert started.status_code == 303
        page = _finished(editor, started.headers["location"])
    finally:
        server.shutdown()
        server.server_close()
    assert "Done: 2 entries read, 1 imported, 1 rejected" in page
    assert f"<tr><td>{url}</td><td>entry 2</td>" in page


def test_a_feed_url_that_is_not_one_is_refused_on_its_form_with_what_was_typed(
    editor: httpx.Client,
) -> None:
    """A marketer's review: the refusal was a page of its own, the URL typed lost."""
    token = csrf_of(editor, "/admin/snippets/import")
    page = editor.post("/admin/snippets/import/feed", data={"csrf_token": token, "url": "blog"})
    assert page.status_code == 400
    assert '<p class="alert alert-error" role="alert" id="feed-error">Give the feed' in page.text
    assert 'value="blog" aria-invalid="true" aria-describedby="feed-error"' in page.text
    assert 'id="files-error"' not in page.text
