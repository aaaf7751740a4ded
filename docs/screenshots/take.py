"""Retake the console screenshots of the README (issue 14) from the demo's data.

    newsletter demo --dir demo-output
    .venv/bin/python docs/screenshots/take.py demo-output

It adds an owner to the demo's database (once), serves the app on 127.0.0.1, signs in
with Debian's chromium and saves the dashboard and a subscriber's page at 1280 and 375
pixels wide next to this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlmodel import Session

from newsletter import accounts, db
from newsletter.settings import load_settings
from tests.support.servers import live_server
from web.app import create_app

HERE = Path(__file__).resolve().parent
OWNER, PASSWORD = "owner@example.com", "demo password, not for real use"


def main(demo_dir: Path) -> None:
    settings = load_settings(
        _env_file=None,
        database_url=f"sqlite:///{(demo_dir / 'newsletter.db').resolve()}",
        secret_key=(demo_dir / "secret-key").read_text().strip(),
        outbox_dir=demo_dir / "outbox",
    )
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    with Session(engine) as session:
        if accounts.find_user(session, OWNER) is None:
            accounts.create_user(session, OWNER, accounts.Role.owner, PASSWORD)
            session.commit()
    with live_server(create_app(settings)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        for width, height in ((1280, 900), (375, 812)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base}/admin/login")
            page.get_by_label("Email").fill(OWNER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/admin/")
            page.screenshot(path=HERE / f"dashboard-{width}.png", full_page=True)
            page.goto(f"{base}/admin/subscribers")
            page.locator("tbody a").first.click()
            page.wait_for_selector("text=Consent history")
            page.screenshot(path=HERE / f"subscriber-{width}.png", full_page=True)
            page.close()
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output"))
