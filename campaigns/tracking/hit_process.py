"""The hit writer in a process of its own, so the web process only answers redirects.

Why: a flush is Python work (judging, building statements, the driver) of some 40 ms per
500 clicks; in the serving process it holds the GIL while the event loop waits, and about
one redirect in a hundred waited 50-150 ms behind it (bench/README.md, issue 15). Here the
web process hands its hits over a pipe (one pickled list of plain tuples per flush
interval, a millisecond or so for 500 hits) and a child process (a fresh interpreter, never
a ``fork`` of the web process, which has threads) judges and writes them with the same
:class:`~campaigns.tracking.hit_writer.HitWriter`, on its own timer.

Life cycle: the child is started on the first hand-over, which waits until it says it
is ready (its signal handlers set); if it dies, the next hand-over starts
another and sends it the same hits (what the dead one held, at most a burst window and a
flush interval of hits, is lost, as a killed web process loses its buffer). The child
ignores SIGINT and SIGTERM, which a terminal or systemd send to the whole group: it writes
what it holds and ends when the web process closes the pipe, on :meth:`close` or because
the web process died. After three failed starts in a row the web process writes in a
thread of its own instead, and says so in its log.

Pipe messages, web process to child: ``("hits", [tuple, ...])``, ``("flush", everything)``
(answered ``("flushed", count)`` or ``("failed", message)``), ``("close", None)``
(answered ``("closed", count)``).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

from campaigns.tracking.hit_writer import Hit, HitWriter
from newsletter import db
from newsletter.errors import DatabaseError
from newsletter.settings import Settings

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 30.0
START_TIMEOUT_SECONDS = 60.0  # imports on a loaded machine; the hits wait in the buffer
MAX_FAILED_STARTS = 3
EARLY_DEATH_SECONDS = 10.0  # a child that dies sooner than this after its start failed to start


class WriterProcess:
    """The web process's end: hands hits to the child and asks it to flush or close.

    Callers serialise calls (the Recorder's writer lock): the pipe carries one request and
    its answer at a time.
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
        """Send ``hits`` to the child; a dead child is replaced and they go to the new one.

        Raises OSError when no child can be started (the caller keeps the hits).
        """
        message = ("hits", [h.as_tuple() for h in hits])
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.send(message)
                return
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
        """Have the child write everything it holds and end; how many it wrote then."""
        if self._process is None or self._conn is None:
            return 0
        conn, process = self._conn, self._process
        self._conn = self._process = None
        written = 0
        try:
            conn.send(("close", None))
            if conn.poll(CLOSE_TIMEOUT_SECONDS):
                written = int(conn.recv()[1])
        except (OSError, EOFError):
            log.warning("tracking: the click writer process died before it could close")
        finally:
            conn.close()
            _end(process, CLOSE_TIMEOUT_SECONDS)
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
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())], pass_fds=[theirs.fileno()]
            )
        except OSError:
            ours.close()
            self.failed_starts += 1
            raise
        finally:
            theirs.close()  # the child holds its own copy: EOF reaches it when ours closes
        conn = Connection(ours.detach())
        try:  # ready: it ignores the group's signals now, so hits handed over are safe
            conn.send(self.settings)
            if not conn.poll(START_TIMEOUT_SECONDS) or conn.recv()[0] != "ready":
                raise OSError("the click writer process did not start")
        except (OSError, EOFError) as err:
            self.failed_starts += 1
            conn.close()
            _end(process, 0)
            code = process.returncode
            raise OSError(f"the click writer process did not start (exit {code})") from err
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
    conn = Connection(int(argv[0]))
    try:
        settings = conn.recv()
    except EOFError:
        return
    serve(conn, settings)


def serve(conn: Connection, settings: Settings) -> None:
    """The child's loop: take hits, flush what is ready every ``tracking_flush_seconds``
    (sooner at ``tracking_flush_events`` held), answer requests; end on close or EOF."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    writer = HitWriter(db.get_engine(settings.database_url), settings)
    conn.send(("ready", None))
    interval = settings.tracking_flush_seconds
    due = time.monotonic() + interval
    while True:
        try:
            if conn.poll(max(0.0, due - time.monotonic())) and _answer(conn, writer):
                return
        except EOFError:  # the web process is gone: write what we hold, then go
            _flush(writer, everything=True)
            return
        if time.monotonic() >= due or writer.held() >= settings.tracking_flush_events:
            _flush(writer)
            due = time.monotonic() + interval


def _answer(conn: Connection, writer: HitWriter) -> bool:
    """Handle one message; True when the child must end."""
    kind, value = conn.recv()
    if kind == "hits":
        writer.add([Hit(*fields) for fields in value])
    elif kind == "flush":
        try:
            conn.send(("flushed", writer.flush(everything=bool(value))))
        except Exception as err:  # the hits are held again; the web process is told
            conn.send(("failed", str(err).splitlines()[0] if str(err) else type(err).__name__))
    elif kind == "close":
        conn.send(("closed", _flush(writer, everything=True)))
        return True
    return False


def _flush(writer: HitWriter, *, everything: bool = False) -> int:
    try:
        return writer.flush(everything=everything)
    except Exception:  # held again; the next flush retries
        log.exception("tracking: writing clicks and opens failed; retrying")
        return 0


if __name__ == "__main__":
    main(sys.argv[1:])
