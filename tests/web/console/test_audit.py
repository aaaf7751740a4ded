"""``/admin/audit``: owners read the log, newest first, in pages; others are refused."""

from __future__ import annotations

import re
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
    assert ">campaign 54</td>" in first and ">campaign 4</td>" not in first
    assert "status:</span> scheduled" in first and "api-token:ops" in first
    second = site.get("/admin/audit", params={"page": 2}).text
    assert ">campaign 4</td>" in second and ">campaign 54</td>" not in second


def test_an_editor_neither_sees_the_log_in_the_nav_nor_reads_it(site: httpx.Client) -> None:
    sign_in(site, EDITOR)
    assert "Audit log" not in site.get("/admin/").text
    assert site.get("/admin/audit").status_code == 403


def test_a_long_value_may_wrap_while_its_name_stays_on_one_line(
    site: httpx.Client, sqlite_engine: Engine
) -> None:
    preheader = "A long preheader that goes on " * 20
    with Session(sqlite_engine) as session:
        audit.record(session, OWNER, "campaign.edit", "campaign", 7, after={"preheader": preheader})
        session.commit()
    sign_in(site, OWNER)
    page = site.get("/admin/audit").text
    assert f'<span class="nowrap">preheader:</span> {preheader}' in page
    spans = re.findall(r'<span class="nowrap">([^<]*)</span>', page)
    assert spans and all(len(text) < 40 for text in spans)  # names only, never free text


def test_a_value_without_spaces_may_break_anywhere(
    site: httpx.Client, sqlite_engine: Engine
) -> None:
    url = "https://blog.example.com/" + "a-very-long-article-path-" * 8
    with Session(sqlite_engine) as session:
        audit.record(session, OWNER, "snippet.create", "snippet", 9, after={"url": url})
        session.commit()
    sign_in(site, OWNER)
    page = site.get("/admin/audit").text
    assert f'<td class="small break"><span class="nowrap">url:</span> {url}</td>' in page
    assert ".break { overflow-wrap: anywhere; }" in site.get("/static/console.css").text
