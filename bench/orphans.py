"""A benchmark peer (the fake SendGrid server, the SMTP sink) ends when its harness does.

The harness stops its peers on every way out but one: SIGKILL (a test kills a bench so,
to prove that nothing outlives it). The peer is then re-parented and would serve nobody
for ever; it watches its parent instead. Standard library only, as the peers are.
"""

from __future__ import annotations

import asyncio
import os


async def stop_when_orphaned(stop: asyncio.Event, every: float = 0.5) -> None:
    """Set ``stop`` once this process's parent is no longer the one that started it."""
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        await asyncio.sleep(every)
