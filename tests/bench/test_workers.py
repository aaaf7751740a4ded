"""``python -m bench.workers``: a tiny size with a real worker, verified; and no worker
outlives a bench that is terminated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from bench import workers as bench_workers
from newsletter.settings import PROJECT_ROOT


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: queue mode needs PostgreSQL")
    return url


@contextmanager
def _bench(folder: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """The bench as a child process, its output in ``folder``/bench.out and bench.err (not
    pipes, which a process it left behind would hold open); SIGTERMed if still running
    when the block ends (a failure, pytest's timeout), so it stops its workers."""
    with (folder / "bench.out").open("wb") as out, (folder / "bench.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.workers", *args], cwd=PROJECT_ROOT, stdout=out, stderr=err
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _workers_of(bench: int) -> list[int]:
    """The ``newsletter worker`` processes whose parent is ``bench`` (Linux /proc)."""
    return _children_of(bench, b"\0worker\0")


def _children_of(parent: int, marker: bytes) -> list[int]:
    """Processes whose parent is ``parent`` and whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (
                int(_stat(int(entry.name))[1]) == parent
                and marker in (entry / "cmdline").read_bytes()
            ):
                found.append(int(entry.name))
        except (OSError, IndexError):
            continue  # ended meanwhile
    return found


def _started_workers(bench: subprocess.Popen[bytes]) -> list[int]:
    """The bench's workers once it has started them (at most 120 s)."""
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while not workers and bench.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        workers = _workers_of(bench.pid)
    assert workers, "the bench started no worker"
    return workers


def _alive(pid: int) -> bool:
    """Still running: neither gone nor a zombie left to be reaped."""
    try:
        return _stat(pid)[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.postgres
def test_the_workers_bench_reports_a_verified_row_per_worker_count(tmp_path: Path) -> None:
    url = _database_url()
    out = tmp_path / "workers.json"
    with _bench(tmp_path, "--sizes", "300", "--workers", "1", "--database-url", url,
                "--json", str(out)) as process:  # fmt: skip
        process.wait(timeout=200)  # leaves pytest's 300 s for the clean-up
    assert process.returncode == 0, (tmp_path / "bench.err").read_text()[-3000:]
    (row,) = json.loads(out.read_text())
    assert (row["size"], row["workers"], row["exactly_once"]) == (300, 1, True), row["problems"]
    assert row["send_seconds"] > 0 and row["speed_up"] == 1.0


@pytest.mark.postgres
def test_a_terminated_bench_stops_its_workers(tmp_path: Path) -> None:
    url = _database_url()
    workers: list[int] = []
    try:
        with _bench(tmp_path, "--sizes", "20", "--workers", "1", "--database-url", url,
                    "--json", str(tmp_path / "workers.json")) as bench:  # fmt: skip
            workers = _started_workers(bench)
            (worker,) = workers
            assert int(_stat(worker)[2]) == worker  # it leads its own process group

            bench.terminate()
            deadline = time.monotonic() + 5
            while _alive(worker) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(worker), "the worker outlived the terminated bench"
            bench.wait(timeout=90)
        stderr = (tmp_path / "bench.err").read_text()
        assert bench.returncode == 128 + signal.SIGTERM, stderr[-3000:]
        assert "Traceback" not in stderr
    finally:
        for pid in workers:  # a failed test leaves no worker behind either
            if _alive(pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.postgres
def test_a_killed_bench_leaves_no_worker_behind(tmp_path: Path) -> None:
    url = _database_url()
    workers: list[int] = []
    try:
        with _bench(tmp_path, "--sizes", "20", "--workers", "1", "--database-url", url,
                    "--json", str(tmp_path / "workers.json")) as bench:  # fmt: skip
            workers = _started_workers(bench)
            (worker,) = workers
            peers = _children_of(bench.pid, b"bench.fake_sendgrid_server")
            assert peers, "the bench started no fake SendGrid server"
            workers += peers  # killed at the end if the test fails

            bench.kill()  # no clean-up of its own: the kernel tells the worker
            bench.wait(timeout=10)
            deadline = time.monotonic() + 30
            while any(map(_alive, workers)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(worker), "the worker outlived the SIGKILLed bench"
            assert not any(map(_alive, peers)), "the fake SendGrid server outlived the bench"
    finally:
        for pid in workers:
            if _alive(pid):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_sigterm_while_a_worker_starts_waits_until_it_is_on_the_stop_list() -> None:
    seen: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        with bench_workers._signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # time for the handler to run, were it not held
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)
