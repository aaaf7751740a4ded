"""Everything a command prints, and the one way a command ends in failure.

Conventions of the whole ``newsletter`` command: ``--json`` prints only JSON on stdout;
exit 0 on success; an expected error (:class:`~newsletter.errors.NewsletterError`) is one
line ``error: ...`` on stderr and exit 1; wrong usage exits 2 (click's convention);
progress bars only on a terminal. Text lines are printed without Rich markup, highlighting
or hard wrapping, so a name with ``[brackets]`` or a long path stays exactly one line.

The consoles are looked up at call time (``output.out``), so a test may swap them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from newsletter.errors import NewsletterError

out = Console()
err = Console(stderr=True)

JSON_OPTION_HELP = "Print only JSON."


def json_option(text: str = JSON_OPTION_HELP) -> Any:
    """The ``--json`` flag every command offers (a typer option default)."""
    return typer.Option(False, "--json", help=text)


def say(text: str, *, style: str | None = None) -> None:
    """One line (or more, if ``text`` holds newlines) on stdout, printed as is."""
    out.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def say_err(text: str) -> None:
    """One line on stderr that does not end the command (``stopped: ...``, ``wrote ...``)."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)


def write(text: str) -> None:
    """Raw text on stdout: a secret or a file's content, never styled or wrapped by Rich."""
    sys.stdout.write(text)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout; dates and paths become strings."""
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


def print_table(
    columns: Sequence[str | Column],
    rows: Iterable[Sequence[str]],
    *,
    title: str | None = None,
) -> None:
    """A Rich table on stdout: ``columns`` are headers or :class:`rich.table.Column`."""
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def progress() -> Progress:
    """A Rich progress bar on stdout that stays quiet when stdout is not a terminal.

    Tasks carry a ``status`` field: ``bar.add_task(name, total=None, status="")``.
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=out,
        disable=not out.is_terminal,
        transient=False,
    )


def fail(message: str | None = None) -> NoReturn:
    """End the command with exit 1, after ``error: message`` on stderr when given.

    For failures that are not exceptions: bad rows were reported and skipped, preflight
    found errors, a send failed. The report itself has already been printed on stdout.
    """
    if message is not None:
        error_line(message)
    raise typer.Exit(1)


def bad_usage(message: str, *, param_hint: str | None = None) -> NoReturn:
    """Wrong usage: click prints the message with the usage line, exit 2."""
    raise typer.BadParameter(message, param_hint=param_hint)


def error_line(message: str) -> None:
    # soft_wrap: the message stays one line, whatever the terminal width.
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def run(app: Callable[[], Any]) -> NoReturn:
    """Run the typer ``app`` as the process: an expected error is one line and exit 1.

    Commands let :class:`NewsletterError` propagate (so tests can see it); only here is it
    turned into the exit code. Usage errors (exit 2) are click's own.
    """
    try:
        app()
    except NewsletterError as error:
        error_line(str(error))
        sys.exit(1)
    sys.exit(0)
