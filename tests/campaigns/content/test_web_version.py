"""An issue's slug and public web version (campaigns/content/web_version.py)."""

from __future__ import annotations

from campaigns.content.web_version import campaign_id_of, slug, web_html
from campaigns.models import Campaign
from newsletter.mail import placeholder
from newsletter.settings import Settings


def test_a_slug_is_the_id_and_the_subject_in_ascii_words() -> None:
    assert (
        slug(Campaign(id=12, subject="Sciatica: 5 stretches — Ça va?"))
        == "12-sciatica-5-stretches-ca-va"
    )
    assert slug(Campaign(id=3, subject="¡¿!")) == "3"


def test_a_long_subject_is_cut_at_a_word_end_in_the_slug() -> None:
    subject = "Pain Relief Weekly: Four gentle stretches for sciatic leg pain"
    assert slug(Campaign(id=1, subject=subject)) == (
        "1-pain-relief-weekly-four-gentle-stretches-for-sciatic-leg"
    )
    assert slug(Campaign(id=2, subject="x" * 80)) == "2-" + "x" * 60


def test_the_id_is_read_back_from_a_slug_and_nothing_else() -> None:
    assert campaign_id_of("12-sciatica-5-stretches") == 12
    assert campaign_id_of("12") == 12
    for bad in ("0-x", "-1", "x-12", "12x", "12-Caps", "99999999999"):
        assert campaign_id_of(bad) is None, bad


def test_per_reader_links_become_the_sign_up_and_archive_links(
    sqlite_settings: Settings,
) -> None:
    html = (
        f"<p>{placeholder('greeting_html')}</p>"
        f'<a href="{placeholder("unsubscribe_url")}" style="x">Unsubscribe</a> &middot; '
        f'<a href="{placeholder("preferences_url")}">Manage your preferences</a>'
    )
    page = web_html(sqlite_settings, Campaign(id=1, subject="S", html=html))
    base = sqlite_settings.base_url
    assert page.startswith("<p>Hello,</p>")
    assert f'href="{base}/subscribe"' in page and ">Subscribe to Pain Relief Weekly</a>" in page
    assert f'href="{base}/archive/"' in page and ">Past issues</a>" in page
    assert "Unsubscribe" not in page and "[%" not in page
