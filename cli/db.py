"""``newsletter db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from cli import output
from cli.context import engine_for, settings
from newsletter import db

app = output.App(help="Database schema.")


def _revision(value: str) -> str:
    """``head`` or the id of one of the project's migrations; BadParameter otherwise."""
    known = db.revisions()
    if value == "head" or value in known:
        return value
    raise typer.BadParameter(f"{value!r} is not a revision; use head or one of {', '.join(known)}")


@app.command("upgrade")
def upgrade(
    revision: str = typer.Argument(
        "head", metavar="REVISION", parser=_revision, help="The revision to migrate up to."
    ),
    as_json: bool = output.json_option(),
) -> None:
    """Apply migrations up to REVISION (default: the newest); with NEWSLETTER_SENDER=queue
    also procrastinate's schema, once (the workers' queue)."""
    cfg = settings()
    engine = engine_for(cfg, migrate=False)
    db.upgrade(engine, revision)
    if cfg.sender == "queue":
        from campaigns.delivery.workers.queue import ensure_schema

        ensure_schema(cfg)
    _print_revision(db.current_revision(engine), as_json, text="database at revision {}")


@app.command("current")
def current(as_json: bool = output.json_option()) -> None:
    """Show the schema revision ("empty" before the first migration) and the newest one."""
    _print_revision(db.current_revision(engine_for(settings(), migrate=False)), as_json)


def _print_revision(revision: str | None, as_json: bool, *, text: str = "{}") -> None:
    head = db.head_revision()
    if as_json:
        output.print_json({"revision": revision, "head": head, "up_to_date": revision == head})
        return
    output.say(text.format(revision or "empty"))
