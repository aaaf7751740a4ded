"""One uvicorn server per console test module; each test plugs its own app into it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import free_port, live_server
from tests.support.subscribers import AppSlot


@pytest.fixture(scope="module")
def console_server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base
