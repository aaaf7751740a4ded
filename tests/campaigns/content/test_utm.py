"""Issue 15: UTM tags on article links."""

from __future__ import annotations

from pathlib import Path

from campaigns.content.utm import UtmTags
from tests.conftest import make_settings

TAGS = UtmTags("newsletter", "email", "2026-W49")
ADDED = "utm_source=newsletter&utm_medium=email&utm_campaign=2026-W49"


def test_a_plain_link_gets_the_three_tags():
    assert TAGS.tag("https://blog.example.com/a") == f"https://blog.example.com/a?{ADDED}"


def test_existing_parameters_are_kept_in_their_order_and_the_tags_follow():
    url = "https://blog.example.com/a?b=2&a=1&q=caf%C3%A9#part"
    assert TAGS.tag(url) == f"https://blog.example.com/a?b=2&a=1&q=caf%C3%A9&{ADDED}#part"


def test_a_tag_the_author_set_is_never_duplicated_or_changed():
    url = "https://blog.example.com/a?utm_source=partner"
    assert TAGS.tag(url) == (
        "https://blog.example.com/a?utm_source=partner&utm_medium=email&utm_campaign=2026-W49"
    )


def test_only_listed_domains_and_their_subdomains_are_tagged():
    tags = UtmTags("newsletter", "email", "w", only_domains=("example.com",))
    assert tags.tag("https://blog.example.com/a").endswith("utm_campaign=w")
    assert tags.tag("https://example.com/a").endswith("utm_campaign=w")
    assert tags.tag("https://notexample.com/a") == "https://notexample.com/a"
    assert tags.tag("https://other.org/a") == "https://other.org/a"


def test_links_that_are_not_http_are_left_alone():
    assert TAGS.tag("mailto:editor@example.com") == "mailto:editor@example.com"


def test_settings_name_the_tags_and_the_week_is_the_default_campaign(tmp_path: Path):
    cfg = make_settings(
        "sqlite://", tmp_path, utm_source="weekly", utm_only_domains="Example.com, blog.test"
    )
    tags = UtmTags.for_campaign(cfg, week="2026-W49", campaign_id=7)
    assert (tags.source, tags.medium, tags.campaign) == ("weekly", "email", "2026-W49")
    assert tags.only_domains == ("example.com", "blog.test")
    assert UtmTags.for_campaign(cfg, week=None, campaign_id=7).campaign == "campaign-7"
