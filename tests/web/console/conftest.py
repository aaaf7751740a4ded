"""One uvicorn server per console test module; each test plugs its own app into it. A
module defines ``shared`` (its database and settings, the EDITOR user in it); ``editor``
is then a client signed in as EDITOR."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from newsletter.settings import Settings
from tests.support.console import EDITOR, console_client, sign_in
from tests.support.servers import free_port, live_server
from tests.support.subscribers import AppSlot


@pytest.fixture(scope="module")
def console_server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot, free_port()) as base:
        yield slot, base


@pytest.fixture(scope="module")
def editor(
    shared: tuple[Engine, Settings], console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    """A client signed in as EDITOR on the module's ``shared`` database."""
    with console_client(console_server, shared[1]) as client:
        sign_in(client, EDITOR)
        yield client
