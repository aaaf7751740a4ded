"""Issue 15: the rules that tell a machine's open or click from a person's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns.tracking.classify import burst_clicks, open_machine, request_machine

SENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0"


def opened(agent: str | None, *, ip: str | None = "203.0.113.9", after: float = 3600) -> str | None:
    return open_machine(
        method="GET", user_agent=agent, ip=ip, at=SENT + timedelta(seconds=after), sent_at=SENT,
        prefetch_seconds=10,
    )  # fmt: skip


def at(seconds: float) -> datetime:
    return SENT + timedelta(seconds=seconds)


def test_a_mail_client_open_is_a_persons():
    assert opened(THUNDERBIRD) is None


def test_an_open_from_apples_network_is_mail_privacy_protection():
    assert opened(THUNDERBIRD, ip="17.58.101.4") == "Apple Mail Privacy Protection"


def test_an_open_with_the_bare_apple_proxy_agent_is_mail_privacy_protection():
    assert opened("Mozilla/5.0", ip="198.51.100.7") == "Apple Mail Privacy Protection"


def test_googles_image_proxy_right_after_sending_is_a_prefetch():
    assert opened(GMAIL_PROXY, after=4) == "prefetch: Google Image Proxy"


def test_googles_image_proxy_an_hour_later_is_a_reader_opening_gmail():
    assert opened(GMAIL_PROXY, after=3600) is None


def test_head_is_a_machine_whatever_the_agent():
    assert request_machine("HEAD", THUNDERBIRD) == "HEAD request"


def test_scanner_agents_are_machines_in_any_case():
    assert request_machine("GET", "MIMECAST url checker") == "scanner: Mimecast URL protection"
    assert request_machine("GET", "python-requests/2.32") == "scanner: python-requests"
    assert request_machine("GET", THUNDERBIRD) is None


def test_every_link_within_the_window_is_a_burst():
    clicks = [(at(0), 0), (at(0.4), 1), (at(0.9), 2)]
    assert burst_clicks(clicks, link_count=3, window_seconds=2) == {0, 1, 2}


def test_every_link_over_minutes_is_a_reader_reading_the_issue():
    clicks = [(at(0), 0), (at(60), 1), (at(300), 2)]
    assert burst_clicks(clicks, link_count=3, window_seconds=2) == set()


def test_one_link_clicked_twice_quickly_is_no_burst():
    clicks = [(at(0), 0), (at(0.2), 0), (at(0.4), 1)]
    assert burst_clicks(clicks, link_count=3, window_seconds=2) == set()


def test_a_message_with_one_link_never_bursts():
    assert burst_clicks([(at(0), 0)], link_count=1, window_seconds=2) == set()


def test_only_the_clicks_inside_the_burst_are_machine():
    clicks = [(at(0), 1), (at(100), 0), (at(100.5), 1), (at(101), 2)]
    assert burst_clicks(clicks, link_count=3, window_seconds=2) == {1, 2, 3}
