"""``newsletter worker``: one sender of queue mode (issue 17), on PostgreSQL.

Parses, calls the room (campaigns.delivery.workers.queue.run_worker), and nothing else.
"""

from __future__ import annotations

import logging

import typer

from cli.context import engine_for, settings


def worker(
    concurrency: int = typer.Option(
        1, "--concurrency", min=1, max=64, help="Blocks this process sends at once."
    ),
    name: str | None = typer.Option(None, "--name", help="A name for logs (default: host:pid)."),
) -> None:
    """Send the blocks of campaigns handed over with NEWSLETTER_SENDER=queue (PostgreSQL)."""
    import os
    import socket

    from campaigns.delivery.workers.queue import conninfo, run_worker

    cfg = settings()
    conninfo(cfg)  # one line (ConfigError) on SQLite
    engine_for(cfg)  # one line when the database is unreachable
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(cfg, concurrency=concurrency, name=name or f"{socket.gethostname()}:{os.getpid()}")
