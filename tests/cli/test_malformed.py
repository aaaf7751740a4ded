"""Every command of the CLI, given malformed values, ends in one line: exit 1 or 2, never a
traceback.

The commands are found by walking the Typer app's command tree, so a new command is
covered without touching this file. Each gets hypothesis-generated values for its
arguments and options (random text, and the classic mistakes: empty, negative, huge,
not a date, not an address, a directory for a file), in-process with typer's CliRunner
against a temporary SQLite database that holds one campaign, snippet and subscriber, so
the values also reach the code behind the parse step. An exception that the real
process (:func:`cli.output.run`) would not turn into one line fails the test.

Commands that start a server or a long loop (``serve``, ``scheduler run``, ``demo``) are
only parsed: their malformed values must be refused before anything starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session
from typer.testing import CliRunner

from cli import app, output
from newsletter import db
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import add_subscribers

runner = CliRunner()
NEWSLETTER = str(Path(sys.executable).parent / "newsletter")
ROOT = typer.main.get_command(app)
# Started for real these would serve HTTP, exec the scheduler or run the whole demo.
PARSE_ONLY = {("serve",), ("demo",), ("scheduler", "run")}
# Exit codes a command documents beyond 0, 1 and 2 (its --help says what they mean).
MORE_EXIT_CODES = {("scheduler", "status"): {3}}
# A valid preview starts Chromium for two screenshots (seconds each): fewer examples.
EXAMPLES = {("campaigns", "preview"): 8}
CAMPAIGN = "1"  # the seeded campaign, so other values reach the room behind the parse
MALFORMED = [
    "",
    " ",
    "-1",
    "0",
    "99999999999999999999999",
    "nan",
    "1e999",
    "0x1f",
    "notanemail",
    "a@",
    "@example.com",
    "a@b@c",
    "x\ny@example.com",
    "é@ü.example",
    "2026-13-45",
    "2026-02-30T25:61",
    "9999-12-31T23:59:59+25:00",
    "0001-01-01",
    "/dev/null",
    ".",
    "/proc/version/x",
    "/nonexistent/dir/file.csv",
    "x" * 400,
    "--",
    "-",
    "[red]markup[/red]",
]
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=30,
)
VALUE = st.one_of(st.sampled_from(MALFORMED), TEXT)


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, command) for every leaf command under ``command``."""
    children = getattr(command, "commands", None)
    if children is None:
        yield path, command
        return
    for name, child in sorted(children.items()):
        yield from walk(child, (*path, name))


COMMANDS = list(walk(ROOT))


def is_campaign_id(param: Any) -> bool:
    return param.param_type_name == "argument" and (param.metavar or param.name) in {
        "ID",
        "campaign_id",
    }


@st.composite
def command_line(draw: st.DrawFn, command: Any) -> list[str]:
    """Arguments in order, then options in a drawn order; flags drawn on or off."""
    positional: list[str] = []
    options: list[list[str]] = []
    for param in command.params:
        if param.param_type_name == "argument":
            if not param.required and draw(st.booleans()):
                continue
            good = [CAMPAIGN] if is_campaign_id(param) else []
            positional.append(draw(st.sampled_from(good) | VALUE) if good else draw(VALUE))
        elif getattr(param, "is_flag", False):
            if draw(st.booleans()):
                options.append([param.opts[0]])
        elif param.required or draw(st.booleans()):
            options.append([param.opts[0], draw(VALUE)])
    if draw(st.integers(0, 9)) == 0:
        options.append([draw(st.sampled_from(["--bogus", "--json=3", "extra"]))])
    ordered = draw(st.permutations(options))
    return [*positional, *(word for option in ordered for word in option)]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with one snippet, one draft campaign and two readers,
    made once and copied for each command."""
    from newsletter.settings import load_settings

    path = tmp_path_factory.mktemp("seed") / "cli.db"
    url = f"sqlite:///{path}"
    engine = db.get_engine(url)
    db.upgrade(engine)
    cfg = load_settings(_env_file=None, database_url=url, timezone="UTC")
    with Session(engine, expire_on_commit=False) as session:
        make_campaign(session, [make_snippet(session, cfg)], subject="Seeded")
        session.commit()
    add_subscribers(engine, 2)
    db.dispose_engine(url)  # checkpoints SQLite's WAL into the file
    return path


@pytest.fixture
def env(seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # relative paths land here; no stray .env is read
    shutil.copy(seeded, tmp_path / "cli.db")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    values = {
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_POSTAL_ADDRESS": "Pain Relief Weekly, 1 Main Street, Springfield",
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
        "NEWSLETTER_TIMEZONE": "UTC",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    yield tmp_path
    db.dispose_engine(url)


def invoke(path: tuple[str, ...], command: Any, args: list[str]) -> tuple[int, str]:
    """Exit code and output of one run, as the real process would end it."""
    if path in PARSE_ONLY:
        try:
            command.make_context(" ".join(path), list(args))
        except Exception as error:  # click's usage errors and --help's exit
            code = getattr(error, "exit_code", None)
            assert code in (0, 2), f"{path} {args!r}: {error!r}"
            return code, ""
        return 0, ""
    result = runner.invoke(app, [*path, *args])
    error = result.exception
    if error is not None and not isinstance(error, SystemExit):
        assert output.expected_error(error), (
            f"{' '.join(path)} {args!r} raised {type(error).__name__}: {error}"
        )
        return 1, str(error)
    return result.exit_code, result.output


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_malformed_values_end_in_one_line_and_exit_0_1_or_2(
    env: Path, path: tuple[str, ...], command: Any
) -> None:
    @settings(
        max_examples=int(os.environ.get("CLI_FUZZ_EXAMPLES", EXAMPLES.get(path, 25))),
        deadline=None,
        derandomize="CLI_FUZZ_EXAMPLES" not in os.environ,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(args=command_line(command))
    def check(args: list[str]) -> None:
        code, text = invoke(path, command, args)
        allowed = {0, 1, 2} | MORE_EXIT_CODES.get(path, set())
        assert code in allowed, f"{' '.join(path)} {args!r} exited {code}: {text}"
        assert "Traceback" not in text, text

    check()


# ---------------------------------------------------------------- the real process


def newsletter(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    values.update(
        NEWSLETTER_DATABASE_URL=f"sqlite:///{tmp_path / 'door.db'}",
        NEWSLETTER_SECRET_KEY="door-test-secret-0123456789",
        NEWSLETTER_TIMEZONE="UTC",
    )
    values.update(env)
    return subprocess.run(
        [NEWSLETTER, *args], cwd=tmp_path, env=values, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("notanemail", "'notanemail' is not a valid email address: An email address must have"),
        ("", "an email address is required"),
        ("a@b@example.com", "'a@b@example.com' is not a valid email address"),
    ],
)
def test_a_malformed_test_send_address_is_one_line_and_exit_2(
    tmp_path: Path, to: str, reason: str
) -> None:
    result = newsletter(tmp_path, "campaigns", "test-send", "1", "--to", to)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: Invalid value for '--to': {reason}")
    assert result.stderr.endswith(" (see 'newsletter campaigns test-send --help')\n")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["campaigns", "assemble", "--for", "someday"],
        ["campaigns", "schedule", "1", "--at", "someday"],
        ["campaigns", "show", "first"],
        ["campaigns", "list", "--status", "nope"],
        ["subscribers", "import", "missing.csv"],
        ["db", "upgrade", "0099"],
        ["scheduler", "status", "--bogus"],
    ],
    ids=" ".join,
)
def test_wrong_usage_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = newsletter(tmp_path, *args)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    if "someday" in args:
        assert "'someday' is not a date" in result.stderr


def test_a_group_without_a_command_shows_its_help_and_exits_2(tmp_path: Path) -> None:
    result = newsletter(tmp_path, "campaigns")
    assert result.returncode == 2
    assert "Usage: newsletter campaigns" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url", ["mysql://user:secret@db/news", "postgresql+psycopg2://u@h/db", "newsletter.db"]
)
@pytest.mark.parametrize(
    "args",
    [["campaigns", "list"], ["scheduler", "status"], ["db", "current"], ["serve"]],
    ids=" ".join,
)
def test_an_unsupported_database_url_is_one_line_naming_the_setting(
    tmp_path: Path, url: str, args: list[str]
) -> None:
    result = newsletter(tmp_path, *args, NEWSLETTER_DATABASE_URL=url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: invalid settings: NEWSLETTER_DATABASE_URL: ")
    assert result.stderr.count("\n") == 1
    assert "secret" not in result.stderr


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database, " * 100)
    url = f"sqlite:///{tmp_path / 'notes.txt'}"
    result = newsletter(tmp_path, "campaigns", "list", NEWSLETTER_DATABASE_URL=url)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("error: cannot reach the database sqlite:///")
    assert result.stderr.endswith(": file is not a database\n")
    assert result.stderr.count("\n") == 1
