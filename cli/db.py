"""``newsletter db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from cli import output
from cli.context import engine_for, settings
from newsletter import db

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    engine = engine_for(settings(), migrate=False)
    db.upgrade(engine, revision)
    output.say(f"database at revision {db.current_revision(engine)}")


@app.command("current")
def current() -> None:
    """Show the schema revision."""
    output.say(db.current_revision(engine_for(settings(), migrate=False)) or "empty")
