"""The sendgrid provider through the real ``sendgrid`` client against our fake API server."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket

import pytest
from python_http_client.exceptions import BadRequestsError
from sendgrid import SendGridAPIClient

from campaigns.delivery.providers.factory import make_provider
from campaigns.delivery.providers.sendgrid import SendGridProvider
from newsletter.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
)
from newsletter.mail import OutgoingMessage
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, HTML, TEXT, content, recipient
from tests.support.fake_sendgrid import FakeSendGrid


def provider_for(fake: FakeSendGrid, **kwargs: object) -> SendGridProvider:
    options: dict = {"api_key": API_KEY, "api_host": fake.url, "timeout": 5.0, **kwargs}
    return SendGridProvider(**options)


def test_batch_goes_as_one_request_with_personal_headers_and_custom_args(fake):
    result = provider_for(fake).send_batch(content(), [recipient(1), recipient(2)])
    assert len(fake.requests) == 1
    body = fake.requests[0]
    assert body["content"] == [
        {"type": "text/plain", "value": TEXT},
        {"type": "text/html", "value": HTML},
    ]
    assert body["headers"] == {
        "List-Id": "Pain Relief Weekly <weekly.newsletter.example.com>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",  # RFC 8058, the same for all
    }
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "r1@example.com", "name": "Ann"}]
    assert first["headers"] == {"List-Unsubscribe": "<http://127.0.0.1:8000/unsubscribe/tok1.x=y>"}
    assert first["custom_args"] == {
        "nl_campaign_id": "7",
        "nl_subscriber_id": "1",
        "nl_delivery_id": "1001",
    }
    assert first["substitutions"]["[%unsubscribe_url%]"].endswith("/unsubscribe/tok1.x=y")
    assert first["substitutions"]["[%name%]"] == "Ann"
    message_id = result.accepted[1001]
    assert message_id and result.accepted == {1001: message_id, 1002: message_id}
    assert result.request_ids  # the X-Message-Id names the request, not one message


def test_custom_args_hold_no_address_or_name(fake):
    provider_for(fake).send_batch(content(), [recipient(1, name="Ann Example")])
    args = fake.requests[0]["personalizations"][0]["custom_args"]
    assert all(k.startswith("nl_") and v.isdigit() for k, v in args.items())


def test_same_address_twice_goes_in_separate_requests(fake):
    batch = [recipient(1, email="a@example.com"), recipient(2, email="A@example.com")]
    result = provider_for(fake).send_batch(content(), batch)
    assert len(fake.requests) == 2
    assert set(result.accepted) == {1001, 1002}


def test_batch_larger_than_batch_size_is_split(fake):
    result = provider_for(fake, batch_size=2).send_batch(
        content(), [recipient(i) for i in range(5)]
    )
    assert [len(r["personalizations"]) for r in fake.requests] == [2, 2, 1]
    assert len(result.accepted) == 5


def test_sandbox_mode_is_requested_when_configured(fake):
    provider_for(fake, sandbox=True).send_batch(content(), [recipient(1)])
    assert fake.requests[0]["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_wrong_key_is_an_auth_error(fake):
    with pytest.raises(ProviderAuthError, match="HTTP 401"):
        provider_for(fake, api_key="SG.wrong").send_batch(content(), [recipient(1)])


def test_403_is_an_auth_error(fake):
    fake.fail_next(403, errors=[{"message": "access forbidden"}])
    with pytest.raises(ProviderAuthError, match="access forbidden"):
        provider_for(fake).send_batch(content(), [recipient(1)])


def test_429_is_unavailable_with_retry_after(fake):
    fake.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(ProviderUnavailable) as caught:
        provider_for(fake).send_batch(content(), [recipient(1)])
    assert caught.value.status == 429 and caught.value.retry_after == 7.0


def test_500_is_unavailable_with_rate_limit_reset(fake):
    import time

    fake.fail_next(500, headers={"X-RateLimit-Reset": str(int(time.time()) + 30)})
    with pytest.raises(ProviderUnavailable) as caught:
        provider_for(fake).send_batch(content(), [recipient(1)])
    assert caught.value.status == 500 and 25 <= caught.value.retry_after <= 31


def test_400_names_the_offending_field(fake):
    fake.fail_next(
        400, errors=[{"message": "Invalid type.", "field": "personalizations.0.custom_args"}]
    )
    with pytest.raises(ProviderRejected, match=r"field 'personalizations.0.custom_args'"):
        provider_for(fake).send_batch(content(), [recipient(1)])


def test_slow_answer_times_out_as_unavailable(fake):
    fake.slow_next(1.5)
    with pytest.raises(ProviderUnavailable, match="cannot reach SendGrid"):
        provider_for(fake, timeout=0.3).send_batch(content(), [recipient(1)])


def test_closed_port_is_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = SendGridProvider(api_key=API_KEY, api_host=f"http://127.0.0.1:{port}", timeout=1)
    with pytest.raises(ProviderUnavailable):
        provider.send_batch(content(), [recipient(1)])


def test_send_message_returns_the_message_id(fake):
    message = OutgoingMessage(
        to_email="new@example.com",
        subject="Please confirm",
        html="<p>Hi</p>",
        text="Hi",
        from_email="news@example.com",
        headers={"X-Kind": "confirm"},
        metadata={"subscriber_id": "5"},
    )
    message_id = provider_for(fake).send_message(message)
    assert message_id
    personalization = fake.requests[0]["personalizations"][0]
    assert personalization == {
        "to": [{"email": "new@example.com"}],
        "headers": {"X-Kind": "confirm"},
        "custom_args": {"nl_subscriber_id": "5"},
    }


def test_test_send_content_is_marked_and_carries_no_ledger_ids(fake):
    provider_for(fake).send_batch(content(test=True), [recipient(0)])
    body = fake.requests[0]
    assert body["subject"].startswith("[TEST] ")
    assert body["headers"]["X-Newsletter-Test"] == "yes"
    assert body["personalizations"][0]["custom_args"] == {"nl_campaign_id": "7"}


def test_fake_refuses_more_than_1000_personalizations(fake):
    client = SendGridAPIClient(api_key=API_KEY, host=fake.url)
    body = {
        "personalizations": [{"to": [{"email": f"p{i}@example.com"}]} for i in range(1001)],
        "from": {"email": "news@example.com"},
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
    }
    with pytest.raises(BadRequestsError) as caught:
        client.send(body)
    assert b"personalizations" in caught.value.body


def test_factory_builds_the_configured_provider(tmp_path):
    cfg = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}",
        tmp_path,
        provider="sendgrid",
        sendgrid_api_key=API_KEY,
        sendgrid_api_host="http://127.0.0.1:9",
    )
    assert isinstance(make_provider(cfg), SendGridProvider)


def test_factory_without_api_key_names_the_setting(tmp_path):
    cfg = make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, provider="sendgrid")
    with pytest.raises(ConfigError, match="NEWSLETTER_SENDGRID_API_KEY"):
        make_provider(cfg)


def test_request_body_goes_as_utf8_json_and_logs_as_a_summary(fake, caplog):
    caplog.set_level(logging.DEBUG, logger="python_http_client.client")
    provider_for(fake).send_batch(content(), [recipient(1, name="Zo\u00eb")])
    assert fake.requests[0]["personalizations"][0]["to"] == [
        {"email": "r1@example.com", "name": "Zo\u00eb"}
    ]
    payloads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("PAYLOAD")]
    assert len(payloads) == 1
    assert re.fullmatch(r"PAYLOAD: <SendGrid mail/send JSON, \d+ bytes>", payloads[0])


def test_content_over_30_mb_is_refused_before_anything_is_posted(fake):
    huge = dataclasses.replace(content(), html="<p>" + "x" * (31 * 1024 * 1024) + "</p>")
    with pytest.raises(ProviderRejected, match="30 MB"):
        provider_for(fake).send_batch(huge, [recipient(1)])
    assert fake.attempts == 0


def test_a_refusal_found_while_preparing_waits_for_the_send_to_be_raised(fake):
    """prepare runs on the send loop's thread and must not raise a provider's refusal."""
    huge = dataclasses.replace(content(), html="<p>" + "x" * (31 * 1024 * 1024) + "</p>")
    provider = provider_for(fake)
    prepared = provider.prepare(huge, [recipient(1)])
    with pytest.raises(ProviderRejected, match="30 MB"):
        provider.send_prepared(huge, [recipient(1)], prepared)


def test_send_prepared_without_a_preparation_prepares_itself(fake):
    result = provider_for(fake).send_prepared(content(), [recipient(1), recipient(2)], None)
    assert set(result.accepted) == {1001, 1002} and len(fake.requests) == 1


def test_a_prepared_batch_is_posted_as_prepared(fake):
    provider = provider_for(fake)
    prepared = provider.prepare(content(), [recipient(1), recipient(2)])
    provider.send_prepared(content(), [recipient(1), recipient(2)], prepared)
    sent = [p["to"][0]["email"] for p in fake.requests[0]["personalizations"]]
    assert sent == ["r1@example.com", "r2@example.com"]


def test_an_empty_batch_posts_nothing(fake):
    result = provider_for(fake).send_batch(content(), [])
    assert result.statuses == {} and fake.attempts == 0


def test_a_preparation_of_other_recipients_is_not_what_is_sent(fake):
    provider = provider_for(fake)
    prepared = provider.prepare(content(), [recipient(1)])
    result = provider.send_prepared(content(), [recipient(2)], prepared)
    assert set(result.accepted) == {1002}
    assert [p["to"][0]["email"] for p in fake.requests[0]["personalizations"]] == ["r2@example.com"]
