"""``python -m bench.redirects``: click redirect latency under 200 concurrent clients, and
how fast the clicks reach the database (issue 15).

One run:

1. A fresh SQLite database (or a PostgreSQL schema with ``--database-url``) with
   ``--readers`` subscribers, one sent campaign of eight article links (its
   ``campaign_link`` rows) and one ``sent`` delivery per reader, written set-based.
2. The service's own app under uvicorn, in a child process on 127.0.0.1
   (``uvicorn web.app:create_app --factory``: what ``newsletter serve`` runs).
3. The load: ``--clients`` keep-alive HTTP/1.1 connections, each a loop of
   ``GET /r/{token}/{n}`` for random readers and links, written with asyncio streams
   (no HTTP library on the client side: its own cost would hide the server's). For each
   rate in ``--rates`` (requests per second over all clients; 0: as fast as the server
   answers), requests start on a fixed schedule per client (open loop: a slow answer
   does not slow the schedule, so queueing shows up in the latency), for ``--seconds``.
   Every answer must be a 302 to that link's URL. Latency is from writing the request
   to reading the whole answer.
4. Ingestion: after the load, the time until every click is in ``tracking_event`` and
   the ledger's ``click_count`` (the app writes them in bulk, every second), and the
   events per second that makes.

Run it as ``make bench-redirects``; the figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.databases import fresh_database
from campaigns.tracking.links import make_token, tracking_keys
from newsletter import db
from newsletter.settings import load_settings

LINKS = 8
SLOW = 0.020  # seconds: an answer this slow misses the 5 ms p99 by far
SECRET = "bench-secret-" + "0" * 24


def _prepare(url: str, readers: int) -> list[str]:
    """The database as one sent campaign leaves it; returns every reader's token."""
    engine = db.get_engine(url)
    db.upgrade(engine)
    keys = [secrets.token_hex(16) for _ in range(readers)]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO campaign (subject, preheader, status, created_at, created_by) "
                "VALUES ('Bench', '', 'sent', CURRENT_TIMESTAMP, 'bench')"
            )
        )
        cid = conn.execute(sa.text("SELECT max(id) FROM campaign")).scalar_one()
        conn.execute(
            sa.text("INSERT INTO campaign_link (campaign_id, position, url) VALUES (:c, :p, :u)"),
            [
                {"c": cid, "p": n, "u": f"https://blog.example.com/articles/{n}?utm_source=b"}
                for n in range(LINKS)
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO subscriber (email, link_key, status, source, created_at, "
                "status_changed_at, topics, soft_bounces) VALUES (:e, :k, 'active', "
                "'import', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :t, 0)"
            ),
            [{"e": f"r{i}@example.com", "k": k, "t": "[]"} for i, k in enumerate(keys)],
        )
        ids = conn.execute(sa.text("SELECT id, link_key FROM subscriber ORDER BY id")).all()
        conn.execute(
            sa.text(
                "INSERT INTO delivery (campaign_id, subscriber_id, status, attempts, "
                "open_count, machine_open_count, click_count, bounce, complained, "
                "unsubscribed, machine_click_count, sent_at) VALUES (:c, :s, 'sent', 1, 0, 0, "
                "0, NULL, false, false, 0, CURRENT_TIMESTAMP)"
            ),
            [{"c": cid, "s": sid} for sid, _ in ids],
        )
    settings = load_settings(database_url=url, secret_key=SECRET, _env_file=None)
    key = tracking_keys(settings)[0]
    db.dispose_engine(url)
    return [make_token(key, cid, sid, link_key) for sid, link_key in ids]


def _serve(url: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_BASE_URL": f"http://127.0.0.1:{port}",
    }
    args = [sys.executable, "-m", "uvicorn", "web.app:create_app", "--factory"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra]
    return subprocess.Popen(args, env=env)


def _wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    """Until uvicorn accepts connections (it migrates and imports first)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("uvicorn did not start")


async def _client(
    port: int, tokens: list[str], rate: float, until: float, latencies: list[float],
    cold: bool = False, late: list[float] | None = None,
    slow: list[float] | None = None,
) -> int:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    interval = 1 / rate if rate else 0.0
    due = time.perf_counter() + random.random() * interval
    errors = 0
    answered = 0.0  # when the previous answer on this connection was read
    while time.perf_counter() < until and (tokens or not cold):
        n = random.randrange(LINKS)
        token = tokens.pop() if cold else random.choice(tokens)  # cold: each reader once
        request = (
            f"GET /r/{token}/{n} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "User-Agent: Mozilla/5.0 (bench) Firefox/128.0\r\n\r\n"
        ).encode()
        if interval:  # open loop: latency counts from when the request was due
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            started, due = due, due + interval
        else:
            started = time.perf_counter()
        written = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await reader.readexactly(length)
        previous, answered = answered, time.perf_counter()
        latencies.append(answered - started)
        if late is not None:
            # How late our own loop wrote it once it could (due, and the connection free
            # of the previous answer): the load generator's share of the wait.
            late.append(written - max(started, previous))
        if slow is not None and answered - started > SLOW:
            slow.append(started)
        if not head.startswith(b"HTTP/1.1 302") or f"/articles/{n}?".encode() not in head:
            errors += 1
    writer.close()
    return errors


async def _load(
    port: int, tokens: list[str], clients: int, rate: float, seconds: float, cold: bool = False
) -> dict:
    latencies: list[float] = []
    late: list[float] = []
    slow: list[float] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    todo = random.sample(tokens, len(tokens)) if cold else tokens
    errors = await asyncio.gather(
        *(
            _client(port, todo, rate / clients, until, latencies, cold, late, slow)
            for _ in range(clients)
        )
    )
    wall = time.perf_counter() - started
    late.sort()
    latencies.sort()

    def pct(p: float, values: list[float] = latencies) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 2)

    return {
        "phase": "first click of each reader (cache cold)" if cold else "clicks (cache warm)",
        "target_rps": rate or "max",
        "requests": len(latencies),
        "rps": round(len(latencies) / wall),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        # The client's own lateness (its loop wrote the request after it could): when this
        # tail is as long as the latency's, the wait is in the load generator.
        "client_late_p99_ms": pct(0.99, late),
        "client_late_max_ms": pct(1.0, late),
        # Requests slower than SLOW, by when they were due within each second (ten bins):
        # a periodic stall (the bulk writer's second, say) piles them into one bin.
        "slow": len(slow),
        "slow_by_tenth_of_second": [
            sum(1 for t in slow if int((t - started) % 1 * 10) == b) for b in range(10)
        ],
        "slow_by_second": [
            sum(1 for t in slow if int(t - started) == b) for b in range(int(seconds) + 1)
        ],
        "errors": sum(errors),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc): the server's own cost, which a
    loaded machine's latency figures hide."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's main thread (uvicorn's event loop), of its other threads
    together (the thread pool; the click writer with ``tracking_writer=thread``) and of its
    child processes (the click writer by default): whose work a request's CPU is.
    Linux /proc/PID/task; Python does not name its threads there."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {"event loop": 0.0, "other threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = "event loop" if task.name == str(pid) else "other threads"
        used[name] += (int(fields[11]) + int(fields[12])) / ticks
    used["writer process"] = sum(_cpu_seconds(child) for child in _children(pid))
    return used


def _children(pid: int) -> list[int]:
    """The server's child processes (the click writer, ``tracking_writer=process``)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [c for c in found if Path(f"/proc/{c}").exists()]


def _clicks(url: str) -> tuple[int, int]:
    """(clicks stored as events, of which machine): what the app has written so far."""
    engine = db.get_engine(url)
    with engine.connect() as conn:
        total, machine = conn.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(CASE WHEN machine THEN 1 ELSE 0 END), 0) "
                "FROM tracking_event WHERE kind = 'clicked'"
            )
        ).one()
    return total, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rates", default="500,1000,0", help="requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--cold-rate", type=float, default=200.0,
        help="first: each reader's first click at this rate (-1: skip)",
    )  # fmt: skip
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--uvicorn", default="", help='more uvicorn options: "--http h11"')
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(args.database_url, Path(tmp), "redirects") as url,
    ):
        tokens = _prepare(url, args.readers)
        port = 18000 + os.getpid() % 1000
        server = _serve(url, port, args.uvicorn.split())
        try:
            _wait_for(port, server)
            results = []
            phases = [(args.cold_rate, True)] if args.cold_rate >= 0 else []
            phases += [(float(r), False) for r in args.rates.split(",")]
            for rate, cold in phases:
                cpu = _cpu_seconds(server.pid)
                threads = _thread_cpu(server.pid)
                result = asyncio.run(
                    _load(
                        port, tokens, args.clients, rate, args.seconds * (10 if cold else 1), cold
                    )
                )
                used = _cpu_seconds(server.pid) - cpu
                result["server_cpu_us_per_request"] = round(used / result["requests"] * 1e6)
                result["server_cpu_s_by_thread"] = {
                    name: round(seconds - threads.get(name, 0.0), 2)
                    for name, seconds in _thread_cpu(server.pid).items()
                }
                results.append(result)
                print(json.dumps(result))
            sent = sum(r["requests"] for r in results)
            started = time.perf_counter()
            while _clicks(url)[0] < sent and time.perf_counter() - started < 120:
                time.sleep(0.1)
            stored, machine = _clicks(url)
            drain = time.perf_counter() - started
            summary = {
                "clicks_sent": sent,
                "clicks_stored": stored,
                "of_which_machine": machine,  # a random reader may hit all links in 2 s
                "drain_seconds_after_load": round(drain, 2),
                "load_avg": os.getloadavg(),
            }
            print(json.dumps(summary))
            if args.json:
                args.json.write_text(json.dumps({"runs": results, **summary}, indent=2))
        finally:
            server.terminate()
            server.wait(timeout=30)
    if any(r["errors"] for r in results) or stored != sent:
        sys.exit(1)


if __name__ == "__main__":
    main()
