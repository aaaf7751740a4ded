"""Every console page in Debian's chromium, as a marketer signs in and goes round: axe-core
(axe-playwright-python) finds no serious or critical violation, and no page asks another
host for anything (no CDN, no font service, no analytics)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, sync_playwright
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Campaign, CampaignStatus
from newsletter.accounts import Role
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookEndpoint
from tests.conftest import CHROMIUM
from tests.support.console import OWNER, PASSWORD, add_user, console_client
from tests.support.delivery import make_campaign
from tests.support.subscribers import AppSlot, make_subscriber
from tests.support.tracking import add_campaign, add_delivery, add_subscriber

SERIOUS = {"serious", "critical"}


@pytest.fixture
def page(
    sqlite_settings: Settings,
    sqlite_engine: Engine,
    console_server: tuple[AppSlot, str],
    chromium_path: str,
) -> Iterator[tuple[Page, str, list[str]]]:
    """A signed-out page of chromium on the console, and every URL it requests."""
    add_user(sqlite_engine, OWNER, Role.owner)
    with (
        console_client(console_server, sqlite_settings) as client,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        requested: list[str] = []
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.on("request", lambda request: requested.append(request.url))
        yield tab, str(client.base_url).rstrip("/"), requested
        browser.close()


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]


def test_every_console_page_passes_axe_and_asks_only_our_host(
    page: tuple[Page, str, list[str]], sqlite_engine: Engine
) -> None:
    tab, base, requested = page
    with Session(sqlite_engine) as session:
        jane = make_subscriber(session, "jane@example.com", name="Jane")
        campaign = add_campaign(session, subject="Five stretches for sciatica")
        add_delivery(session, campaign, add_subscriber(session, "ann@example.com"))
        draft = make_campaign(session, status=CampaignStatus.DRAFT)  # issue 16's forms
        jane_id, campaign_id, draft_id = jane.id, campaign.id, draft.id

    tab.goto(f"{base}/admin/")  # redirected to sign in
    assert tab.url == f"{base}/admin/login"
    problems = {"/admin/login": serious_violations(tab)}
    tab.get_by_label("Email").fill(OWNER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"{base}/admin/")

    tab.goto(f"{base}/admin/subscribers")
    tab.get_by_label("CSV file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": b"email\nbad\n"}]
    )
    tab.get_by_role("button", name="Import").click()
    tab.wait_for_selector("text=Done:")
    problems[urlsplit(tab.url).path.rsplit("/", 1)[0] + "/<job>"] = serious_violations(tab)

    tab.goto(f"{base}/admin/snippets/import")  # issue 14: the upload's progress, then report
    tab.get_by_label("Markdown files").set_input_files(
        files=[{"name": "bad.md", "mimeType": "text/markdown", "buffer": b"no front matter"}]
    )
    tab.get_by_role("button", name="Upload and import").click()
    tab.wait_for_selector("text=Done:")
    problems[urlsplit(tab.url).path.rsplit("/", 1)[0] + "/<job>"] = serious_violations(tab)

    tab.goto(f"{base}/admin/webhooks")  # issue 16: the secret's page, then the list with it
    tab.get_by_label("URL").fill("https://hooks.example.com/a11y")
    tab.get_by_label("campaign.sent").check()
    tab.get_by_role("button", name="Add endpoint").click()
    tab.wait_for_selector("text=Signing secret")
    problems["/admin/webhooks (added)"] = serious_violations(tab)

    tab.goto(f"{base}/admin/campaigns/{draft_id}/sending")  # refused forms, drawn again
    tab.get_by_label("Subject B").fill(tab.get_by_label("Subject A").input_value())
    tab.get_by_role("button", name="Set up the subject test").click()
    tab.wait_for_selector("#test-error")
    problems["/admin/campaigns/<draft>/sending (refused)"] = serious_violations(tab)
    tab.goto(f"{base}/admin/subscribers")
    tab.get_by_role("textbox", name="Email").fill("nia@example")
    tab.get_by_label("First name (optional)").fill("Nia")
    tab.get_by_role("button", name="Send the confirmation").click()
    tab.wait_for_selector("#add-error")
    problems["/admin/subscribers (refused)"] = serious_violations(tab)

    for path in (
        "/admin/",
        f"/admin/campaigns/{draft_id}/sending",
        f"/admin/campaigns/{campaign_id}/sending",
        "/admin/webhooks",
        "/admin/webhooks/1/log",
        "/admin/subscribers",
        f"/admin/subscribers/{jane_id}",
        f"/admin/subscribers/{jane_id}/erase",
        "/admin/reports",
        f"/admin/reports/{campaign_id}",
        "/admin/audit",
        "/admin/subscribers/999999",  # the error page
    ):
        tab.goto(f"{base}{path}")
        problems[path] = serious_violations(tab)

    assert {path: found for path, found in problems.items() if found} == {}
    elsewhere = [url for url in requested if not url.startswith(base + "/")]
    assert elsewhere == []


def test_a_form_clicked_twice_is_sent_once(
    page: tuple[Page, str, list[str]], sqlite_engine: Engine
) -> None:
    """console.js: "Duplicate" double-clicked makes one copy (the form's second submit
    is ignored while the first is on its way)."""
    tab, base, _ = page
    with Session(sqlite_engine) as session:
        draft_id = make_campaign(session, status=CampaignStatus.DRAFT).id
    tab.goto(f"{base}/admin/login")
    tab.get_by_label("Email").fill(OWNER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"{base}/admin/")
    tab.goto(f"{base}/admin/campaigns/{draft_id}")
    button = tab.get_by_role("button", name="Duplicate")
    # A second click 20 ms after the first, as a double click sends it.
    button.evaluate(
        "b => { b.form.requestSubmit(b); setTimeout(() => b.form.requestSubmit(b), 20); }"
    )
    tab.wait_for_timeout(1500)  # both requests, if two went, have been answered by now

    with Session(sqlite_engine) as session:
        count = session.execute(sa.select(sa.func.count()).select_from(Campaign)).scalar_one()
    assert count == 2  # the draft and one copy


def test_lists_on_a_phone_scroll_in_their_table_not_the_whole_page(
    page: tuple[Page, str, list[str]], sqlite_engine: Engine
) -> None:
    """A marketer's review at 375 px: the webhooks page was 511 px wide (a cell's visually
    hidden text, absolutely placed, escaped the table's scroll box), Status and Actions
    off screen."""
    tab, base, _ = page
    with Session(sqlite_engine) as session:
        session.add(
            WebhookEndpoint(
                url="https://hooks.example.com/a-rather-long/path", events=[], secret="x"
            )
        )
        session.commit()
    tab.goto(f"{base}/admin/login")
    tab.get_by_label("Email").fill(OWNER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"{base}/admin/")
    tab.set_viewport_size({"width": 375, "height": 800})
    wide = {}
    for path in ("/admin/webhooks", "/admin/subscribers", "/admin/audit", "/admin/campaigns"):
        tab.goto(f"{base}{path}")
        width = tab.evaluate("document.documentElement.scrollWidth")
        if width > 375:
            wide[path] = width
    assert wide == {}
