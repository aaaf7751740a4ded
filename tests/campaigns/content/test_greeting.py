"""Readers without a name: every newsletter and test copy greets "Hello Jane," or "Hello,".

Issue 13 item 1. Before, the templates said ``Hello, {{ name }}``: a reader with no name
got "Hello, " and nothing, in both parts, through every provider. The greeting is now one
per-recipient value (``[%greeting%]`` / ``[%greeting_html%]``), made beside the name.
Each provider path runs for real: the file outbox, SMTP into aiosmtpd, and SendGrid's
client against tests/support/fake_sendgrid.py (whose substitutions we apply as SendGrid does).
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import sending
from campaigns.delivery.providers.base import Provider, Recipient
from campaigns.delivery.providers.outbox import OutboxProvider
from campaigns.delivery.providers.sendgrid import SendGridProvider
from campaigns.delivery.providers.smtp import SmtpConfig, SmtpProvider
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign
from newsletter.mail import PLACEHOLDER_KEYS, greeting, personal_values, placeholder
from newsletter.settings import Settings
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import API_KEY, add_subscribers, content
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.smtp import Sink, running

# "Hello," then only spaces before the end of a line, the end of the text or a tag.
DANGLING = re.compile(r"Hello,[ \t\u00a0]+(?=<|\r?\n|$)")
NAMED = "user1@example.com"  # named "Reader 1" by add_subscribers
UNNAMED = ("user2@example.com", "user3@example.com", "user4@example.com")  # NULL, "", "  "


@pytest.fixture
def campaign(session: Session, settings: Settings, engine: Engine) -> Campaign:
    add_subscribers(engine, 1, start=1)
    add_subscribers(engine, 3, start=2, name=False)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE subscriber SET name = '' WHERE email = 'user3@example.com'"))
        conn.execute(
            sa.text("UPDATE subscriber SET name = '   ' WHERE email = 'user4@example.com'")
        )
    snippets = [make_snippet(session, settings, title="Calf stretches")]
    campaign = make_campaign(session, snippets, week="2026-W48", subject="Stretch week")
    session.commit()
    return campaign


def check_parts(address: str, text: str, html: str) -> None:
    """Both parts greet the reader naturally: by name, or with "Hello," alone."""
    for part, body in (("text", text), ("html", html)):
        assert not DANGLING.search(body), (address, part)
        assert "Hello, " not in body, (address, part)
        assert "[%" not in body, (address, part)
    if address == NAMED:
        assert "\nHello Reader 1,\n" in text.replace("\r\n", "\n")
        assert ">Hello Reader 1,</p>" in html
    else:
        assert "\nHello,\n" in text.replace("\r\n", "\n")
        assert ">Hello,</p>" in html


def parts(message: EmailMessage) -> tuple[str, str]:
    return (
        message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
        message.get_body(("html",)).get_content(),  # type: ignore[union-attr]
    )


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def send(session: Session, settings: Settings, campaign: Campaign, provider: Provider) -> None:
    assert campaign.id is not None
    report = send_campaign(
        session, settings=settings, campaign_id=campaign.id, provider=provider, preflight=False
    )
    assert report.sent == 4


# ---------------------------------------------------------------- the values


def test_greeting_reads_naturally_with_and_without_a_name() -> None:
    assert greeting("Jane") == "Hello Jane,"
    assert greeting(None) == greeting("") == greeting(" \t\n") == "Hello,"
    assert greeting("Ann\r\nBcc: x") == "Hello Ann Bcc: x,"  # no line break reaches a body
    values = personal_values("Zo\u00eb <&>")
    assert values["greeting_html"] == "Hello Zo\u00eb &lt;&amp;&gt;,"
    assert set(personal_values(None)) | {"unsubscribe_url", "preferences_url"} == set(
        PLACEHOLDER_KEYS
    )


# ---------------------------------------------------------------- every provider


def test_outbox_newsletters_greet_every_reader_naturally(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    send(session, settings, campaign, OutboxProvider(settings.outbox_dir))
    seen = set()
    for path in Path(settings.outbox_dir).glob("campaign*.eml"):
        message = parse(path.read_bytes())
        address = str(message["To"]).rsplit("<", 1)[-1].rstrip(">")
        check_parts(address, *parts(message))
        seen.add(address)
    assert seen == {NAMED, *UNNAMED}


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink(pipelining=True)
    with running(handler) as (_, port):
        yield handler, port


def test_smtp_newsletters_greet_every_reader_naturally(
    session: Session, settings: Settings, campaign: Campaign, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    with SmtpProvider(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), timeout=5) as provider:
        send(session, settings, campaign, provider)
    assert sorted(rcpt for _, (rcpt,), _ in handler.messages) == sorted([NAMED, *UNNAMED])
    for _, (rcpt,), data in handler.messages:
        check_parts(rcpt, *parts(parse(data)))


def sendgrid_copies(fake: FakeSendGrid) -> dict[str, tuple[str, str]]:
    """Address -> (text, html) as SendGrid builds them: each substitution key replaced by
    its value in the content of the request (SendGrid v3 Mail Send, "substitutions")."""
    copies = {}
    for body in fake.requests:
        content = {part["type"]: part["value"] for part in body["content"]}
        for item in body["personalizations"]:
            text, html = content["text/plain"], content["text/html"]
            for key, value in item["substitutions"].items():
                text, html = text.replace(key, value), html.replace(key, value)
            copies[item["to"][0]["email"]] = (text, html)
    return copies


def test_sendgrid_substitutions_carry_the_greeting(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    with FakeSendGrid(API_KEY) as fake:
        provider = SendGridProvider(api_key=API_KEY, api_host=fake.url, timeout=5)
        send(session, settings, campaign, provider)
    personalizations = [p for body in fake.requests for p in body["personalizations"]]
    assert {p["substitutions"][placeholder("greeting")] for p in personalizations} == {
        "Hello Reader 1,",
        "Hello,",
    }
    copies = sendgrid_copies(fake)
    assert set(copies) == {NAMED, *UNNAMED}
    for address, (text, html) in copies.items():
        check_parts(address, text, html)


def test_recipients_made_without_greeting_values_still_get_one(tmp_path: Path) -> None:
    """A Recipient built by hand (only links and name) is greeted like the others."""
    bulk = replace(content(), html="<p>[%greeting_html%]</p>", text="[%greeting%]\n")
    bare = Recipient(1, 1, "a@example.com", None, {"unsubscribe_url": "https://u/1"})
    with FakeSendGrid(API_KEY) as fake:
        SendGridProvider(api_key=API_KEY, api_host=fake.url, timeout=5).send_batch(bulk, [bare])
    assert sendgrid_copies(fake)["a@example.com"] == ("Hello,\n", "<p>Hello,</p>")
    outbox = OutboxProvider(tmp_path)
    outbox.send_batch(bulk, [bare])
    (path,) = tmp_path.glob("*.eml")
    text, html = parts(parse(path.read_bytes()))
    assert (text.strip(), html.strip()) == ("Hello,", "<p>Hello,</p>")


# ---------------------------------------------------------------- test copies


@pytest.mark.parametrize("kind", ["outbox", "smtp", "sendgrid"])
def test_a_test_copy_greets_its_unnamed_reader_naturally(
    session: Session, settings: Settings, campaign: Campaign, kind: str
) -> None:
    assert campaign.id is not None
    to = "marketer@example.com"
    if kind == "outbox":
        sending.test_send(
            session,
            settings=settings,
            campaign_id=campaign.id,
            to_email=to,
            provider=OutboxProvider(settings.outbox_dir),
        )
        (path,) = Path(settings.outbox_dir).glob("campaign*.eml")
        text, html = parts(parse(path.read_bytes()))
    elif kind == "smtp":
        handler = Sink()
        with running(handler) as (_, port):
            config = SmtpConfig.parse(f"smtp://127.0.0.1:{port}")
            with SmtpProvider(config, timeout=5) as provider:
                sending.test_send(
                    session,
                    settings=settings,
                    campaign_id=campaign.id,
                    to_email=to,
                    provider=provider,
                )
        ((_, _, data),) = handler.messages
        text, html = parts(parse(data))
    else:
        with FakeSendGrid(API_KEY) as fake:
            provider = SendGridProvider(api_key=API_KEY, api_host=fake.url, timeout=5)
            sending.test_send(
                session, settings=settings, campaign_id=campaign.id, to_email=to, provider=provider
            )
        text, html = sendgrid_copies(fake)[to]
    check_parts(to, text, html)
