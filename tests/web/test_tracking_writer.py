"""web/tracking.py's lifespan: the click writer process lives exactly as long as the app."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from newsletter.settings import Settings
from web.app import create_app


def _gone(pid: int) -> bool:
    """No thread of ``pid`` runs (a zombie leader may outlive its other threads a moment)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return True
    for task in tasks:
        try:
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return False
        except FileNotFoundError:
            continue
    return True


def test_the_writer_process_starts_with_the_app_and_ends_with_it(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"tracking_writer": "process"}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = app.state.tracking.writer_pid()
    assert pid is not None and not _gone(pid), "no writer process once the app serves"
    server.should_exit = True
    thread.join(timeout=60)
    sock.close()
    assert _gone(pid)
