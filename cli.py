"""The door for marketers and ops: the ``newsletter`` command.

Commands parse arguments, call a room and format its answer; no logic lives here.
Conventions: ``--json`` prints only JSON; exit 0 on success, 1 on an expected error
(one line on stderr), 2 on wrong usage; progress bars only on a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import db
from newsletter.errors import NewsletterError
from newsletter.settings import Settings, load_settings

app = typer.Typer(help="Run the weekly newsletter.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
snippets_app = typer.Typer(help="The snippet library.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Subscribers and consent.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Weekly issues and other campaigns.", no_args_is_help=True)
scheduler_app = typer.Typer(help="The scheduler service.", no_args_is_help=True)
api_tokens_app = typer.Typer(help="Bearer tokens for the HTTP API.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(snippets_app, name="snippets")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(api_tokens_app, name="api-tokens")

out = Console()
err_console = Console(stderr=True)


# ---------------------------------------------------------------- shared wiring

def settings() -> Settings:
    return load_settings()


def engine_for(cfg: Settings, *, migrate: bool | None = None) -> Engine:
    """The engine; an embedded SQLite database is migrated on first use."""
    engine = db.get_engine(cfg.database_url)
    if migrate if migrate is not None else cfg.is_sqlite:
        db.upgrade(engine)
    else:
        db.check_connection(engine)
    return engine


@contextmanager
def session_for(cfg: Settings) -> Iterator[Session]:
    with db.session_scope(engine_for(cfg)) as session:
        yield session


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


def progress() -> Progress:
    """A rich progress bar that stays quiet when stdout is not a terminal."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        console=out, disable=not out.is_terminal, transient=False,
    )


# ---------------------------------------------------------------- db

@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    cfg = settings()
    engine = engine_for(cfg, migrate=False)
    db.upgrade(engine, revision)
    out.print(f"database at revision {db.current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision."""
    cfg = settings()
    out.print(db.current_revision(engine_for(cfg, migrate=False)) or "empty")


# ---------------------------------------------------------------- entry point

def main() -> None:
    try:
        app()
    except NewsletterError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
