"""Retake the campaign editor's screenshots (issue 14, part B) from the demo's data.

    newsletter demo --dir demo-output
    .venv/bin/python docs/screenshots/take_editor.py demo-output

Like take.py: an owner in the demo's database (once), the app on 127.0.0.1, Debian's
chromium. The demo's issue is sent (so locked), so the editor is shown on a duplicate of
it, made with the editor's own "Duplicate" button: ``editor-1280.png`` and
``editor-375.png`` next to this file.
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
        preflight_fetch=False,
    )
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    with Session(engine) as session:
        if accounts.find_user(session, OWNER) is None:
            accounts.create_user(session, OWNER, accounts.Role.owner, PASSWORD)
            session.commit()
    with live_server(create_app(settings)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/admin/login")
        page.get_by_label("Email").fill(OWNER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/admin/")
        page.goto(f"{base}/admin/campaigns")
        page.locator("tbody a").last.click()  # the oldest: the demo's issue
        page.get_by_role("button", name="Duplicate").click()
        page.wait_for_url("**/admin/campaigns/*?done=duplicated")
        editor = page.url.split("?")[0]
        for width, height in ((1280, 900), (375, 812)):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(editor)
            # Chromium paints a frame only inside the viewport, so the viewport is made as
            # tall as the page rather than taking a full_page screenshot.
            tall = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": width, "height": tall})
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)
            page.screenshot(path=HERE / f"editor-{width}.png")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output"))
