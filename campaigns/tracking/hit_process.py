"""The hit writer in a process of its own, so the web process only answers redirects.

Why: a flush is Python work (judging, building statements, the driver) of some 40 ms per
500 clicks; in the serving process it holds the GIL while the event loop waits, and about
one redirect in a hundred waited 50-150 ms behind it (bench/README.md, issue 15). Here the
web process hands its hits over a pipe (pickled lists of plain tuples every
``hits.HANDOVER_SECONDS``, about 2 µs a hit) and a child process (a fresh interpreter, never
a ``fork`` of the web process, which has threads) judges and writes them with the same
:class:`~campaigns.tracking.hit_writer.HitWriter`, on its own timer.

Life cycle: the child starts with the app (or on the first hand-over), which waits until
it says it is ready and speaks this code's ``PROTOCOL``; it runs in a process group of its
own and ignores SIGINT and SIGTERM (systemd signals the whole cgroup): it ends when the
web process closes it or dies (EOF), after writing what it holds, retrying a database
that is away for up to ``FINAL_WRITE_SECONDS`` (SIGTERM works again then). The web
process waits ``CLOSE_TIMEOUT_SECONDS`` for that, then leaves it to finish alone and logs
it. A thread of the child reads the pipe, so a hand-over never waits for a database
write. If the child dies, the next hand-over starts another and sends it the hits it did
not take (what the dead one held, at most a burst window and a flush interval of hits,
is lost, as a killed web process loses its buffer). After three early deaths in a row the
web process writes in a thread of its own instead, and says so in its log. A failing
write is one log line every ``WARN_EVERY_SECONDS``: its first line, never SQL or values.

Pipe messages, web process to child: ``("hits", [tuple, ...])``, ``("flush", everything)``
(answered ``("flushed", count)`` or ``("failed", message)``), ``("close", None)``
(answered ``("closed", count)``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

from campaigns.tracking.hit_writer import Hit, HitWriter
from newsletter import db
from newsletter.errors import DatabaseError
from newsletter.settings import Settings

log = logging.getLogger(__name__)

PROTOCOL = 1  # the pipe's messages; a child from other code on disk (a deploy) says another
CLOSE_TIMEOUT_SECONDS = 20.0  # then the child goes on alone: the web process stops on time
START_TIMEOUT_SECONDS = 60.0  # imports on a loaded machine; the hits wait in the buffer
FINAL_WRITE_SECONDS = 120.0  # how long a closing child retries a database that is away
HANDOVER_CHUNK = 1000  # hits per message: a backlog is pickled in pieces, the GIL let go between
MAX_FAILED_STARTS = 3
EARLY_DEATH_SECONDS = 10.0  # a child that dies sooner than this after its start failed to start
NICENESS = 10  # the writer's CPU priority below the web process's (os.nice)
WARN_EVERY_SECONDS = 30.0  # one line per this long while writing fails, not one per flush


class WriterProcess:
    """The web process's end: hands hits to the child and asks it to flush or close.

    Callers serialise calls (the Recorder's writer lock): the pipe carries one request and
    its answer at a time. The child reads the pipe in a thread of its own, so a hand-over
    never waits for a database write.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._started_at = 0.0
        self.failed_starts = 0  # in a row; the Recorder gives up at MAX_FAILED_STARTS

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child now if none is running (raises OSError when it cannot)."""
        self._connection()

    def add(self, hits: Sequence[Hit]) -> None:
        """Send ``hits`` to the child, in chunks; a dead child is replaced and the chunks
        it did not take go to the new one.

        Raises OSError when no child can be started (the caller keeps the hits).
        """
        for start in range(0, len(hits), HANDOVER_CHUNK):
            if start:
                time.sleep(0)  # let the event loop run between two chunks
            message = ("hits", [h.as_tuple() for h in hits[start : start + HANDOVER_CHUNK]])
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    conn.send(message)
                    break
                except OSError:
                    if attempt == 2:
                        raise
                    self._lost()

    def flush(self, *, everything: bool = False) -> int:
        """Ask the child to write what is ready now; how many it wrote.

        Raises DatabaseError when the child could not write (it holds the hits), OSError
        when it died meanwhile.
        """
        conn = self._connection()
        try:
            conn.send(("flush", everything))
            kind, value = conn.recv()
        except (OSError, EOFError) as err:
            self._lost()
            raise OSError("the click writer process died") from err
        if kind == "failed":
            raise DatabaseError(f"writing clicks and opens failed: {value}")
        return int(value)

    def close(self) -> int:
        """Have the child write everything it holds and end; how many it wrote then.

        Waits CLOSE_TIMEOUT_SECONDS at most: a child still waiting for the database then
        goes on alone (it retries for FINAL_WRITE_SECONDS, then ends), and this says so.
        """
        if self._process is None or self._conn is None:
            return 0
        conn, process = self._conn, self._process
        self._conn = self._process = None
        try:
            conn.send(("close", None))
            if not conn.poll(CLOSE_TIMEOUT_SECONDS):
                log.warning(
                    "tracking: the click writer is still writing after %.0f s; it goes on "
                    "alone for up to %.0f s (pid %s)",
                    CLOSE_TIMEOUT_SECONDS, FINAL_WRITE_SECONDS, process.pid,
                )  # fmt: skip
                # Reaped when it ends, by a thread that dies with this process if sooner.
                threading.Thread(target=process.wait, name="writer-reaper", daemon=True).start()
                return 0
            written = int(conn.recv()[1])
        except (OSError, EOFError):
            log.warning("tracking: the click writer process died before it could close")
            written = 0
        finally:
            conn.close()
        _end(process, 5)
        return written

    def _connection(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.poll() is None:
            return self._conn
        if self._conn is not None:
            self._lost()
        return self._start()

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        try:
            # A process group of its own: a terminal's Ctrl-C is for the web process, which
            # then closes the writer in order (systemd still signals the whole cgroup).
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                process_group=0,
            )
        except OSError:
            ours.close()
            self.failed_starts += 1
            raise
        finally:
            theirs.close()  # the child holds its own copy: EOF reaches it when ours closes
        conn = Connection(ours.detach())
        try:  # ready: it ignores signals now, so hits handed over are safe
            conn.send(self.settings)
            if not conn.poll(START_TIMEOUT_SECONDS) or conn.recv() != ("ready", PROTOCOL):
                raise OSError("no ready answer of this version")
        except (OSError, EOFError) as err:
            self.failed_starts += 1
            conn.close()
            _end(process, 0)
            code = process.returncode
            raise OSError(f"the click writer process did not start (exit {code}): {err}") from None
        self._process, self._conn = process, conn
        self._started_at = time.monotonic()
        return conn

    def _lost(self) -> None:
        """Forget a child that died (its held hits with it), counting an early death."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            _end(process, 1)
            code = process.returncode
            early = time.monotonic() - self._started_at < EARLY_DEATH_SECONDS
            self.failed_starts = self.failed_starts + 1 if early else 0
            log.warning("tracking: the click writer process ended (exit %s)", code)


def _end(process: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait ``seconds`` for the child to end, then kill it; never leaves a zombie."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str]) -> None:
    """``python -m campaigns.tracking.hit_process FD``: the child, on the socket ``FD``.

    Its own interpreter (not multiprocessing's spawn, which would import the web
    process's ``__main__`` again); the settings come as the first message.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the web process decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Background work: when the cores are busy, redirects go first (bench/README.md).
    os.nice(NICENESS)
    conn = Connection(int(argv[0]))
    try:
        settings = conn.recv()
    except EOFError:
        return
    serve(conn, settings)


def serve(conn: Connection, settings: Settings) -> None:
    """The child's loop: take hits, flush what is ready every ``tracking_flush_seconds``
    (sooner at ``tracking_flush_events`` held), answer requests; on close or EOF, write
    everything (retrying until FINAL_WRITE_SECONDS) and end."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    writer = _Writer(HitWriter(db.get_engine(settings.database_url), settings))
    inbox: queue.Queue[tuple[str, object]] = queue.Queue()
    threading.Thread(target=_read, args=(conn, inbox), name="pipe-reader", daemon=True).start()
    conn.send(("ready", PROTOCOL))
    interval = settings.tracking_flush_seconds
    due = time.monotonic() + interval
    while True:
        try:
            kind, value = inbox.get(timeout=max(0.0, due - time.monotonic()))
        except queue.Empty:
            kind, value = "", None
        if kind in ("close", "eof"):
            # Ours to finish now: SIGTERM works again (an orphan can be stopped).
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            written = writer.final()
            if kind == "close":
                with contextlib.suppress(OSError):
                    conn.send(("closed", written))
            return
        if kind == "hits":
            writer.hits.add([Hit(*fields) for fields in value])  # type: ignore[attr-defined]
        elif kind == "flush":
            with contextlib.suppress(OSError):
                conn.send(writer.answer(everything=bool(value)))
        if time.monotonic() >= due or writer.hits.held() >= settings.tracking_flush_events:
            writer.flush()
            due = time.monotonic() + interval


def _read(conn: Connection, inbox: queue.Queue[tuple[str, object]]) -> None:
    """The pipe, read as fast as it comes (never behind a database write)."""
    while True:
        try:
            inbox.put(conn.recv())
        except (EOFError, OSError):
            inbox.put(("eof", None))
            return


class _Writer:
    """The HitWriter as the child runs it: failures as one line, now and then."""

    def __init__(self, hits: HitWriter) -> None:
        self.hits = hits
        self._warned_at = -WARN_EVERY_SECONDS

    def flush(self, *, everything: bool = False) -> int:
        try:
            return self.hits.flush(everything=everything)
        except Exception as err:  # held again; the next flush retries
            self._warn(err)
            return 0

    def answer(self, *, everything: bool) -> tuple[str, object]:
        try:
            return ("flushed", self.hits.flush(everything=everything))
        except Exception as err:
            return ("failed", _first_line(err))

    def final(self) -> int:
        """Write everything, retrying a database that is away until FINAL_WRITE_SECONDS."""
        deadline = time.monotonic() + FINAL_WRITE_SECONDS
        written, pause = 0, 0.5
        while True:
            try:
                return written + self.hits.flush(everything=True)
            except Exception as err:
                self._warn(err)
            if time.monotonic() + pause > deadline:
                log.error(
                    "tracking: %d clicks and opens not written: the database stayed away",
                    self.hits.held(),
                )
                return written
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def _warn(self, err: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "tracking: writing %d clicks and opens failed, retrying: %s",
                self.hits.held(), _first_line(err),
            )  # fmt: skip


def _first_line(err: Exception) -> str:
    """The error's first line: a driver's message, never its SQL or parameters."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


if __name__ == "__main__":
    main(sys.argv[1:])
