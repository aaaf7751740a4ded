"""campaigns/tracking/hit_process.py: the click writer in a process of its own.

Real processes throughout (multiprocessing's spawn, real signals, a real SQLite file or
PostgreSQL schema): what matters is who writes, and that no hit is lost when one of the
two processes stops.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import TrackingEvent
from campaigns.tracking import hit_process
from campaigns.tracking.hits import Recorder
from newsletter.settings import Settings
from tests.support.links import redirects, sent_issue
from tests.support.subscribers import messages_to

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def link(settings: Settings, engine: Engine) -> tuple[str, int]:
    """Reader 0's first tracked link of a sent issue: (token, position)."""
    with Session(engine, expire_on_commit=False) as session:
        sent_issue(session, settings, readers=1, links=2)
    url = redirects(messages_to(settings, "reader0@example.com")[0])[0]
    token, position = url.rsplit("/", 2)[-2:]
    return token, int(position)


@pytest.fixture
def recorder(engine: Engine, settings: Settings) -> Iterator[Recorder]:
    room = Recorder(engine, settings.model_copy(update={"tracking_writer": "process"}))
    yield room
    room.close()


def click(room: Recorder, link: tuple[str, int]) -> None:
    room.click(link[0], link[1], method="GET", user_agent=BROWSER, ip="192.0.2.7")


def clicks_stored(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(
            sa.select(sa.func.count())
            .select_from(TrackingEvent)
            .where(TrackingEvent.kind == "clicked")
        ).scalar_one()


def alive(pid: int) -> bool:
    """Whether any thread of ``pid`` still runs. A killed process's leader thread turns
    zombie before its other threads have exited (Linux), so its own state is not enough."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False
    states = []
    for task in tasks:
        try:
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return any(state not in ("Z", "X") for state in states)


def wait_until(check, seconds: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_clicks_are_written_by_a_process_other_than_the_web_process(
    recorder: Recorder, link: tuple[str, int], engine: Engine
) -> None:
    click(recorder, link)
    assert recorder.flush(everything=True) == 1
    pid = recorder.writer_pid()
    assert pid is not None and pid != os.getpid() and alive(pid)
    assert clicks_stored(engine) == 1


def test_the_thread_setting_writes_from_the_web_process_itself(
    engine: Engine, settings: Settings, link: tuple[str, int]
) -> None:
    room = Recorder(engine, settings.model_copy(update={"tracking_writer": "thread"}))
    click(room, link)
    assert room.flush(everything=True) == 1
    assert room.writer_pid() is None
    assert clicks_stored(engine) == 1


def test_closing_the_web_side_writes_what_the_writer_holds_and_ends_it(
    engine: Engine, settings: Settings, link: tuple[str, int]
) -> None:
    # A long burst window: the click is held in the writer process, not yet written.
    cfg = settings.model_copy(update={"tracking_writer": "process", "tracking_burst_seconds": 60})
    room = Recorder(engine, cfg)
    click(room, link)
    assert room.flush() == 0
    pid = room.writer_pid()
    assert pid is not None and clicks_stored(engine) == 0
    room.close()
    assert clicks_stored(engine) == 1
    assert wait_until(lambda: not alive(pid), 5)


def test_a_killed_writer_process_is_replaced_and_later_clicks_are_written(
    recorder: Recorder, link: tuple[str, int], engine: Engine
) -> None:
    click(recorder, link)
    recorder.flush(everything=True)
    first = recorder.writer_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: not alive(first), 5)
    click(recorder, link)
    assert recorder.flush(everything=True) == 1
    second = recorder.writer_pid()
    assert second is not None and second != first
    assert clicks_stored(engine) == 2


def test_the_writer_outlives_sigterm_and_sigint_sent_to_the_whole_group(
    recorder: Recorder, link: tuple[str, int], engine: Engine
) -> None:
    click(recorder, link)
    recorder.flush(handover_only=True)
    pid = recorder.writer_pid()
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    assert alive(pid)
    assert recorder.flush(everything=True) == 1
    assert recorder.writer_pid() == pid


WEB_PROCESS = textwrap.dedent(
    """
    import sys, time
    from newsletter import db
    from newsletter.settings import Settings
    from campaigns.tracking.hits import Recorder

    settings = Settings.model_validate_json(sys.stdin.read())
    room = Recorder(db.get_engine(settings.database_url), settings)
    token, position = sys.argv[1], int(sys.argv[2])
    room.click(token, position, method="GET", user_agent="Mozilla/5.0", ip="192.0.2.9")
    room.flush(handover_only=True)
    print(room.writer_pid(), flush=True)
    time.sleep(600)
    """
)


def test_a_web_process_killed_outright_leaves_its_handed_over_clicks_written(
    settings: Settings, link: tuple[str, int], engine: Engine
) -> None:
    cfg = settings.model_copy(update={"tracking_writer": "process", "tracking_burst_seconds": 60})
    web = subprocess.Popen(
        [sys.executable, "-c", WEB_PROCESS, link[0], str(link[1])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert web.stdin is not None and web.stdout is not None
    web.stdin.write(cfg.model_dump_json())
    web.stdin.close()
    writer = int(web.stdout.readline())
    web.kill()  # SIGKILL: no shutdown code runs in the web process
    web.wait(timeout=10)
    web.stdout.close()
    assert wait_until(lambda: clicks_stored(engine) == 1)
    assert wait_until(lambda: not alive(writer), 10)


def test_a_web_process_started_from_an_unguarded_script_still_gets_its_writer(
    settings: Settings, link: tuple[str, int], engine: Engine, tmp_path: Path
) -> None:
    # multiprocessing's spawn would run this script again in the child (no __main__ guard).
    script = tmp_path / "serve_clicks.py"
    script.write_text(
        WEB_PROCESS.replace("time.sleep(600)", "room.flush(everything=True)\nroom.close()")
    )
    cfg = settings.model_copy(update={"tracking_writer": "process"})
    done = subprocess.run(
        [sys.executable, str(script), link[0], str(link[1])],
        input=cfg.model_dump_json(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[3],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert clicks_stored(engine) == 1


def test_a_stuck_writer_does_not_hold_the_web_process_at_shutdown(
    engine: Engine, settings: Settings, link: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hit_process, "CLOSE_TIMEOUT_SECONDS", 1.0)
    room = Recorder(engine, settings.model_copy(update={"tracking_writer": "process"}))
    click(room, link)
    room.flush(handover_only=True)
    pid = room.writer_pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # as a writer waiting on a lock or a lost connection
    try:
        started = time.monotonic()
        room.close()
        assert time.monotonic() - started < 10
    finally:
        os.kill(pid, signal.SIGCONT)
    # Left alone, it still writes what it held, then ends.
    assert wait_until(lambda: clicks_stored(engine) == 1)
    assert wait_until(lambda: not alive(pid), 10)


def test_a_database_locked_at_shutdown_loses_no_click(
    sqlite_engine: Engine,
    sqlite_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        sent_issue(session, sqlite_settings, readers=1, links=2)
    url = redirects(messages_to(sqlite_settings, "reader0@example.com")[0])[0]
    token, position = url.rsplit("/", 2)[-2:]
    monkeypatch.setattr(hit_process, "CLOSE_TIMEOUT_SECONDS", 1.0)
    cfg = sqlite_settings.model_copy(update={"tracking_writer": "process"})
    room = Recorder(sqlite_engine, cfg)
    click(room, (token, int(position)))
    room.flush(handover_only=True)
    locker = sqlite3.connect(sqlite_settings.database_url.removeprefix("sqlite:///"))
    locker.execute("BEGIN EXCLUSIVE")
    try:
        room.close()  # the writer cannot write now; the web side does not wait for it
    finally:
        time.sleep(1.5)
        locker.rollback()
        locker.close()
    assert wait_until(lambda: clicks_stored(sqlite_engine) == 1, 60)
