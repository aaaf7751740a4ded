"""A marketer's week in the console, end to end in Debian's chromium (issue 14):
the owner created with the CLI, log in, add a snippet, assemble this week's issue,
change its subject, swap a snippet, look at both previews, send a test, schedule it,
let the scheduler's dispatch send it (at a controlled time), watch progress reach
100%, open the report. A viewer who tries to change anything and a POST without the
CSRF token are refused. axe finds no serious or critical violation on the snippet form,
the editor and the progress page."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from campaigns import jobs
from campaigns.models import Campaign, CampaignStatus
from cli import app as cli_app
from newsletter import accounts
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.conftest import CHROMIUM, NO_CHROMIUM
from tests.support.console import PASSWORD, VIEWER, add_user
from tests.support.content import make_snippet
from tests.support.delivery import add_subscribers
from tests.support.servers import free_port, live_server
from tests.web.console.test_accessibility import serious_violations
from web.app import create_app

pytestmark = pytest.mark.browser
OWNER = "owner@example.com"
READERS = 5


@pytest.fixture
def served(sqlite_settings: Settings, sqlite_engine: Engine) -> Iterator[tuple[str, Settings]]:
    port = free_port()
    cfg = sqlite_settings.model_copy(
        update={
            "base_url": f"http://127.0.0.1:{port}",
            "snippets_per_issue": 3,
            "max_per_category": 5,
            "console_progress_interval_seconds": 0.2,
        }
    )
    with live_server(create_app(cfg), port) as base:
        yield base, cfg


@pytest.fixture
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


def _owner_from_the_cli(cfg: Settings) -> None:
    env = {
        "NEWSLETTER_DATABASE_URL": cfg.database_url,
        "NEWSLETTER_SECRET_KEY": cfg.secret_key or "",
    }
    result = CliRunner().invoke(
        cli_app,
        ["users", "create", OWNER, "--role", "owner", "--password-stdin"],
        input=f"{PASSWORD}\n",
        env=env,
    )
    assert result.exit_code == 0, (result.output, result.exception)


def _log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/admin/")


def _outbox_subjects(cfg: Settings) -> list[str]:
    found = []
    for eml in sorted(Path(cfg.outbox_dir).glob("*.eml")):
        match = re.search(rb"^Subject: (.*)$", eml.read_bytes(), re.MULTILINE)
        found.append(match.group(1).decode() if match else "")
    return found


def test_a_marketers_week_in_the_console(
    chromium: Browser, served: tuple[str, Settings], sqlite_engine: Engine
) -> None:
    base, cfg = served
    _owner_from_the_cli(cfg)
    with Session(sqlite_engine, expire_on_commit=False) as session:
        for n in range(3):
            make_snippet(session, cfg, title=f"Library article {n}")
        spare = make_snippet(
            session, cfg, title="The spare article", published_at=datetime(2026, 10, 1, tzinfo=UTC)
        )  # older than the rest: not picked, so it can be swapped in
        session.commit()
    add_subscribers(sqlite_engine, READERS)
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, base, OWNER)

    # Add a snippet (the freshest, so this week's issue leads with it).
    page.goto(f"{base}/admin/snippets/new")
    page.get_by_label("Title").fill("Five stretches for a stiff back")
    page.get_by_label("Summary (Markdown)").fill("Gentle, **slow** and done at your desk.")
    page.get_by_label("Article URL").fill("https://blog.example.com/five-stretches")
    page.get_by_label("Publish date").fill("2026-11-29")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".markdown strong")).to_have_text("slow")
    page.get_by_role("button", name="Save snippet").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert serious_violations(page) == []

    # Assemble this week's issue and change its subject.
    page.goto(f"{base}/admin/campaigns")
    page.get_by_role("button", name="Assemble this week's issue").click()
    expect(page.get_by_role("status")).to_have_text("This week's issue is assembled.")
    campaign_id = int(page.url.split("/")[-1].split("?")[0])
    titles = page.locator(".issue-snippets .snippet-title > a")
    expect(titles).to_have_count(3)
    assert titles.first.inner_text() == "Five stretches for a stiff back"
    page.get_by_label("Subject", exact=True).fill("Your back will thank you")
    expect(page.locator("#subject-hint")).to_have_text("24 characters; inboxes show about 60")
    page.get_by_role("button", name="Save subject and preheader").click()
    expect(page.get_by_label("Subject", exact=True)).to_have_value("Your back will thank you")

    # Swap a snippet: remove the last, add the spare, move it up one place.
    before = [t.inner_text() for t in titles.all()]
    page.get_by_role("button", name=f"Remove: {before[2]}").click()
    page.get_by_label("Add a snippet").select_option(value=str(spare.id))
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("button", name="Move up: The spare article").click()
    expect(titles).to_have_text([before[0], "The spare article", before[1]])

    assert serious_violations(page) == []

    # Both previews: the real rendered email for a named and an unnamed reader.
    desktop = page.frame_locator("iframe[title^='Desktop preview']")
    mobile = page.frame_locator("iframe[title^='Mobile preview']")
    expect(desktop.get_by_text("Five stretches for a stiff back").first).to_be_visible()
    expect(desktop.get_by_text("Alex", exact=False).first).to_be_visible()
    expect(mobile.get_by_text("The spare article").first).to_be_visible()
    assert "Alex" not in mobile.locator("body").inner_text()

    # A test to a typed address.
    page.get_by_label("Send a test to").fill("me@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status")).to_have_text("Test sent.")
    assert any("Your back will thank you" in s for s in _outbox_subjects(cfg))

    # Schedule it for an hour from now (the newsletter's time zone is UTC here).
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    page.get_by_label("Send at (UTC)").fill(at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("status")).to_have_text("Scheduled.")

    # The scheduler's dispatch at a controlled time after the slot; progress follows live.
    page.goto(f"{base}/admin/campaigns/{campaign_id}/progress")
    expect(page.locator("[data-field=status]")).to_have_text("scheduled")
    dispatch = threading.Thread(target=jobs.dispatch, args=(cfg, at + timedelta(minutes=1)))
    dispatch.start()
    expect(page.locator("#progress")).to_have_attribute("data-finished", "true", timeout=15_000)
    dispatch.join(timeout=15)
    expect(page.locator("[data-field=percent]")).to_have_text("100.0")
    expect(page.locator("[data-field=sent]")).to_have_text(str(READERS))
    expect(page.locator("[data-field=status]")).to_have_text("sent")
    expect(page.locator("[data-field=started_by]")).to_have_text("scheduler")
    expect(page.locator("[data-field=scheduled_by]")).to_have_text(OWNER)
    assert serious_violations(page) == []
    page.get_by_role("link", name="Open the report").click()
    expect(page.locator("h1")).to_have_text("Your back will thank you")

    # A sent campaign cannot be edited; the reason is on the page.
    page.goto(f"{base}/admin/campaigns/{campaign_id}")
    expect(page.locator("#locked")).to_contain_text("was sent")

    # A POST without the CSRF token is refused, even for the owner.
    refused = page.request.post(
        f"{base}/admin/campaigns/{campaign_id}/duplicate", form={}, max_redirects=0
    )
    assert refused.status == 403

    # A viewer sees the campaign, but every change is refused.
    add_user(sqlite_engine, VIEWER, Role.viewer)
    viewer = chromium.new_context().new_page()
    _log_in(viewer, base, VIEWER)
    viewer.goto(f"{base}/admin/campaigns/{campaign_id}")
    expect(viewer.get_by_role("button", name="Duplicate")).to_have_count(0)
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = viewer.request.post(
        f"{base}/admin/campaigns/{campaign_id}/duplicate",
        form={"csrf_token": token or ""},
        max_redirects=0,
    )
    assert answer.status == 403
    with Session(sqlite_engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == CampaignStatus.SENT
        assert accounts.find_user(session, OWNER) is not None
