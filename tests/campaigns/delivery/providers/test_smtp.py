"""The smtp provider against aiosmtpd on 127.0.0.1, with and without DKIM."""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.providers.factory import make_provider
from campaigns.delivery.providers.smtp import SmtpConfig, SmtpProvider
from campaigns.delivery.sending import send_campaign
from campaigns.models import Delivery
from newsletter.errors import ConfigError, HeaderInjection, ProviderUnavailable
from newsletter.mail import OutgoingMessage, personalise
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.delivery import HTML, TEXT, add_subscribers, content, make_campaign, recipient
from tests.support.smtp import LazyPipeliningServer, Sink, free_port, running


@pytest.fixture(params=[False, True], ids=["one-at-a-time", "pipelining"])
def sink(request: pytest.FixtureRequest) -> Iterator[tuple[Sink, int]]:
    """aiosmtpd, once without and once with PIPELINING advertised (both client paths)."""
    handler = Sink(pipelining=request.param)
    with running(handler) as (_controller, port):
        yield handler, port


def provider_for(port: int, **kwargs: object) -> SmtpProvider:
    return SmtpProvider(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), timeout=5, **kwargs)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def test_each_recipient_gets_one_personalised_message(sink):
    handler, port = sink
    batch = [recipient(1, name="Zo\u00eb & Co"), recipient(2, name=None)]
    with provider_for(port) as provider:
        result = provider.send_batch(content(), batch)
    assert len(handler.messages) == 2
    for (_sender, rcpts, data), item in zip(handler.messages, batch, strict=True):
        message = parse(data)
        assert rcpts == [item.email]
        assert message["To"].addresses[0].addr_spec == item.email
        assert message["List-Unsubscribe"] == f"<{item.values['unsubscribe_url']}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"] == "Pain Relief Weekly <weekly.newsletter.example.com>"
        assert message["Message-ID"].strip("<>") == result.accepted[item.delivery_id]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert text.replace("\r\n", "\n") == personalise(TEXT, item.values)
        assert html.replace("\r\n", "\n") == personalise(HTML, item.values)
    assert parse(handler.messages[0][2])["To"].addresses[0].display_name == "Zo\u00eb & Co"


def test_lines_stay_within_the_rfc_limit(sink):
    handler, port = sink
    long_url = "http://127.0.0.1:8000/unsubscribe/" + "x" * 300
    item = recipient(1)
    item = type(item)(
        item.delivery_id,
        item.subscriber_id,
        item.email,
        item.name,
        {**item.values, "unsubscribe_url": long_url},
    )
    with provider_for(port) as provider:
        provider.send_batch(content(), [item])
    _head, _, body = handler.messages[0][2].partition(b"\r\n\r\n")
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert long_url in parse(handler.messages[0][2]).get_body(("plain",)).get_content()


def test_connection_is_reused_across_batches(sink):
    handler, port = sink
    with provider_for(port) as provider:
        provider.send_batch(content(), [recipient(1), recipient(2)])
        provider.send_batch(content(), [recipient(3)])
    assert handler.sessions == 1 and len(handler.messages) == 3


def test_two_recipients_of_one_batch_get_unrelated_message_ids(sink):
    """Each Message-ID has its own random part: a reader's copy tells nothing of another's."""
    _handler, port = sink
    with provider_for(port) as provider:
        result = provider.send_batch(content(), [recipient(1), recipient(2)])
    first, second = (result.accepted[i] for i in (1001, 1002))
    nonce = [m.split("@")[0].rsplit(".", 1)[1] for m in (first, second)]
    assert first.startswith("7.1001.") and second.startswith("7.1002.")
    assert nonce[0] != nonce[1] and all(len(n) == 16 for n in nonce)


def test_permanent_refusal_fails_that_recipient_only(sink):
    handler, port = sink
    handler.refuse["r2@example.com"] = "550 5.1.1 no such user"
    with provider_for(port) as provider:
        result = provider.send_batch(content(), [recipient(1), recipient(2), recipient(3)])
    assert set(result.accepted) == {1001, 1003}
    assert "550" in result.rejected[1002]
    # One message id per message, each the Message-ID its message carries.
    assert not result.request_ids and len(set(result.accepted.values())) == 2


def test_temporary_refusal_defers_that_recipient(sink):
    handler, port = sink
    handler.refuse["r2@example.com"] = "451 4.7.1 try later"
    with provider_for(port) as provider:
        result = provider.send_batch(content(), [recipient(1), recipient(2)])
    assert set(result.accepted) == {1001} and "451" in result.transient[1002]


def test_server_down_is_unavailable():
    with pytest.raises(ProviderUnavailable), provider_for(free_port()) as provider:
        provider.send_batch(content(), [recipient(1)])


def test_dkim_signature_verifies(sink, tmp_path: Path):
    handler, port = sink
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem)
    cfg = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}",
        tmp_path,
        provider="smtp",
        smtp_url=f"smtp://127.0.0.1:{port}",
        dkim_domain="example.com",
        dkim_selector="nl",
        dkim_key_file=key_file,
    )
    with make_provider(cfg) as provider:
        provider.send_batch(content(), [recipient(1, name="Zo\u00eb")])
    data = handler.messages[0][2]
    assert data.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl._domainkey.example.com."
        return record

    assert dkim.verify(data, dnsfunc=dns)
    assert not dkim.verify(data.replace(b"stretches", b"stretched"), dnsfunc=dns)


def test_without_dkim_there_is_no_signature(sink):
    handler, port = sink
    with provider_for(port) as provider:
        provider.send_batch(content(), [recipient(1)])
    assert b"DKIM-Signature" not in handler.messages[0][2]


def test_send_message_delivers_a_transactional_mail(sink):
    handler, port = sink
    message = OutgoingMessage(
        to_email="new@example.com",
        subject="Please confirm",
        html="<p>Hi</p>",
        text="Hi",
        from_email="news@example.com",
    )
    with provider_for(port) as provider:
        message_id = provider.send_message(message)
    assert parse(handler.messages[0][2])["Message-ID"].strip("<>") == message_id


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://u:p%40ss@mail.example.com:587?starttls=1",
            ("mail.example.com", 587, "u", "p@ss", False, True),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", True, False)),
        ("smtp://relay:25", ("relay", 25, None, None, False, False)),
    ],
)
def test_smtp_url_is_parsed(url, expected):
    c = SmtpConfig.parse(url)
    assert (c.host, c.port, c.username, c.password, c.implicit_tls, c.starttls) == expected


def test_bad_smtp_url_names_the_setting():
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_URL"):
        SmtpConfig.parse("http://mail.example.com")


def test_a_campaign_goes_out_through_smtp(sink, sqlite_settings: Settings, sqlite_engine: Engine):
    handler, port = sink
    add_subscribers(sqlite_engine, 250)
    cfg = make_settings(
        sqlite_settings.database_url,
        Path(sqlite_settings.outbox_dir).parent,
        provider="smtp",
        smtp_url=f"smtp://127.0.0.1:{port}",
        base_url="https://news.example.com",  # real mail: one-click links over HTTPS
        send_concurrency=2,
    )
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    assert (report.status, report.sent) == ("sent", 250)
    addresses = sorted(rcpts[0] for _s, rcpts, _d in handler.messages)
    assert addresses == sorted(f"user{i}@example.com" for i in range(1, 251))


def test_a_server_that_answers_only_at_data_gets_every_message_pipelined():
    with (
        LazyPipeliningServer() as server,
        provider_for(server.port) as provider,
    ):
        result = provider.send_batch(content(), [recipient(1), recipient(2), recipient(3)])
    assert set(result.accepted) == {1001, 1002, 1003}
    assert [rcpts for rcpts, _data in server.messages] == [
        ["r1@example.com"],
        ["r2@example.com"],
        ["r3@example.com"],
    ]


def test_a_value_starting_a_line_with_a_dot_arrives_intact(sink):
    handler, port = sink
    item = recipient(1, name=".Ann")
    with provider_for(port) as provider:
        provider.send_batch(content(), [item])
    text = parse(handler.messages[0][2]).get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == personalise(TEXT, item.values)


def test_every_line_ends_in_crlf_and_headers_are_folded(sink):
    handler, port = sink
    name = "Zo\u00eb " * 40
    long_subject = "Pain Relief Weekly: " + "stretches for the lower back " * 12 + "today"
    bulk = replace(content(), subject=long_subject, from_name="Caf\u00e9 " * 30)
    with provider_for(port) as provider:
        provider.send_batch(bulk, [recipient(1, name=name)])
    data = handler.messages[0][2]
    head = data.partition(b"\r\n\r\n")[0]
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert not any(line.endswith(b":") for line in head.split(b"\r\n"))
    assert parse(data)["Subject"] == long_subject
    raw = email.message_from_bytes(data, policy=email.policy.compat32)
    for field, expected in (("To", name), ("From", "Caf\u00e9 " * 30)):
        encoded, _address = parseaddr(raw[field])
        assert str(make_header(decode_header(encoded))) == expected


def test_a_dropped_connection_keeps_the_accepted_and_defers_the_rest(sink):
    handler, port = sink
    handler.drop.add("r3@example.com")
    with provider_for(port) as provider:
        result = provider.send_batch(content(), [recipient(i) for i in range(1, 6)])
    assert set(result.accepted) == {1001, 1002}
    assert set(result.deferred) == {1003, 1004, 1005} and not result.rejected
    assert [rcpts for _s, rcpts, _d in handler.messages] == [["r1@example.com"], ["r2@example.com"]]


def test_a_connection_the_server_closed_while_idle_is_reopened_once():
    handler = Sink(pipelining=True)
    with running(handler) as (controller, port), provider_for(port) as provider:
        provider.send_batch(content(), [recipient(1)])
        handler.close_connections(controller)
        result = provider.send_batch(content(), [recipient(2), recipient(3)])
    assert set(result.accepted) == {1002, 1003}
    assert handler.sessions == 2 and len(handler.messages) == 3


@pytest.mark.parametrize("smtputf8", [False, True], ids=["without-smtputf8", "with-smtputf8"])
def test_an_address_that_needs_smtputf8_is_sent_only_where_the_server_offers_it(smtputf8):
    handler = Sink(pipelining=True)
    batch = [recipient(1), recipient(2, email="j\u00fcrgen@example.com"), recipient(3)]
    with (
        running(handler, enable_SMTPUTF8=smtputf8) as (_controller, port),
        provider_for(port) as provider,
    ):
        result = provider.send_batch(content(), batch)
    if smtputf8:
        assert set(result.accepted) == {1001, 1002, 1003}
        assert "To: Ann <j\u00fcrgen@example.com>\r\n".encode() in handler.messages[1][2]
    else:
        assert set(result.accepted) == {1001, 1003}
        assert "SMTPUTF8" in result.rejected[1002]


def test_a_campaign_records_each_recipient_as_the_server_answered(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    handler = Sink(pipelining=True)
    handler.refuse["user2@example.com"] = "550 5.1.1 no such user"
    handler.defer_once.add("user3@example.com")
    add_subscribers(sqlite_engine, 4)
    with running(handler) as (_controller, port), Session(sqlite_engine) as session:
        cfg = make_settings(
            sqlite_settings.database_url,
            Path(sqlite_settings.outbox_dir).parent,
            provider="smtp",
            smtp_url=f"smtp://127.0.0.1:{port}",
            base_url="https://news.example.com",
            retry_base_seconds=0.01,
            retry_max_seconds=0.05,
        )
        campaign = make_campaign(session)
        report = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
        rows = session.execute(
            sa.select(Delivery.subscriber_id, Delivery.status, Delivery.error, Delivery.attempts)
        ).all()
    assert (report.status, report.sent, report.failed, report.batches) == ("sent", 2, 1, 1)
    assert (report.bounced, report.deferred) == (1, 1)  # issue 15: neither stops the campaign
    by_subscriber = {row[0]: row[1:] for row in rows}
    assert by_subscriber[1] == ("sent", None, 1) and by_subscriber[4] == ("sent", None, 1)
    assert by_subscriber[3][:2] == ("deferred", "451 RCPT TO refused: 4.7.1 greylisted, try again")
    status, error, _attempts = by_subscriber[2]
    assert status == "failed" and error == "550 RCPT TO refused: 5.1.1 no such user"
    delivered = sorted(rcpts[0] for _s, rcpts, _d in handler.messages)
    assert delivered == ["user1@example.com", "user4@example.com"]


def test_a_prepared_batch_is_sent_as_prepared(sink):
    handler, port = sink
    batch = [recipient(1), recipient(2)]
    with provider_for(port) as provider:
        prepared = provider.prepare(content(), batch)
        result = provider.send_prepared(content(), batch, prepared)
    assert set(result.accepted) == {1001, 1002}
    sent_ids = [parse(data)["Message-ID"].strip("<>") for _s, _r, data in handler.messages]
    assert sent_ids == [result.accepted[1001], result.accepted[1002]]


def test_a_preparation_of_other_recipients_is_not_what_is_sent(sink):
    handler, port = sink
    with provider_for(port) as provider:
        prepared = provider.prepare(content(), [recipient(1)])
        result = provider.send_prepared(content(), [recipient(2)], prepared)
    assert set(result.accepted) == {1002}
    assert [rcpts for _s, rcpts, _d in handler.messages] == [["r2@example.com"]]


def test_an_error_found_while_preparing_is_raised_by_the_send(sink):
    """prepare runs on the send loop's thread while a batch is in flight: it must not raise."""
    handler, port = sink
    bad = replace(content(), subject="Weekly\r\nBcc: victim@example.com")
    with provider_for(port) as provider:
        prepared = provider.prepare(bad, [recipient(1)])
        with pytest.raises(HeaderInjection):
            provider.send_prepared(bad, [recipient(1)], prepared)
    assert handler.messages == []
