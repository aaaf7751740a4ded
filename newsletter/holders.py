"""Who holds a lease: ``host:pid:start:random``, and whether that process is gone.

A lease (``newsletter.leases``) names its holder by host, process id and the process's
start time. A holder whose process died on this host (SIGKILL, OOM, a crashed host
restarting) can be replaced at once instead of after the lease expires: the pid names no
process, or a zombie, or a process that started at another time (the kernel reused the
pid). The start time comes from ``/proc/<pid>/stat`` (proc(5), field 22: clock ticks
after boot). Holders on other hosts are never judged: we cannot see their processes.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Holder", "dead_on_this_host", "instance_id", "process_start"]


def instance_id() -> str:
    """``host:pid:start:random``: unique across restarts and hosts, readable in logs.

    ``start`` is when this process started (:func:`process_start`; 0 where /proc is
    missing), so that a pid the kernel has since given to another process is not taken
    for the holder (:func:`dead_on_this_host`).
    """
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or 0}:{uuid.uuid4().hex[:6]}"


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of process ``pid`` from ``/proc/<pid>/stat`` (proc(5): fields 3
    and 22, the start in clock ticks after boot); None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[19])


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks after boot; None without /proc or process."""
    if not _HAS_PROC:
        return None
    stat = _stat(pid)
    return stat[1] if stat else None


_HAS_PROC = Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class Holder:
    """A holder string taken apart: host, pid and (when recorded) the process start."""

    host: str
    pid: int
    started: int | None

    @classmethod
    def parse(cls, holder: str) -> Holder | None:
        """``host:pid:start:random`` (or ``host:pid:random`` from before start times were
        recorded); None for anything else, which is never taken for dead."""
        parts = holder.split(":")
        if len(parts) not in (3, 4) or not parts[1].isdigit():
            return None
        start = parts[2] if len(parts) == 4 else ""
        started = int(start) if start.isdigit() and int(start) > 0 else None
        return cls(parts[0], int(parts[1]), started)

    def alive(self) -> bool:
        """Whether the holder's process still runs (asked on the holder's host only)."""
        if not _HAS_PROC:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        stat = _stat(self.pid)
        if stat is None or stat[0] in ("Z", "X"):  # gone, or killed and not yet reaped
            return False
        return self.started is None or stat[1] == self.started  # else the pid was reused


def dead_on_this_host(holder: str) -> bool:
    """True when ``holder`` (from :func:`instance_id`) names a gone process of this host.

    Gone: no process with its pid, a zombie, or a process with its pid that started at
    another time than the holder (the kernel reused the pid). Lets a restarted instance
    or sender take over from its killed predecessor at once rather than wait for the
    lease to expire; holders on other hosts always wait for expiry (we cannot see their
    processes).
    """
    parsed = Holder.parse(holder)
    if parsed is None or parsed.host != socket.gethostname():
        return False
    return not parsed.alive()
