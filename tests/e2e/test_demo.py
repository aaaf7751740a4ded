"""`newsletter demo`: this week's issue end to end on embedded SQLite and the file outbox."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session, select

from campaigns.content.preview import CONTENT_IMAGES_DIR as CONTENT_IMAGES
from newsletter import db
from subscribers.lifecycle import unsubscribe
from subscribers.models import ConsentSource, Subscriber
from tests.conftest import CHROMIUM, requires_chromium

NEWSLETTER = str(Path(sys.executable).with_name("newsletter"))


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.run(
        [NEWSLETTER, *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    result = run_cli("demo", "--dir", str(folder), "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    (folder / "first-run.json").write_text(result.stdout)
    return folder


def _messages(folder: Path, pattern: str = "*.eml") -> list[EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted((folder / "outbox").glob(pattern))
    ]


def _newsletters(folder: Path) -> list[EmailMessage]:
    """The outbox names bulk messages after their campaign."""
    return _messages(folder, "campaign*.eml")


def _unsubscribe_link(message: EmailMessage) -> str:
    return str(message["List-Unsubscribe"]).strip().removeprefix("<").removesuffix(">")


def test_demo_summary_names_campaign_recipients_outbox_and_preview(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "first-run.json").read_text())
    assert summary["status"] == "sent"
    assert summary["recipients"] == 3
    assert summary["sent_now"] == 3
    assert summary["already_sent"] is False
    assert Path(summary["outbox_dir"]) == demo_dir / "outbox"
    assert (Path(summary["preview_dir"]) / "email.html").is_file()


def test_demo_leaves_three_newsletters_and_the_confirmation_emails(demo_dir: Path) -> None:
    newsletters = _newsletters(demo_dir)
    assert sorted(str(m["To"]) for m in newsletters) == [
        "Ada <ada.reader@example.org>",
        "Ben <ben.walker@example.org>",
        "Chidi <chidi.stretch@example.org>",
    ]
    confirmations = [
        m for m in _messages(demo_dir) if "/confirm/" in m.get_body(("plain",)).get_content()
    ]
    assert len(confirmations) == 3


def test_newsletter_carries_one_click_unsubscribe_and_list_id(demo_dir: Path) -> None:
    for message in _newsletters(demo_dir):
        assert _unsubscribe_link(message).startswith("http://127.0.0.1:8000/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"].endswith(">")


def test_newsletter_is_multipart_alternative_with_text_and_html(demo_dir: Path) -> None:
    for message in _newsletters(demo_dir):
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_both_parts_show_the_unsubscribe_link_and_postal_address(demo_dir: Path) -> None:
    for message in _newsletters(demo_dir):
        link = _unsubscribe_link(message)
        for kind in ("plain", "html"):
            body = message.get_body((kind,)).get_content()
            assert link in body, kind
            assert "100 Example Street" in body, kind


def test_each_reader_gets_their_own_unsubscribe_link(demo_dir: Path) -> None:
    links = {_unsubscribe_link(m) for m in _newsletters(demo_dir)}
    assert len(links) == 3


def test_messages_are_byte_for_byte_smtp_data(demo_dir: Path) -> None:
    for path in (demo_dir / "outbox").glob("*.eml"):
        data = path.read_bytes()
        assert b"\n" not in data.replace(b"\r\n", b"")
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_second_run_sends_nothing_twice(demo_dir: Path) -> None:
    before = len(list((demo_dir / "outbox").glob("*.eml")))
    result = run_cli("demo", "--dir", str(demo_dir), "--json", cwd=demo_dir)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["already_sent"] is True
    assert summary["sent_now"] == 0
    assert len(list((demo_dir / "outbox").glob("*.eml"))) == before


def test_a_run_after_a_sample_reader_unsubscribed_leaves_them_alone(tmp_path: Path) -> None:
    assert run_cli("demo", "--dir", str(tmp_path), cwd=tmp_path).returncode == 0
    engine = db.get_engine(f"sqlite:///{tmp_path / 'newsletter.db'}")
    with Session(engine) as session:
        ben = session.exec(
            select(Subscriber).where(Subscriber.email == "ben.walker@example.org")
        ).one()
        assert ben.id is not None
        unsubscribe(session, subscriber_id=ben.id, source=ConsentSource.FORM)
        session.commit()
    db.dispose_engine(f"sqlite:///{tmp_path / 'newsletter.db'}")
    result = run_cli("demo", "--dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ben.walker@example.org: unsubscribed earlier; left alone" in result.stdout


def test_unknown_provider_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", cwd=tmp_path, env={"NEWSLETTER_PROVIDER": "pigeon"})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "NEWSLETTER_PROVIDER" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = run_cli("db", "upgrade", cwd=tmp_path, env={"NEWSLETTER_DATABASE_URL": url})
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the database")
    assert result.stderr.count("\n") == 1


def test_wrong_usage_exits_2(tmp_path: Path) -> None:
    assert run_cli("campaigns", "send", cwd=tmp_path).returncode == 2


def test_db_upgrade_creates_the_embedded_database(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "newsletter.db").is_file()


# ---------------------------------------------------------------- issue 13


def test_each_newsletter_greets_its_reader_by_name(demo_dir: Path) -> None:
    for message in _newsletters(demo_dir):
        name = str(message["To"]).split(" <", 1)[0]
        for kind in ("plain", "html"):
            body = message.get_body((kind,)).get_content()
            assert f"Hello {name}," in body, kind
            assert "Hello, " not in body, kind


def test_no_footer_of_the_demo_repeats_the_newsletter_name(demo_dir: Path) -> None:
    for message in _messages(demo_dir):
        for kind in ("plain", "html"):
            body = " ".join(message.get_body((kind,)).get_content().split())
            assert "Pain Relief Weekly · Pain Relief Weekly" not in body, kind
            assert "Pain Relief Weekly (demo), 100 Example Street" in body, kind


def test_the_preview_shows_a_reader_with_and_one_without_a_name(demo_dir: Path) -> None:
    preview = demo_dir / "preview"
    assert "\nHello Alex,\n" in (preview / "email.txt").read_text()
    assert "\nHello,\n" in (preview / "email-unnamed.txt").read_text()
    assert ">Hello,</p>" in (preview / "email-unnamed.html").read_text()
    notes = json.loads((demo_dir / "first-run.json").read_text())["notes"]
    if not CHROMIUM.exists():  # make test without Chromium: the one note it may give
        notes = [n for n in notes if n != f"screenshots skipped: no Chromium at {CHROMIUM}"]
    assert notes == []  # no warning, and (with Chromium) the screenshots were taken


def test_the_sample_images_are_ours_under_the_base_url(demo_dir: Path) -> None:
    html = (demo_dir / "preview" / "email.html").read_text()
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(sources) == 3
    for src in sources:
        assert src.startswith("http://127.0.0.1:8000/static/content/images/")
        assert (CONTENT_IMAGES / src.rsplit("/", 1)[1]).is_file()


@requires_chromium
@pytest.mark.parametrize("name", ["desktop.png", "mobile-unnamed.png"])
def test_the_preview_screenshots_show_the_pictures(demo_dir: Path, name: str) -> None:
    from PIL import Image

    with Image.open(demo_dir / "preview" / name) as shot:
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20) or []
    # The exercise mat of knee-to-chest.jpg, the monitor of desk-setup.jpg and the bed
    # cover of morning-stretch.jpg: alt text in their place would show none of them.
    for wanted in ((90, 160, 150), (120, 190, 230), (120, 150, 200)):
        near = sum(
            n for n, c in colours if max(abs(a - b) for a, b in zip(c, wanted, strict=True)) <= 8
        )
        assert near > 500, wanted


def test_the_demo_turns_preflight_fetching_off(tmp_path: Path) -> None:
    from campaigns.demo import demo_settings

    assert demo_settings(tmp_path / "demo").preflight_fetch is False
