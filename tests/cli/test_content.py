"""The content commands end to end: import, list, add, assemble, preview, preflight."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from newsletter import db
from tests.conftest import CHROMIUM
from tests.support.content import CONTENT_DIR
from tests.support.servers import QuietHTTPServer

runner = CliRunner()
NEWSLETTER = Path(sys.executable).parent / "newsletter"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_POSTAL_ADDRESS": "Pain Relief Weekly, 1 Main Street, Springfield",
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_TIMEZONE": "UTC",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield values
    db.dispose_engine(values["NEWSLETTER_DATABASE_URL"])


def run(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_import_assemble_two_weeks_and_preview_both(env: dict[str, str], tmp_path: Path) -> None:
    markdown = run("snippets", "import", str(CONTENT_DIR / "snippets"), "--json")
    feed = run("snippets", "import", str(CONTENT_DIR / "feed.xml"), "--json")
    assert markdown["problems"] == feed["problems"] == []
    assert feed["created"] == 6

    first = run("campaigns", "assemble", "--for", "2026-11-23", "--json")
    second = run("campaigns", "assemble", "--for", "2026-11-30", "--json")
    assert (first["week"], second["week"]) == ("2026-W48", "2026-W49")
    assert len(first["snippets"]) == len(second["snippets"]) == 5
    assert {s["id"] for s in first["snippets"]}.isdisjoint(s["id"] for s in second["snippets"])

    for issue in (first, second):
        out = tmp_path / f"preview-{issue['week']}"
        result = runner.invoke(app, ["campaigns", "preview", str(issue["id"]), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output
        for name in ("email.html", "email.txt", "email.eml"):
            assert (out / name).stat().st_size > 0
        if CHROMIUM.exists():
            assert (out / "desktop.png").exists() and (out / "mobile.png").exists()
        report = run("campaigns", "preflight", str(issue["id"]), "--json")
        assert (report["ok"], report["findings"]) == (True, [])


def test_assembling_the_same_week_again_returns_the_same_campaign(env: dict[str, str]) -> None:
    run("snippets", "import", str(CONTENT_DIR / "snippets"))
    first = run("campaigns", "assemble", "--for", "2026-11-23", "--json")
    again = run("campaigns", "assemble", "--for", "2026-11-27", "--json")
    assert (again["id"], again["created"]) == (first["id"], False)
    assert "already assembled" in run("campaigns", "assemble", "--for", "2026-11-24")


def test_snippets_add_then_list_shows_the_campaign_that_used_it(env: dict[str, str]) -> None:
    added = run(
        "snippets",
        "add",
        "--title",
        "Heat for cramps",
        "--summary",
        "Warmth helps.",
        "--url",
        "https://blog.example.com/heat",
        "--category",
        "Leg Cramps",
        "--tag",
        "heat",
        "--tag",
        "cramps",
        "--published",
        "2026-11-20",
        "--json",
    )
    assert (added["category"], added["tags"]) == ("leg-cramps", ["cramps", "heat"])
    run("snippets", "import", str(CONTENT_DIR / "snippets"))
    issue = run("campaigns", "assemble", "--for", "2026-11-23", "--json")
    listing = {s["id"]: s for s in run("snippets", "list", "--json")}
    used = [s for s in listing.values() if s["campaigns"]]
    assert sorted(s["id"] for s in used) == sorted(s["id"] for s in issue["snippets"])
    assert used[0]["campaigns"][0] == {
        "id": issue["id"],
        "week": "2026-W48",
        "status": "draft",
        "resent": False,
    }
    assert "2026-W48" in run("snippets", "list")


def test_preflight_exits_1_when_an_error_blocks_the_send(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run("snippets", "import", str(CONTENT_DIR / "snippets"))
    issue = run("campaigns", "assemble", "--for", "2026-11-23", "--json")
    monkeypatch.setenv("NEWSLETTER_POSTAL_ADDRESS", "")
    result = runner.invoke(app, ["campaigns", "preflight", str(issue["id"])])
    assert result.exit_code == 1
    assert "error: campaign: NEWSLETTER_POSTAL_ADDRESS is not set" in result.stdout
    assert "preflight: the send is blocked by 1 error\n" in result.stdout


def test_a_bad_date_is_a_usage_error(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["campaigns", "assemble", "--for", "next week"])
    assert result.exit_code == 2
    assert "is not a date" in result.output


def test_expected_errors_print_one_line_and_exit_1(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(NEWSLETTER), "campaigns", "assemble", "--for", "2026-11-23"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: not enough fresh snippets for 2026-W48: 0 fit")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_import_lists_skipped_entries_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_text("---\nurl: https://blog.example.com/x\n---\nBody\n")
    result = runner.invoke(app, ["snippets", "import", str(tmp_path / "bad.md")])
    assert result.exit_code == 1
    assert "0 created, 0 updated, 0 unchanged, 1 skipped" in result.stdout
    assert "skipped: bad.md:1: front matter: missing 'title'" in result.stdout
    assert result.stderr.startswith("error: 1 entry of ")


def test_import_keeps_the_good_entries_when_one_is_bad(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_text("---\nurl: https://blog.example.com/x\n---\nBody\n")
    (tmp_path / "good.md").write_text(
        "---\ntitle: Good\nurl: https://blog.example.com/good\npublished: 2026-11-20\n---\n"
        "A fine summary.\n"
    )
    result = runner.invoke(app, ["snippets", "import", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["created"] == 1


def test_import_from_the_blog_feed_url_makes_every_link_absolute_on_the_blog(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_FETCH_ALLOW_PRIVATE", "true")  # the blog is on 127.0.0.1

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(CONTENT_DIR))
    server = QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
        report = run("snippets", "import", url, "--json")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (report["created"], report["problems"]) == (6, [])
    listed = run("snippets", "list", "--json")
    assert all(s["url"].startswith("https://blog.painrelief.example/") for s in listed)
    assert {s["source"] for s in listed} == {f"feed:{url}"}


def test_a_cancelled_issue_is_replaced_and_every_message_names_the_status(
    env: dict[str, str],
) -> None:
    run("snippets", "import", str(CONTENT_DIR / "snippets"))
    first = run("campaigns", "assemble", "--for", "2026-11-23", "--json")
    fid = first["id"]
    assert run("campaigns", "assemble", "--for", "2026-11-24").startswith(
        f"the 2026-W48 issue is campaign {fid}, already assembled (draft): "
    )
    run("campaigns", "cancel", str(fid))

    text = run("campaigns", "assemble", "--for", "2026-11-25")
    second = run("campaigns", "show", str(fid + 1), "--json")
    assert (second["week"], second["status"]) == ("2026-W48", "draft")
    assert text.startswith(
        f"campaign {second['id']} (draft) for 2026-W48 assembled, replacing cancelled "
        f"campaign {fid}: "
    )
    again = run("campaigns", "assemble", "--for", "2026-11-26", "--json")
    assert (again["id"], again["created"], again["replaces"]) == (second["id"], False, None)

    run("campaigns", "schedule", str(second["id"]), "--at", "2030-01-08T09:00")
    assert run("campaigns", "assemble", "--for", "2026-11-27").startswith(
        f"the 2026-W48 issue is campaign {second['id']}, already scheduled: "
    )
    assert run("campaigns", "show", str(fid)).startswith(f"campaign {fid} (cancelled): ")
    listed = run("campaigns", "list").splitlines()
    assert listed[0].split() == ["id", "status", "week", "subject"]
    assert [line.split()[:3] for line in listed[1:]] == [
        [str(second["id"]), "scheduled", "2026-W48"],
        [str(fid), "cancelled", "2026-W48"],
    ]


def test_snippets_list_has_a_pinned_column(env: dict[str, str]) -> None:
    for title, pinned in (("Plain one", []), ("Featured one", ["--pinned"])):
        run(
            "snippets",
            "add",
            "--title",
            title,
            "--summary",
            "Summary.",
            "--url",
            f"https://blog.example.com/{title.split()[0].lower()}",
            *pinned,
        )
    lines = run("snippets", "list").splitlines()
    rows = [re.split("[│┃]", line) for line in lines if re.search("[│┃]", line)]
    cells = [[cell.strip() for cell in row[1:-1]] for row in rows]
    header = ["id", "published", "category", "pinned", "title", "used in"]
    assert cells[0] == header
    by_title = {row[header.index("title")]: row for row in cells[1:]}
    assert by_title["Featured one"][header.index("pinned")] == "pinned"
    assert by_title["Plain one"][header.index("pinned")] == ""
    assert "*" not in run("snippets", "list")
