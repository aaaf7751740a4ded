"""``/admin/audit``: owners read the log, newest first, in pages; others are refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import audit
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.support.console import EDITOR, OWNER, add_user, console_client, sign_in
from tests.support.subscribers import AppSlot


@pytest.fixture
def site(
    sqlite_settings: Settings, sqlite_engine: Engine, console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    add_user(sqlite_engine, OWNER, Role.owner)
    add_user(sqlite_engine, EDITOR, Role.editor)
    with Session(sqlite_engine) as session:
        for number in range(55):
            audit.record(
                session,
                "api-token:ops",
                "campaign.pause",
                "campaign",
                number,
                before={"status": "scheduled"},
                after={"status": "paused"},
            )
        session.commit()
    with console_client(console_server, sqlite_settings) as client:
        yield client


def test_an_owner_pages_through_the_log_newest_first(site: httpx.Client) -> None:
    sign_in(site, OWNER)
    first = " ".join(site.get("/admin/audit").text.split())
    assert "55 entries, page 1 of 2" in first
    assert "<td>campaign 54</td>" in first and "<td>campaign 4</td>" not in first
    assert "status: scheduled" in first and "api-token:ops" in first
    second = site.get("/admin/audit", params={"page": 2}).text
    assert "<td>campaign 4</td>" in second and "<td>campaign 54</td>" not in second


def test_an_editor_neither_sees_the_log_in_the_nav_nor_reads_it(site: httpx.Client) -> None:
    sign_in(site, EDITOR)
    assert "Audit log" not in site.get("/admin/").text
    assert site.get("/admin/audit").status_code == 403
