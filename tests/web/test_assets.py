"""The API docs work offline (issue 13.9): /docs (Swagger UI) and /redoc (ReDoc) load
their JavaScript and CSS from our own host, shipped by the Python package
``fastapi-offline``, never from a CDN; and they render in Chromium under our
Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy.engine import Engine

from campaigns.content.preview import CHROMIUM_ARGS
from newsletter.settings import Settings
from tests.support.servers import live_server
from web.app import create_app

ASSETS = {
    "/docs": ["/docs-assets/swagger-ui.css", "/docs-assets/swagger-ui-bundle.js"],
    "/redoc": ["/docs-assets/redoc.standalone.js"],
}


@pytest.fixture
def base(sqlite_settings: Settings, sqlite_engine: Engine) -> Iterator[str]:
    with live_server(create_app(sqlite_settings)) as url:
        yield url


def references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url|data-openapi-url)="([^"]*)"', html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_page_references_only_our_own_host(base: str, path: str) -> None:
    response = httpx.get(f"{base}{path}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    urls = references(response.text)
    assert set(ASSETS[path]) <= set(urls)
    assert "/openapi.json" in urls
    assert [u for u in urls if not u.startswith("/") or u.startswith("//")] == []
    assert "http://" not in response.text and "https://" not in response.text
    assert "<script>" not in response.text  # no inline script: the CSP would block it


def test_the_docs_assets_come_from_the_app(base: str) -> None:
    kinds = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
    assets = [*ASSETS["/docs"], *ASSETS["/redoc"], "/docs-assets/favicon.png"]
    for asset in [*assets, "/static/swagger-init.js"]:
        response = httpx.get(f"{base}{asset}")
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(kinds[asset[asset.rindex(".") :]])
        assert len(response.content) > 100
    assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "newsletter-pipeline"


@pytest.mark.browser
def test_swagger_ui_and_redoc_render_without_another_host(base: str, chromium_path: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            answered: list[str] = []
            page.on("response", lambda response: answered.append(response.url))
            page.goto(f"{base}/docs")
            page.locator(".opblock").first.wait_for(timeout=30_000)
            assert page.locator(".opblock").count() >= 9  # the campaign API's operations
            page.goto(f"{base}/redoc")
            heading = page.get_by_role("heading", name="List campaigns, newest first")
            heading.first.wait_for(timeout=30_000)
        finally:
            browser.close()
    # ReDoc's search runs in a worker made from a blob of our own page.
    assert [url for url in answered if not url.startswith((base, f"blob:{base}"))] == []


@pytest.mark.parametrize("name", ["morning-stretch.jpg", "desk-setup.jpg", "knee-to-chest.jpg"])
def test_the_sample_snippets_pictures_are_served_where_the_demo_points(
    base: str, name: str
) -> None:
    response = httpx.get(f"{base}/static/content/images/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff"


def test_the_stylesheet_is_still_served_beside_the_pictures(base: str) -> None:
    assert httpx.get(f"{base}/static/site.css").status_code == 200
