"""Files the pages need, all served by the app itself: no CDN, nothing from another host.

- ``/static/content/images/...``: the sample snippets' pictures, so the demo's emails show
  them when the app runs at the default base URL.
- ``/static/...``: our own styles and scripts (web/static): the pages' stylesheet, the
  sign-up form's anti-robot solver, the script that starts Swagger UI.
- ``/theme.css``: the brand colours from the settings, as CSS variables (a stylesheet of
  its own, since the Content-Security-Policy allows no inline style).
- ``/docs`` and ``/redoc``: Swagger UI and ReDoc on ``/openapi.json``, their JavaScript
  and CSS from the Python package ``fastapi-offline`` (``/docs-assets/...``), so the API
  docs work on a machine without internet and leak no visit to a CDN.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape

from campaigns.content.preview import CONTENT_IMAGES_DIR, CONTENT_IMAGES_PATH
from newsletter.templating import brand_context
from web.deps import SettingsDep

STATIC_DIR = Path(__file__).resolve().parent / "static"
DOCS_ASSETS = "/docs-assets"
DOCS_PATHS = ("/docs", "/redoc")

router = APIRouter(include_in_schema=False)


def _docs_page(title: str, head: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f'<link rel="icon" href="{DOCS_ASSETS}/favicon.png">\n{head}</head>\n'
        f"<body>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(html)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return _docs_page(
        f"{request.app.title} - Swagger UI",
        f'<link rel="stylesheet" href="{root}{DOCS_ASSETS}/swagger-ui.css">\n',
        f'<div id="swagger-ui" data-openapi-url="{escape(root + request.app.openapi_url)}">'
        "</div>\n"
        f'<script src="{root}{DOCS_ASSETS}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{root}/static/swagger-init.js"></script>\n',
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return _docs_page(
        f"{request.app.title} - ReDoc",
        "",
        f'<redoc spec-url="{escape(root + request.app.openapi_url)}"></redoc>\n'
        f'<script src="{root}{DOCS_ASSETS}/redoc.standalone.js"></script>\n',
    )


@router.get("/theme.css")
def theme(settings: SettingsDep) -> Response:
    """The brand colours; ``brand_context`` lets only a hex colour through."""
    brand = brand_context(settings)
    css = f":root {{ --brand: {brand['color']}; --on-brand: {brand['on_color']}; }}\n"
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=300"})


def install(app: FastAPI) -> None:
    """Mount the static folders and add the docs and theme routes to ``app``."""
    docs_assets = resources.files("fastapi_offline") / "static"
    # The sample snippets' pictures, at the URL the demo's emails name (before /static,
    # which would otherwise answer for them).
    app.mount(
        CONTENT_IMAGES_PATH.rstrip("/"),
        StaticFiles(directory=CONTENT_IMAGES_DIR),
        name="content-images",
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(docs_assets)), name="docs-assets")
    app.include_router(router)
