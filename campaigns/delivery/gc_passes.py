"""A send's many short-lived objects, with rare cyclic-GC passes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def fewer_gc_passes(threshold: int = 50_000) -> Iterator[None]:
    """Run a send with rare cyclic-GC passes; restores the interpreter's settings after.

    A batch allocates tens of thousands of small dicts and strings, all freed by
    reference counting. With the default threshold (700) the collector ran every few
    recipients and, through the older generations, kept re-walking every long-lived
    object of the process: 3 µs of 16 per recipient. ``gc.freeze`` parks the objects
    that exist at the start (modules, the ORM's mappers) outside the collector's walks.
    """
    old = gc.get_threshold()
    if old[0] >= threshold:  # another send in this process has it set; it restores
        yield
        return
    gc.freeze()
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
