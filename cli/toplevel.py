"""The commands at the top of ``newsletter``: ``serve`` (the web app) and ``demo``.

``serve`` names the web app by its import string, so this door never imports the web
door; uvicorn imports it (in each worker) and calls ``create_app()``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli import output, params
from cli.context import engine_for, settings

WEB_APP = "web.app:create_app"


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: any free one)."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Run the web app: sign-up pages, one-click unsubscribe, webhooks and the API."""
    import uvicorn

    engine_for(settings())  # fail here, in one line, if the settings or database are bad
    # uvicorn's proxy_headers would believe X-Forwarded-For from any local peer before the
    # app sees it; the app alone decides, from NEWSLETTER_TRUSTED_PROXIES (web/clients.py).
    uvicorn.run(WEB_APP, factory=True, host=host, port=port, workers=workers, proxy_headers=False)


def demo(
    folder: Path = typer.Option(
        Path("demo-output"),
        "--dir",
        metavar="FOLDER",
        parser=params.output_folder,
        help="Folder for the demo's files.",
    ),
    as_json: bool = output.json_option(),
) -> None:
    """This week's issue end to end on embedded SQLite and the file outbox."""
    from campaigns.demo import demo_settings, run_demo
    from newsletter import db

    cfg = demo_settings(folder)
    summary = run_demo(
        settings=cfg,
        engine=db.get_engine(cfg.database_url),
        out_dir=folder.resolve(),
        step=(lambda _m: None) if as_json else (lambda m: output.say(f"- {m}")),
    )
    if as_json:
        output.print_json(summary.to_dict())
        return
    emls = len(list(summary.outbox_dir.glob("*.eml")))
    again = " (already sent before; nothing sent twice)" if summary.already_sent else ""
    output.say(f"\nCampaign {summary.campaign_id} ({summary.week}): {summary.subject}")
    output.say(f"  status: {summary.status}; recipients sent: {summary.recipients}{again}")
    output.say(f"  outbox: {summary.outbox_dir} ({output.plural(emls, '.eml file')})")
    output.say(f"  preview: {summary.preview_dir / 'email.html'}")
    for note in summary.notes:
        output.say(f"  note: {note}")
