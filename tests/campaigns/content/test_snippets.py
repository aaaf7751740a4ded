"""The snippet library: validation, trimming, CRUD and the sent-in listing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from campaigns.content.snippets import (
    UpsertOutcome,
    canonical_url,
    delete_snippet,
    get_snippet,
    list_snippets,
    optional_http_url,
    optional_image_url,
    trim_text,
    update_snippet,
    upsert_snippet,
)
from campaigns.models import CampaignStatus, Snippet
from newsletter.errors import InvalidInput, NotFound, StateError
from newsletter.settings import Settings
from tests.support.content import make_campaign, make_snippet


def test_trim_text_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    assert trim_text("one two three four", 12) == "one two…"


def test_trim_text_never_exceeds_the_limit() -> None:
    text = "lorem ipsum dolor sit amet " * 40
    for limit in (40, 41, 57, 100, 280):
        assert len(trim_text(text, limit)) <= limit


def test_trim_text_leaves_short_text_alone_but_collapses_whitespace() -> None:
    assert trim_text("  short \n text  ", 50) == "short text"


def test_trim_text_cuts_inside_one_giant_word() -> None:
    assert trim_text("x" * 100, 10) == "x" * 9 + "…"


def test_canonical_url_drops_fragment_and_tracking_parameters() -> None:
    url = "HTTPS://Blog.Example.com/a?utm_source=rss&id=3#top"
    assert canonical_url(url) == "https://blog.example.com/a?id=3"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "ftp://x.org/a", ""])
def test_canonical_url_refuses_anything_but_absolute_http(url: str) -> None:
    with pytest.raises(InvalidInput, match="field 'url'"):
        canonical_url(url)


def test_add_snippet_trims_the_summary_to_the_setting(session: Session, settings: Settings) -> None:
    cfg = settings.model_copy(update={"summary_max_chars": 60})
    snippet = make_snippet(session, cfg, summary="word " * 50)
    assert len(snippet.summary) <= 60
    assert snippet.summary.endswith("…")


def test_add_snippet_turns_the_category_into_a_slug(session: Session, settings: Settings) -> None:
    snippet = make_snippet(session, settings, category="Back Pain")
    assert snippet.category == "back-pain"


def test_add_snippet_refuses_a_url_already_in_the_library(
    session: Session, settings: Settings
) -> None:
    first = make_snippet(session, settings, url="https://blog.example.com/same")
    with pytest.raises(InvalidInput, match=f"snippet {first.id} already has this URL"):
        make_snippet(session, settings, url="https://blog.example.com/same#again")


def test_add_snippet_refuses_a_javascript_image_url(session: Session, settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="field 'image_url'"):
        make_snippet(session, settings, image_url="javascript:alert(1)")


@pytest.mark.parametrize(
    "url",
    [
        "https://img.example *; frame-src *;/x.png",  # would add a CSP directive
        "https://img.example\n;script-src */x.png",
        "https://img.example\x00/x.png",
        "https://img_example;/x.png",
        "https://-img.example/x.png",
        "https://img.example:99999/x.png",
    ],
)
def test_an_image_url_with_a_bad_host_is_refused_in_one_line_naming_the_field(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"^field 'image_url': ") as refused:
        optional_http_url(url, field_name="image_url")
    assert "\n" not in str(refused.value)


def test_an_image_url_on_an_idna_host_or_ip_address_is_kept() -> None:
    for url in ("https://bücher.example/a.png", "http://192.0.2.7:8080/a.png", "https://[::1]/a"):
        assert optional_http_url(url, field_name="image_url") == url


def test_add_snippet_refuses_an_image_url_that_would_rewrite_a_csp(
    session: Session, settings: Settings
) -> None:
    with pytest.raises(InvalidInput, match="field 'image_url'"):
        make_snippet(session, settings, image_url="https://img.example *; frame-src *;/x.png")


def test_upsert_reports_created_then_unchanged_then_updated(
    session: Session, settings: Settings
) -> None:
    data = {
        "title": "T",
        "summary": "S",
        "url": "https://blog.example.com/u",
        "published_at": "2026-11-02T10:00:00+00:00",
    }
    outcomes = [
        upsert_snippet(session, settings=settings, data=data)[1],
        upsert_snippet(session, settings=settings, data=data)[1],
        upsert_snippet(session, settings=settings, data={**data, "title": "T2"})[1],
    ]
    assert outcomes == [UpsertOutcome.CREATED, UpsertOutcome.UNCHANGED, UpsertOutcome.UPDATED]
    assert len(session.exec(select(Snippet)).all()) == 1


def test_update_snippet_changes_and_validates_fields(session: Session, settings: Settings) -> None:
    snippet = make_snippet(session, settings)
    update_snippet(session, settings=settings, snippet_id=snippet.id, changes={"title": "New"})
    assert get_snippet(session, snippet_id=snippet.id).title == "New"
    with pytest.raises(InvalidInput, match="field 'url'"):
        update_snippet(
            session, settings=settings, snippet_id=snippet.id, changes={"url": "javascript:x"}
        )


def test_delete_snippet_refuses_one_a_campaign_used(session: Session, settings: Settings) -> None:
    snippet = make_snippet(session, settings)
    make_campaign(session, [snippet])
    with pytest.raises(StateError, match="part of campaign"):
        delete_snippet(session, snippet_id=snippet.id)


def test_delete_snippet_removes_an_unused_one(session: Session, settings: Settings) -> None:
    snippet = make_snippet(session, settings)
    delete_snippet(session, snippet_id=snippet.id)
    with pytest.raises(NotFound):
        get_snippet(session, snippet_id=snippet.id)


def test_list_shows_which_campaign_sent_a_snippet(session: Session, settings: Settings) -> None:
    sent = make_snippet(session, settings)
    fresh = make_snippet(session, settings)
    campaign = make_campaign(session, [sent], week="2026-W45", status=CampaignStatus.SENT)
    listing = {item.snippet.id: item.to_dict() for item in list_snippets(session)}
    assert listing[sent.id]["sent"] is True
    assert listing[sent.id]["campaigns"] == [
        {"id": campaign.id, "week": "2026-W45", "status": "sent", "resent": False}
    ]
    assert listing[fresh.id]["sent"] is False
    assert listing[fresh.id]["campaigns"] == []


def test_list_is_freshest_first(session: Session, settings: Settings) -> None:
    older = make_snippet(session, settings, published_at="2026-10-01T00:00:00+00:00")
    newer = make_snippet(session, settings, published_at="2026-11-01T00:00:00+00:00")
    assert [i.snippet.id for i in list_snippets(session)] == [newer.id, older.id]


def test_a_snippet_link_naming_a_readers_placeholder_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"^field 'url': .*\[%unsubscribe_url%\]"):
        canonical_url("https://blog.example.com/a/[%unsubscribe_url%]")


def test_an_image_url_naming_a_readers_placeholder_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"^field 'image_url': .*\[%name%\]"):
        optional_http_url("https://img.example.com/p.png?who=[%name%]", field_name="image_url")


def test_a_link_with_brackets_or_percents_that_name_no_placeholder_is_kept() -> None:
    assert canonical_url("https://blog.example.com/a/[%draft%]") == (
        "https://blog.example.com/a/[%draft%]"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://blog.example.com/a/[%UNSUBSCRIBE_URL%]",  # any case: a filter may lower it
        "https://user[::1]:[%NAME%]@evil.example/a",  # live only once the host is lowered
    ],
)
def test_a_placeholder_in_a_link_is_refused_in_any_case_and_as_stored(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"^field 'url': .* which is filled per reader"):
        canonical_url(url)


def test_an_image_on_our_site_naming_a_placeholder_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^field 'image_url': .*\[%unsubscribe_url%\]"):
        optional_image_url("/static/content/a.jpg?u=[%unsubscribe_url%]", field_name="image_url")


def test_a_link_urlsplit_cannot_read_is_one_line_naming_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"^field 'url': .* is not a valid URL$"):
        canonical_url("https://[%name%]@blog.example.com/b")


def test_a_placeholder_in_a_links_query_is_refused_not_stored_encoded() -> None:
    """A review found it saved as %5B%25unsubscribe_url%25%5D: a broken link, no word."""
    with pytest.raises(InvalidInput, match=r"^field 'url': .*\[%unsubscribe_url%\]"):
        canonical_url("https://blog.example.com/a?u=[%unsubscribe_url%]")
