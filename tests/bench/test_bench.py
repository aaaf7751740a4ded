"""Smoke tests of the benchmark harness: small sizes, the real pipeline, real peers.

The harness must never report figures it has not verified, so besides the JSON shape
these tests check that the peers really count: a duplicate is seen as one, and a run
that sends to the fake server with the wrong key is not "exactly once".
"""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.fake_sendgrid_server import FakeSendGrid, FakeSendGridProcess
from bench.smtp_sink import SmtpSinkProcess
from newsletter.settings import PROJECT_ROOT

SIZE = 200
STAGE_KEYS = {"assemble", "render", "queue", "send"}


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    chart = out.with_suffix(".png")
    process = subprocess.run(
        [sys.executable, "-m", "bench", "--sizes", str(SIZE), "--json", str(out),
         "--chart", str(chart)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert chart.stat().st_size > 10_000
    assert "sendgrid" in process.stdout and "smtp" in process.stdout
    return json.loads(out.read_text())


def test_bench_writes_one_verified_result_per_provider(sqlite_results: list[dict]) -> None:
    assert [(r["size"], r["provider"], r["database"]) for r in sqlite_results] == [
        (SIZE, "sendgrid", "sqlite"),
        (SIZE, "smtp", "sqlite"),
    ]
    for result in sqlite_results:
        assert result["exactly_once"] is True, result["problems"]
        assert set(result["seconds"]) == STAGE_KEYS
        assert all(value >= 0 for value in result["seconds"].values())
        assert result["recipients_per_second"] > 0
        assert 20 < result["peak_rss_mb"] < 1000
        assert result["queued"] == SIZE


def test_bench_posts_sendgrids_events_back_through_the_webhook(sqlite_results: list[dict]) -> None:
    sendgrid, smtp = sqlite_results
    events = sendgrid["events"]
    assert (events["events"], events["requests"], events["problems"]) == (SIZE, 1, [])
    assert events["events_per_second"] > 0 and events["seconds"] > 0
    assert smtp["events"] is None  # SMTP has no provider events


def test_bench_counts_http_requests_and_smtp_messages(sqlite_results: list[dict]) -> None:
    sendgrid, smtp = sqlite_results
    assert sendgrid["requests"] == 1  # 200 recipients fit in one 1000-personalization request
    assert smtp["requests"] == SIZE  # one message per recipient
    assert smtp["average_request_kb"] > 20  # a realistic issue, not an empty message


def test_fake_sendgrid_counts_a_repeated_address_as_a_duplicate() -> None:
    body = {
        "from": {"email": "news@example.com"},
        "subject": "Weekly",
        "content": [{"type": "text/html", "value": "<p>hi</p>"}],
        "personalizations": [{"to": [{"email": "a@example.com"}]}] * 2,
    }
    with FakeSendGridProcess("KEY") as server:
        request = urllib.request.Request(
            server.url + "/v3/mail/send", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": "Bearer KEY", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            assert response.headers["X-Message-Id"]
        stats = server.stats()
    assert (stats["recipients"], stats["distinct_recipients"], stats["duplicates"]) == (2, 1, 1)


def _mail_send(personalizations: list[dict]) -> bytes:
    return json.dumps({
        "from": {"email": "news@example.com"},
        "subject": "Weekly",
        "content": [{"type": "text/html", "value": "<p>hi</p>"}],
        "personalizations": personalizations,
    }).encode()  # fmt: skip


def _counted(body: bytes) -> FakeSendGrid:
    fake = FakeSendGrid("KEY")
    fake._count(body)
    return fake


def test_fake_sendgrid_counts_an_accepted_body_that_is_not_json_as_invalid() -> None:
    # Passes the outline check made before the 202 (braces, "personalizations"), not the parse.
    counts = _counted(b'{"personalizations": [{"to": [{"email": "a@example.com"}]}],}').counts
    assert (counts.invalid_after_accept, counts.recipients) == (1, 0)
    assert counts.errors == ["body is not a JSON object"]


def test_fake_sendgrid_counts_a_recipient_without_an_address_as_invalid() -> None:
    body = _mail_send([{"to": [{"email": "a@example.com"}]}, {"to": [{"name": "B"}]}])
    counts = _counted(body).counts
    assert (counts.invalid_after_accept, counts.recipients) == (1, 0)
    assert counts.errors == ["personalizations.1.to.email: required"]


def test_fake_sendgrid_counts_every_body_it_parses_not_only_the_first() -> None:
    fake = FakeSendGrid("KEY")
    for address in ("A@example.com", "b@example.com", "a@example.com"):
        fake._count(_mail_send([{"to": [{"email": address}]}]))
    assert (fake.counts.recipients, len(fake.counts.seen), fake.counts.duplicates) == (3, 2, 1)


def test_fake_sendgrid_refuses_a_wrong_key() -> None:
    with FakeSendGridProcess("KEY") as server:
        request = urllib.request.Request(
            server.url + "/v3/mail/send", data=b"{}", method="POST",
            headers={"Authorization": "Bearer WRONG", "Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        raised.value.close()
        assert raised.value.code == 401
        assert server.stats()["rejected"] == 1


def test_smtp_sink_counts_messages_recipients_and_duplicates() -> None:
    message = b"Subject: hi\r\n\r\nline one\r\n..dot-stuffed line\r\n"
    with SmtpSinkProcess() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            client.sendmail("news@example.com", ["a@example.com"], message)
            client.sendmail("news@example.com", ["b@example.com", "a@example.com"], message)
        stats = sink.stats()
    assert stats["messages"] == 2
    assert (stats["recipients"], stats["distinct_recipients"], stats["duplicates"]) == (3, 2, 1)
    assert stats["cpu_seconds"] > 0


def test_bench_rejects_an_unknown_provider() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "bench", "--sizes", "10", "--providers", "pigeon",
         "--json", str(Path("/nonexistent/never-written.json"))],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert process.returncode == 2
    assert "providers are sendgrid, smtp" in process.stderr
