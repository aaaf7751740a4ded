"""The console's webhooks page (web/console/webhooks.py, issue 16 point 4): list, add with
the signing secret shown once, remove after a confirmation, enable, the delivery log; and
the refusals (an editor, a missing CSRF token, a URL the room refuses). SQLite only: the
room is tested on both databases in tests/campaigns/test_outgoing_webhooks.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import outgoing_webhooks
from campaigns.webhook_delivery import deliver_due
from newsletter import audit, db
from newsletter.accounts import Role
from newsletter.clock import utcnow
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookEndpoint, WebhookEvent, emit
from tests.conftest import make_settings
from tests.support.console import EDITOR, OWNER, add_users_cheaply, console_client, csrf_of, sign_in
from tests.support.subscribers import AppSlot
from tests.support.webhook_receiver import webhook_receiver

SECRET = re.compile(r'value="(whsec_[A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    root = tmp_path_factory.mktemp("console-webhooks")
    settings = make_settings(f"sqlite:///{root / 'console.db'}", root, webhook_allow_local=True)
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    add_users_cheaply(engine, {OWNER: Role.owner, EDITOR: Role.editor})
    yield engine, settings
    db.dispose_engine(settings.database_url)


@pytest.fixture(scope="module")
def owner(
    shared: tuple[Engine, Settings], console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    with console_client(console_server, shared[1]) as client:
        sign_in(client, OWNER)
        yield client


def _add(engine: Engine, settings: Settings, url: str) -> int:
    with Session(engine) as session:
        endpoint, _secret = outgoing_webhooks.add_endpoint(
            session, settings=settings, url=url, events=[], actor="test"
        )
        session.commit()
        return endpoint.id


def test_adding_an_endpoint_shows_its_secret_once_lists_it_and_audits_it(
    owner: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    token = csrf_of(owner, "/admin/webhooks")
    added = owner.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "https://hooks.example.com/added",
            "event": ["subscriber.unsubscribed", "campaign.sent"],
        },
    )
    assert added.status_code == 200
    assert added.headers["cache-control"] == "no-store"  # the secret is kept in no cache
    secret = SECRET.search(added.text)
    assert secret is not None
    listed = owner.get("/admin/webhooks").text
    row = listed.split('<td class="url">https://hooks.example.com/added</td>', 1)[1]
    assert row.split("</tr>", 1)[0].count("subscriber.unsubscribed, campaign.sent") == 1
    assert secret.group(1) not in listed
    with Session(shared[0]) as session:
        entry = audit.recent(session, limit=1).entries[0]
    assert (entry.actor, entry.action) == (OWNER, "webhook.add")
    assert secret.group(1) not in str(entry.after)


def test_a_url_the_room_refuses_is_one_line_on_the_page(owner: httpx.Client) -> None:
    token = csrf_of(owner, "/admin/webhooks")
    refused = owner.post("/admin/webhooks", data={"csrf_token": token, "url": "http://x.test/h"})
    assert refused.status_code == 400
    assert "Must be https://" in refused.text and "field &#39;url" not in refused.text
    assert "Traceback" not in refused.text


def test_a_refused_url_draws_the_page_again_with_the_url_and_ticked_events_kept(
    owner: httpx.Client,
) -> None:
    token = csrf_of(owner, "/admin/webhooks")
    form = {"csrf_token": token, "url": "http://x.test/h", "event": ["subscriber.confirmed"]}
    refused = owner.post("/admin/webhooks", data=form)
    assert refused.status_code == 400
    assert 'id="add-error">Must be https://' in refused.text
    assert 'value="http://x.test/h" aria-invalid="true"' in refused.text
    assert 'value="subscriber.confirmed" checked>' in refused.text


def test_remove_is_confirmed_then_the_endpoint_is_gone(
    owner: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    endpoint_id = _add(*shared, "https://hooks.example.com/gone")
    page = owner.get("/admin/webhooks").text
    assert f'<summary aria-label="Remove endpoint {endpoint_id}…">Remove…</summary>' in page
    token = csrf_of(owner, "/admin/webhooks")
    removed = owner.post(f"/admin/webhooks/{endpoint_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert removed.headers["location"] == "/admin/webhooks?done=removed"
    assert "https://hooks.example.com/gone" not in owner.get("/admin/webhooks").text


def test_a_disabled_endpoint_shows_why_and_can_be_enabled(
    owner: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    endpoint_id = _add(engine, settings, "https://hooks.example.com/disabled")
    with Session(engine) as session:
        session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)  # type: ignore[arg-type]
            .values(disabled_at=utcnow(), disabled_reason="failing for 5 days")
        )
        session.commit()
    page = owner.get("/admin/webhooks").text
    assert '<span class="small">failing for 5 days</span>' in page
    token = csrf_of(owner, "/admin/webhooks")
    enabled = owner.post(f"/admin/webhooks/{endpoint_id}/enable", data={"csrf_token": token})
    assert enabled.status_code == 303
    row = owner.get("/admin/webhooks").text.split(f'<tr id="endpoint-{endpoint_id}">')[1]
    assert "badge-active" in row.split("</tr>", 1)[0]


def test_the_delivery_log_shows_each_attempt(
    owner: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    engine, settings = shared
    with webhook_receiver(503) as receiver:
        endpoint_id = _add(engine, settings, receiver.url)
        with Session(engine) as session:
            emit(session, WebhookEvent.CAMPAIGN_SENT, {"campaign_id": 1})
            session.commit()
        deliver_due(engine, settings=settings)
    log = owner.get(f"/admin/webhooks/{endpoint_id}/log")
    assert log.status_code == 200
    row = log.text.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "<td>campaign.sent</td>" in row
    assert ">retrying</span>" in row and "<td>503</td>" in row


def test_an_editor_neither_sees_nor_changes_webhooks(
    owner: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    endpoint_id = _add(*shared, "https://hooks.example.com/kept")
    with httpx.Client(base_url=str(owner.base_url), follow_redirects=False) as editor:
        sign_in(editor, EDITOR)
        assert "/admin/webhooks" not in editor.get("/admin/").text  # not in the nav
        assert editor.get("/admin/webhooks").status_code == 403
        assert editor.get(f"/admin/webhooks/{endpoint_id}/log").status_code == 403
        token = csrf_of(editor, "/admin/")
        for path in ("", f"/{endpoint_id}/remove", f"/{endpoint_id}/enable"):
            response = editor.post(
                f"/admin/webhooks{path}", data={"csrf_token": token, "url": "https://a.test/"}
            )
            assert response.status_code == 403, path


def test_a_post_without_the_csrf_token_is_refused(
    owner: httpx.Client, shared: tuple[Engine, Settings]
) -> None:
    endpoint_id = _add(*shared, "https://hooks.example.com/csrf")
    response = owner.post(f"/admin/webhooks/{endpoint_id}/remove")
    assert response.status_code == 403
    assert "https://hooks.example.com/csrf" in owner.get("/admin/webhooks").text
