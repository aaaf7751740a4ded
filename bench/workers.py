"""``python -m bench.workers``: queue mode (issue 17) with 1, 2... ``newsletter worker``s.

Per size N and worker count W, on PostgreSQL only: a fresh schema with N subscribers
(bench.generate), the bench's fake SendGrid server in its own process, W real
``newsletter worker`` processes (concurrency 1 each) waiting on the queue, then the
service's own steps timed from this process: assemble and render, ``hand_over`` (preflight,
queueing the ledger, one procrastinate job per block of ``worker_batch_size`` ids), and the
workers' send, from the hand-over's end until the campaign is 'sent' (read from the ledger
every 0.2 s, as ``campaigns send --wait`` does). Verified before reporting: the peer saw N
distinct recipients and no duplicate, the ledger has N rows sent and none left queued.

    python -m bench.workers --sizes 200000 --workers 1,2 \
        --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bench.databases import fresh_database
from bench.fake_sendgrid_server import FakeSendGridProcess
from bench.generate import populate
from bench.run import API_KEY, bench_settings
from newsletter import db
from newsletter.settings import PROJECT_ROOT, Settings

CLI = "from cli import main; main()"


STOP_GRACE_SECONDS = 60  # for the workers together: each ends its batch in flight


@contextmanager
def _workers(values: dict[str, Any], count: int, workdir: Path) -> Iterator[list[subprocess.Popen]]:
    """``count`` ``newsletter worker`` processes, each leading its own session (process
    group), stopped on every way out of the block: its end, an exception, Ctrl-C, SIGTERM.

    Their own groups: a signal meant for the bench (Ctrl-C at a terminal) no longer reaches
    them behind the bench's back, and :func:`_stop` can take a worker with anything it
    started. A worker already started is stopped even when a later one fails to start.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update({f"NEWSLETTER_{k.upper()}": str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    workers: list[subprocess.Popen] = []
    try:
        for i in range(count):
            with (workdir / f"worker{i}.log").open("wb") as log, _signals_held():
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", CLI, "worker"],
                        env=env,
                        cwd=workdir,
                        stdout=subprocess.DEVNULL,
                        stderr=log,
                        start_new_session=True,
                        preexec_fn=_terminated_with_the_bench,
                    )
                )
        yield workers
    finally:
        _stop(workers)


def _terminated_with_the_bench() -> None:
    """In the worker, before it runs: SIGTERM when the bench's process ends, however it
    ends (``prctl(PR_SET_PDEATHSIG)``, Linux). A SIGKILLed bench runs no clean-up of its
    own, and a worker in its own session would otherwise go on waiting for jobs. The bench
    starts no thread, so running this between fork and exec is safe."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT wait for the block's end, then act as they would have.

    Around starting a worker: a signal between ``Popen`` and ``append`` would unwind
    before the worker is on the list that :func:`_stop` stops, and orphan it. (Not
    ``pthread_sigmask``: the worker would inherit the blocked mask and never see SIGTERM.)
    """
    pending: list[int] = []
    held = (signal.SIGTERM, signal.SIGINT)
    previous = {
        signum: signal.signal(signum, lambda n, _f: pending.append(n))
        for signum in held
        if signal.getsignal(signum) != signal.SIG_IGN  # an ignored one stays ignored
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


def _stop(workers: list[subprocess.Popen]) -> None:
    """SIGTERM each worker's group (a graceful stop), then SIGKILL what is left of them.

    The SIGKILL is in a ``finally``: a second signal or a timeout while waiting out the
    grace still leaves no worker behind.
    """
    try:
        for process in workers:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in workers:
            with suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))
    finally:
        for process in workers:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with suppress(ProcessLookupError):  # the whole group has ended already
        os.killpg(process.pid, signum)


def _raise_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a test's timeout, a CI runner, ``kill``) unwinds the bench like Ctrl-C, so
    every ``finally`` runs: the workers are stopped, the schema dropped, instead of the
    workers being orphaned. Exit status 143, as if the signal had ended the process."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up is not cut short by another
    raise SystemExit(128 + signum)


def _wait_for_workers(engine: sa.Engine, count: int) -> None:
    """Until ``count`` workers have registered with procrastinate (their heartbeat row)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            ready = connection.exec_driver_sql(
                "SELECT count(*) FROM procrastinate_workers"
            ).scalar_one()
        if ready >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{count} workers did not start within 60 s")


def run_one(size: int, workers: int, database_url: str, workdir: Path) -> dict[str, Any]:
    from campaigns.content.assembly import assemble_week
    from campaigns.content.rendering import render_campaign
    from campaigns.delivery.ledger import delivery_counts
    from campaigns.delivery.workers.handover import hand_over
    from campaigns.delivery.workers.queue import ensure_schema
    from campaigns.models import Campaign

    with fresh_database(database_url, workdir, f"workers{workers}-{size}") as url:
        engine = db.get_engine(url)
        populate(engine, settings=Settings(_env_file=None, database_url=url), size=size)  # type: ignore[call-arg]
        with FakeSendGridProcess(API_KEY) as peer:
            values = bench_settings(url, workdir, "sendgrid", peer.url)
            values.update(sender="queue", preflight_fetch=False)  # no network to fetch from
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
            ensure_schema(settings)
            with _workers(values, workers, workdir):
                _wait_for_workers(engine, workers)
                with db.session_scope(engine) as session:
                    campaign = assemble_week(session, settings=settings, actor="bench").campaign
                    render_campaign(session, settings=settings, campaign=campaign)
                    campaign_id = campaign.id
                assert campaign_id is not None
                started = time.perf_counter()
                with Session(engine) as session:
                    handed = hand_over(session, settings=settings, campaign_id=campaign_id)
                handed_at = time.perf_counter()
                while True:
                    with Session(engine) as session:
                        status = session.get(Campaign, campaign_id).status  # type: ignore[union-attr]
                    if status != "sending":
                        break
                    time.sleep(0.2)
                finished = time.perf_counter()
            stats = peer.stats()
        with Session(engine) as session:
            counts = delivery_counts(session, campaign_id=campaign_id)
        db.dispose_engine(url)
    problems = []
    if status != "sent" or counts.sent != size or counts.queued:
        problems.append(f"campaign {status}, ledger {counts.as_dict()}")
    if stats["distinct_recipients"] != size or stats["duplicates"]:
        problems.append(f"peer: {stats['distinct_recipients']} distinct, "
                        f"{stats['duplicates']} duplicates")  # fmt: skip
    send = finished - handed_at
    return {
        "size": size,
        "workers": workers,
        "blocks": handed.deferred,
        "hand_over_seconds": round(handed_at - started, 2),
        "send_seconds": round(send, 2),
        "recipients_per_second": round(size / send, 1),
        "peer_cpu_seconds": stats["cpu_seconds"],
        "load_average_after": round(os.getloadavg()[0], 2),
        "exactly_once": not problems,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--database-url", required=True, help="PostgreSQL (queue mode)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "workers.json")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    results = []
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print("| N | workers | blocks | hand-over s | send s | rcpt/s | speed-up | load avg | once |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-workers-") as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            first: float | None = None
            for count in (int(w) for w in args.workers.split(",")):
                result = run_one(size, count, args.database_url, Path(folder))
                first = first or result["send_seconds"]
                result["speed_up"] = round(first / result["send_seconds"], 2)
                results.append(result)
                once = "yes" if result["exactly_once"] else "NO: " + "; ".join(result["problems"])
                print(
                    f"| {size:,} | {count} | {result['blocks']} | {result['hand_over_seconds']} | "
                    f"{result['send_seconds']} | {result['recipients_per_second']:,.0f} | "
                    f"{result['speed_up']}x | {result['load_average_after']} | {once} |",
                    flush=True,
                )
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["exactly_once"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
