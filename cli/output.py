"""Everything a command prints, and the one way a command ends in failure.

Conventions of the whole ``newsletter`` command: ``--json`` prints only JSON on stdout;
exit 0 on success; an expected error (:class:`~newsletter.errors.NewsletterError`) is one
line ``error: ...`` on stderr and exit 1; wrong usage (a malformed value, an unknown
option: :mod:`cli.params` parses every kind of value) is one line too, with exit 2
(click's convention); counts agree with their nouns (:func:`plural`); flags show no type
in ``--help`` (:class:`App`); progress bars only on a terminal. Text lines are printed
without Rich markup, highlighting or hard wrapping, so a name with ``[brackets]`` or a
long path stays exactly one line.

The consoles are looked up at call time (``output.out``), so a test may swap them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from campaigns.delivery.send_report import SendProgress

out = Console()
err = Console(stderr=True)

JSON_OPTION_HELP = "Print only JSON."


class Command(typer.core.TyperCommand):
    """A command whose ``--help`` shows no type label for flags.

    Typer's Rich help labels every option with its type, so a flag such as ``--json``
    read ``--json <bool>`` as if it took a value; click's own help never shows one.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_labels(super().get_params(ctx))


class Group(typer.core.TyperGroup):
    """A command group whose own flags (``--help``, completion) show no type label."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_labels(super().get_params(ctx))


def _without_flag_labels(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # Typer shows a metavar, when set, instead of the type
    return params


class App(typer.Typer):
    """The ``typer.Typer`` of every command group: its commands are :class:`Command`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 row``, ``3 rows``, ``0 entries``: a count with the noun that agrees with it.

    English needs the plural for every count but one (0 rows, 1 row, 2 rows); ``many``
    is for nouns that do not just add an s (entry -> entries). Counts get thousands
    separators, as everywhere in the CLI's text.
    """
    noun = singular if count == 1 else (many or f"{singular}s")
    return f"{count:,} {noun}"


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


@contextmanager
def send_progress(
    campaign_id: int, *, status: str, shown: bool = True
) -> Iterator[Callable[[SendProgress], None] | None]:
    """The bar of ``campaigns send`` (inline, or following the workers), and its callback.

    One place for the line both send paths show, so they cannot drift apart: ``status``
    until the first batch, then ``sent N  skipped N  failed N  R/s`` of the whole campaign.
    Not ``shown`` (``--json``): no bar at all, and no callback, so stdout holds only JSON
    even on a terminal.
    """
    if not shown:
        yield None
        return
    with progress() as bar:
        task = bar.add_task(f"campaign {campaign_id}", total=None, status=status)

        def show(p: SendProgress) -> None:
            bar.update(
                task,
                total=p.total,
                completed=p.done,
                status=f"sent {p.sent}  skipped {p.skipped}  failed {p.failed}  {p.rate:,.0f}/s",
            )

        yield show


def fail(message: str | None = None) -> NoReturn:
    """End the command with exit 1, after ``error: message`` on stderr when given.

    For failures that are not exceptions: bad rows were reported and skipped, preflight
    found errors, a send failed. The report itself has already been printed on stdout.
    """
    if message is not None:
        error_line(message)
    raise typer.Exit(1)


def bad_usage(message: str, *, param_hint: str | None = None) -> NoReturn:
    """Wrong usage: one line naming the parameter (:func:`run`), exit 2."""
    raise typer.BadParameter(message, param_hint=param_hint)


def error_line(message: str) -> None:
    # soft_wrap: the message stays one line, whatever the terminal width.
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def expected_error(error: BaseException) -> bool:
    """Whether :func:`run` ends the command with one line for ``error`` (exit 1).

    Expected: every :class:`NewsletterError`, and a file system error on a path (a file
    or folder the command was told to read or write: no permission, no space, in use).
    Anything else is a bug and keeps its traceback.
    """
    if isinstance(error, NewsletterError):
        return True
    return isinstance(error, OSError) and error.filename is not None


def error_text(error: BaseException) -> str:
    """The one line an expected error prints (after ``error: ``)."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


def usage_line(error: typer.TyperException) -> str:
    """Click's usage error as one line: the message, then where to read the help."""
    message = " ".join(error.format_message().split()).rstrip(".")
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return message
    return f"{message} (see '{ctx.command_path} --help')"


def run(app: Callable[..., Any], args: Sequence[str] | None = None) -> NoReturn:
    """Run the typer ``app`` as the process; every failure is one line on stderr.

    Commands let :class:`NewsletterError` propagate (so tests can see it); only here is
    it (or another :func:`expected_error`) turned into ``error: ...`` and exit 1. Wrong
    usage (click's errors: an unknown option, a malformed value, a missing argument) is
    ``error: ...`` too, with exit 2; a group called without a command shows its help and
    exits 2.
    """
    try:
        code = app(args, prog_name="newsletter", standalone_mode=False)
    except (NewsletterError, OSError) as error:
        if not expected_error(error):
            raise
        error_line(error_text(error))
        sys.exit(1)
    except typer.TyperException as error:  # click's exceptions (typer vendors click)
        if error.format_message():  # empty: a group without a command showed its help
            error_line(usage_line(error))
        sys.exit(error.exit_code)
    except typer.Abort:
        error_line("aborted")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
