"""Big and hostile CSV files stay bounded (issue 12, point 8) and exports are safe in a
spreadsheet (point 9)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from newsletter import db
from newsletter.errors import ImportProblem
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.csv_io import IMPORT_CHUNK, ImportReport, import_csv, import_csv_file, safe_cell
from subscribers.csv_reading import MAX_LINE_BYTES
from subscribers.export import export_subscribers
from subscribers.models import Subscriber
from tests.conftest import make_settings
from tests.support.subscribers import make_subscriber, messages, outbox, sqlite_only

NEWSLETTER = Path(sys.executable).parent / "newsletter"
# Big enough that holding the rows (~0.5 KB each under tracemalloc, ~20 MB) would pass the
# bound twice over; small enough to keep the suite's time (bench/ imports 1M rows). The
# streaming import peaks at ~4-5 MiB whether the file has 10k or 40k rows.
BIG = 40_000


def count(engine: Engine) -> int:
    with Session(engine) as fresh:
        return fresh.exec(select(func.count()).select_from(Subscriber)).one()


def import_file(session: Session, settings: Settings, path: Path, **kwargs) -> ImportReport:
    return import_csv_file(
        session, settings=settings, mailer=None, path=path, send_confirmations=False, **kwargs
    )


# ---------------------------------------------------------------- a big file


def write_big_file(path: Path) -> tuple[int, list[tuple[int, str]]]:
    """``BIG`` rows: half with consent proof, a bad address every 1,000 rows and a
    duplicate of a row 2,000 lines up (an earlier chunk) every 5,000; the good rows and
    the (line, reason) of each bad one."""
    good, bad = 0, []
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,consented_at\n")
        for n in range(BIG):
            line = n + 2
            if n % 1000 == 999:
                out.write(f"bad{n},,\n")
                bad.append((line, f"'bad{n}' is not a valid email address"))
            elif n % 5000 == 4321:
                out.write(f"r{n - 2000}@x.io,,\n")
                bad.append((line, f"duplicate of line {line - 2000}"))
            else:
                out.write(f"r{n}@x.io,,{'2025-01-01' if n % 2 else ''}\n")
                good += 1
    return good, bad


def check_big_import(report: ImportReport, engine: Engine, good: int, bad: list) -> None:
    assert (report.rows, report.active + report.pending) == (BIG, good)
    assert [(p.line, p.reason.split(":")[0]) for p in report.problems] == bad
    assert count(engine) == good


@sqlite_only
def test_a_40k_row_file_imports_in_flat_memory(
    session: Session, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """The whole import of 40k rows (0.8 MB) under tracemalloc: the peak stays a few MB
    above the start, where holding the file and its rows would take about 20 MB. (SQLite
    only: the memory path is the same Python on both databases, and tracemalloc makes a
    PostgreSQL run take minutes; the chunked import itself is tested on both below.)"""
    path = tmp_path / "big.csv"
    good, bad = write_big_file(path)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        report = import_file(session, settings, path)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    check_big_import(report, engine, good, bad)
    assert peak < 10 * 2**20, f"peak memory grew by {peak / 2**20:.1f} MiB"


def test_rows_are_committed_chunk_by_chunk(
    session: Session, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """2,500 rows: three chunks, each committed before the next is read, with a bad row
    and a duplicate of a row two chunks up listed by line."""
    path = tmp_path / "people.csv"
    lines = [f"p{n}@x.io" for n in range(2 * IMPORT_CHUNK + IMPORT_CHUNK // 2)]
    lines[1500] = "not-an-address"  # file line 1502
    lines[2400] = "p7@x.io"  # file line 2402, a duplicate of line 9
    path.write_text("email\n" + "".join(f"{line}\n" for line in lines))
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if done % IMPORT_CHUNK == 0 or done == total:
            seen.append((done, count(engine)))  # another connection: committed rows only

    report = import_file(session, settings, path, on_row=progress)
    assert seen == [(1000, 1000), (2000, 1999), (2500, 2498)]
    assert [(p.line, p.reason.split(":")[0]) for p in report.problems] == [
        (1502, "'not-an-address' is not a valid email address"),
        (2402, "duplicate of line 9"),
    ]
    assert (report.rows, report.pending) == (2500, 2498)


# ---------------------------------------------------------------- hostile files


def test_the_size_limit_is_checked_before_reading(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as out:  # sparse: 300 MB that take no disk and no time
        out.truncate(300 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ImportProblem) as caught:
            import_file(session, settings, huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        f"{huge}: the file is 314,572,800 bytes, over the import limit of 209,715,200 bytes "
        "(NEWSLETTER_IMPORT_MAX_BYTES)"
    )
    assert peak < 2**20  # not a byte of it was read


def test_the_size_limit_is_a_setting(session: Session, settings: Settings) -> None:
    small = settings.model_copy(update={"import_max_bytes": 100})
    data = b"email\n" + b"".join(b"p%d@x.io\n" % n for n in range(20))
    with pytest.raises(ImportProblem) as caught:
        import_csv(session, settings=small, mailer=None, data=data, where="people.csv")
    assert str(caught.value) == (
        f"people.csv: the file is {len(data)} bytes, over the import limit of 100 bytes "
        "(NEWSLETTER_IMPORT_MAX_BYTES)"
    )
    assert import_csv(session, settings=settings, mailer=None, data=data).pending == 20


def test_the_import_command_names_the_file_and_the_limit_in_one_line(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email\n" + "".join(f"p{n}@x.io\n" for n in range(200)))
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": settings.database_url,
        "NEWSLETTER_OUTBOX_DIR": str(settings.outbox_dir),
        "NEWSLETTER_SECRET_KEY": settings.secret_key or "",
        "NEWSLETTER_IMPORT_MAX_BYTES": "1000",
    }
    done = subprocess.run(
        [str(NEWSLETTER), "subscribers", "import", str(path), "--no-confirm-mail"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done
    size = path.stat().st_size
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {path}: the file is {size:,} bytes, over the import limit of 1,000 bytes "
        "(NEWSLETTER_IMPORT_MAX_BYTES)"
    )
    assert count(engine) == 0


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (b"a" * (MAX_LINE_BYTES + 10), r"people.csv: line 5 is longer than 1,048,576 bytes"),
        (b'z@x.io,"' + b"a" * 200_000 + b'"\n', r"people.csv:5: malformed CSV: field larger"),
        (b"z@x.io,\x00\n", r"people.csv: this is not a text CSV file \(it contains NUL bytes\)"),
    ],
    ids=["endless line", "endless cell", "NUL byte"],
)
def test_a_hostile_file_is_refused_whole_and_imports_nothing(
    session: Session, settings: Settings, engine: Engine, tail: bytes, problem: str
) -> None:
    data = b"email,name\na@x.io,\nb@x.io,\nc@x.io,\n" + tail
    tracemalloc.start()
    try:
        with pytest.raises(ImportProblem, match=problem):
            import_csv(session, settings=settings, mailer=None, data=data, where="people.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count(engine) == 0  # the good rows before the fault are not imported either
    assert peak < 4 * 2**20


@sqlite_only
def test_bad_rows_are_still_listed_by_file_line_and_good_rows_kept(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("email,name\r\nok@x.io,Ok\r\nnot-an-address,\r\n\r\nlater@x.io,\r\n")
    report = import_csv_file(session, settings=settings, mailer=outbox(settings), path=path)
    assert [(p.line, p.email) for p in report.problems] == [(3, "not-an-address")]
    assert (report.pending, report.confirmations_sent, len(messages(settings))) == (2, 2, 2)


# ---------------------------------------------------------------- exports


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (3, "3"),
    ],
)
def test_safe_cell_follows_the_owasp_rule(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_every_exported_cell_is_safe_in_a_spreadsheet(session: Session) -> None:
    names = ["=1+1", "+cmd|' /C calc'!A0", "-2", "@SUM(1)", "\tTab", "\rCR", "Plain"]
    for n, name in enumerate(names):
        make_subscriber(session, f"reader{n}@example.com", name=name)
    make_subscriber(session, "-dash@example.com", name="Dash")
    exported = export_subscribers(session, fmt="csv")
    rows = list(csv.reader(io.StringIO(exported, newline="")))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (row, cell)
    by_email = {row[0]: row[1] for row in rows[1:]}
    assert by_email["reader0@example.com"] == "'=1+1"
    assert by_email["'-dash@example.com"] == "Dash"


def test_a_safe_export_imports_back_unchanged(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    make_subscriber(session, "-dash@example.com", name="=1+1")
    make_subscriber(session, "+plus@example.com", name="@home")
    exported = export_subscribers(session, fmt="csv").encode()
    other = make_settings(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    engine = db.get_engine(other.database_url)
    db.upgrade(engine)
    try:
        with Session(engine, expire_on_commit=False) as fresh:
            report = import_csv(fresh, settings=other, mailer=None, data=exported)
            assert (report.pending, report.problems) == (2, [])
            names = {s.email: s.name for s in fresh.exec(select(Subscriber))}
    finally:
        db.dispose_engine(other.database_url)
    assert names == {"-dash@example.com": "=1+1", "+plus@example.com": "@home"}
    assert lifecycle.get_by_email(session, email="-dash@example.com").name == "=1+1"
