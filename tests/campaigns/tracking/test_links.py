"""Issue 15: tracking tokens, compiling a campaign's links, and who gets plain links."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.content.rendering import render_campaign
from campaigns.delivery import sending
from campaigns.models import CampaignLink
from campaigns.tracking.links import (
    compile_links,
    make_token,
    parse_token,
    stored_links,
    tracking_keys,
    verify,
)
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.content import make_campaign, make_snippet
from tests.support.links import pixel, redirects, sent_issue
from tests.support.subscribers import html_of, messages, messages_to, outbox, sqlite_only, text_of

KEY = "0123456789abcdef0123456789abcdef"


@sqlite_only
def test_a_token_verifies_for_its_reader_and_link_key_only(settings: Settings):
    keys = tracking_keys(settings)
    token = make_token(keys[0], 7, 42, KEY)
    parts = parse_token(token)
    assert parts is not None and (parts.campaign_id, parts.subscriber_id) == (7, 42)
    assert len(token) <= 24  # compact: the whole /r/ link stays short
    assert verify(keys, parts, KEY)
    assert not verify(keys, parts, "f" * 32)  # a new link key (or erasure) kills it
    assert parse_token("7.42.short") is None and parse_token("../../etc") is None


@sqlite_only
def test_a_token_signed_before_a_key_rotation_still_verifies(settings: Settings):
    old = tracking_keys(settings)[0]
    rotated = settings.model_copy(
        update={"secret_key": "a-new-secret-0123456789", "old_secret_keys": [settings.secret_key]}
    )
    parts = parse_token(make_token(old, 7, 42, KEY))
    assert parts is not None and verify(tracking_keys(rotated), parts, KEY)


@sqlite_only
def test_compiling_numbers_the_links_and_leaves_holes_in_both_parts(
    settings: Settings, session: Session
):
    snippets = [make_snippet(session, settings) for _ in range(2)]
    campaign = make_campaign(session, snippets, week="2026-W49")
    render_campaign(session, settings=settings, campaign=campaign)
    compiled = compile_links(session, settings=settings, campaign=campaign)
    assert compiled.tracked
    assert compiled.urls == tuple(
        f"{s.url}?utm_source=newsletter&utm_medium=email&utm_campaign=2026-W49" for s in snippets
    )
    base = settings.base_url
    assert f'href="{base}/r/[%track%]/0"' in compiled.html
    assert f'href="{base}/r/[%track%]/1"' in compiled.html
    assert snippets[0].url not in compiled.html and snippets[0].url not in compiled.text
    assert f"{base}/r/[%track%]/1\n" in compiled.text
    assert compiled.html.index(f'<img src="{base}/o/[%track%]"') < compiled.html.index("</body>")
    assert "[%track%]" not in compiled.plain_html + compiled.plain_text
    assert "utm_source=newsletter&amp;utm_medium" in compiled.plain_html
    assert stored_links(session, campaign.id or 0) == list(compiled.urls)


@sqlite_only
def test_a_resumed_send_keeps_the_numbers_of_the_first_run(settings: Settings, session: Session):
    campaign = make_campaign(session, [make_snippet(session, settings)], week="2026-W49")
    render_campaign(session, settings=settings, campaign=campaign)
    first = compile_links(session, settings=settings, campaign=campaign)
    changed = settings.model_copy(update={"utm_source": "changed-meanwhile"})
    again = compile_links(session, settings=changed, campaign=campaign)
    assert again.urls == first.urls
    rows = session.execute(sa.select(sa.func.count()).select_from(CampaignLink)).scalar_one()
    assert rows == 1


@sqlite_only
def test_a_reader_who_asked_not_to_be_tracked_gets_plain_links_and_no_pixel(
    settings: Settings, session: Session
):
    sent_issue(session, settings, readers=2, links=2, do_not_track=(0,))
    plain = messages_to(settings, "reader0@example.com")[0]
    tracked = messages_to(settings, "reader1@example.com")[0]
    assert redirects(plain) == [] and redirects(plain, html=True) == []
    assert pixel(plain) is None
    assert "utm_source=newsletter" in text_of(plain)
    assert "utm_source=newsletter&amp;utm_medium" in html_of(plain)  # escaped in HTML
    assert len(redirects(tracked)) == 2 and pixel(tracked) is not None


@sqlite_only
def test_a_campaign_switched_off_sends_plain_tagged_links_to_everyone(
    settings: Settings, session: Session
):
    campaign, _ = sent_issue(session, settings, readers=1, links=2, tracking=False)
    message = messages(settings)[0]
    assert redirects(message, html=True) == [] and pixel(message) is None
    assert "utm_campaign=2026-W49" in text_of(message)
    assert stored_links(session, campaign.id or 0) == []


@sqlite_only
def test_tracking_off_for_the_whole_list_sends_plain_links(settings: Settings, session: Session):
    cfg = make_settings(settings.database_url, settings.outbox_dir.parent, tracking=False)
    sent_issue(session, cfg, readers=1, links=1)
    message = messages(cfg)[0]
    assert redirects(message, html=True) == [] and pixel(message) is None


@sqlite_only
def test_a_test_copy_is_never_tracked(settings: Settings, session: Session):
    campaign = make_campaign(session, [make_snippet(session, settings)], week="2026-W49")
    session.commit()
    sending.test_send(
        session, settings=settings, campaign_id=campaign.id or 0, to_email="me@example.com",
        provider=outbox(settings),
    )  # fmt: skip
    message = messages(settings)[0]
    assert redirects(message, html=True) == [] and pixel(message) is None


@sqlite_only
def test_the_send_loops_tokens_are_the_verified_ones(settings: Settings):
    from campaigns.tracking.links import TrackingValues

    fast = TrackingValues(settings, campaign_id=77)
    key = tracking_keys(settings)[0]
    for subscriber_id, link_key in ((1, KEY), (123_456_789, "f" * 32)):
        assert fast.token_bytes(subscriber_id, link_key).decode() == make_token(
            key, 77, subscriber_id, link_key
        )
