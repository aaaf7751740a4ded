"""Issue 12 point 1: no header or body injection from any user field.

The attacker's sign-up name is an RFC 2047 encoded word that decodes to CR LF, a
``Reply-To:``, a ``Content-Type: text/html``, a blank line and HTML. Input refuses it;
a row stored before that (or by hand) still yields one Reply-To, one Content-Type and
no attacker body, in the outbox and over SMTP (aiosmtpd), parsed by the email package.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import actions
from campaigns.delivery.providers.base import BulkContent
from campaigns.delivery.providers.outbox import OutboxProvider
from campaigns.delivery.providers.sendgrid import SendGridProvider
from campaigns.delivery.providers.smtp import SmtpConfig, SmtpProvider
from campaigns.models import Campaign, CampaignStatus
from newsletter import api_tokens, db
from newsletter.errors import HeaderInjection, InvalidInput
from newsletter.headers import address_header, check_header_text, header_value, shown_alike
from newsletter.mail import MimeTemplate, OutgoingMessage, build_mime, personal_values
from newsletter.settings import Settings, load_settings
from subscribers.addresses import clean_name
from subscribers.emails import confirmation_message
from subscribers.signup import sign_up
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import API_KEY, HTML, TEXT, add_subscribers, content, recipient
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.servers import live_server
from tests.support.smtp import Sink, running
from tests.support.subscribers import AppSlot, make_subscriber, messages, outbox, sqlite_only
from web.app import create_app

ATTACK = (
    "=?utf-8?q?Eve=0D=0AReply-To:_evil@attacker.example=0D=0A"
    "Content-Type:_text/html=0D=0A=0D=0A<h1>PWNED</h1>?="
)
DECODED = "Eve\r\nReply-To: evil@attacker.example\r\nContent-Type: text/html\r\n\r\n<h1>PWNED</h1>"
RAW_BCC = "Eve\r\nBcc: victim@attacker.example"
NEWSLETTER = str(Path(sys.executable).parent / "newsletter")


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def assert_ours(message: EmailMessage, settings: Settings) -> None:
    """One Reply-To (ours or none), one Content-Type, no Bcc, no attacker header or markup
    (the name may be greeted as escaped text: that is data, not a body)."""
    replies = message.get_all("Reply-To") or []
    assert [str(r) for r in replies] in ([], [settings.reply_to])
    assert len(message.get_all("Content-Type") or []) == 1
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_all("Bcc") is None
    leaves = [p for p in message.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in leaves] == ["text/plain", "text/html"]
    assert "<h1>PWNED" not in leaves[1].get_content()
    for name, value in message.items():
        assert "\r" not in str(value) and "\n" not in str(value), name
        assert "attacker" not in str(value), name


# ---------------------------------------------------------------- input refuses


@pytest.mark.parametrize("name", [ATTACK, RAW_BCC, "Eve\nbcc : x@y.example", "=?utf-8?b?RXZl?="])
def test_clean_name_refuses_encoded_words_and_injected_header_lines(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_name(name)
    assert caught.value.field == "name"


def test_a_name_wrapped_over_lines_without_a_field_is_only_collapsed() -> None:
    assert clean_name("Two\nLines") == "Two Lines"


@sqlite_only
@pytest.mark.parametrize("name", [ATTACK, RAW_BCC])
def test_sign_up_refuses_the_name_and_sends_nothing_to_the_outbox(
    session: Session, settings: Settings, name: str
) -> None:
    with pytest.raises(InvalidInput, match="name"):
        sign_up(
            session, settings=settings, mailer=outbox(settings), email="eve@x.example", name=name
        )
    assert messages(settings) == []


@sqlite_only
def test_sign_up_refuses_the_name_and_sends_nothing_over_smtp(
    session: Session, settings: Settings
) -> None:
    handler = Sink()
    with running(handler) as (_controller, port):
        mailer = SmtpProvider(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), timeout=5)
        with pytest.raises(InvalidInput, match="name"):
            sign_up(session, settings=settings, mailer=mailer, email="eve@x.example", name=ATTACK)
        mailer.close()
    assert handler.messages == []


# ---------------------------------------------------------------- stored rows stay harmless


@sqlite_only
@pytest.mark.parametrize("name", [ATTACK, DECODED, RAW_BCC])
def test_a_stored_hostile_name_cannot_shape_the_confirmation(
    session: Session, settings: Settings, tmp_path: Path, name: str
) -> None:
    subscriber = make_subscriber(session, "eve@x.example", status="pending", name=name)
    message = confirmation_message(settings, subscriber)
    outbox(settings).send_message(message)
    [stored] = messages(settings)
    assert_ours(stored, settings)
    handler = Sink()
    with running(handler) as (_controller, port):
        mailer = SmtpProvider(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), timeout=5)
        mailer.send_message(message)
        mailer.close()
    [(_sender, rcpts, data)] = handler.messages
    assert rcpts == ["eve@x.example"]
    assert_ours(parsed(data), settings)


def test_a_stored_raw_bcc_name_never_becomes_a_line_of_an_outbox_newsletter(
    tmp_path: Path,
) -> None:
    bulk = BulkContent(
        campaign_id=1,
        subject="Hello [%name%]",
        html=HTML,
        text=TEXT,
        from_email="news@example.com",
        from_name="Pain Relief Weekly",
        reply_to=None,
        list_id="Pain Relief Weekly <weekly.example.com>",
    )
    reader = recipient(1, name=RAW_BCC)
    reader = dataclasses.replace(reader, values={**reader.values, **personal_values(RAW_BCC)})
    result = OutboxProvider(tmp_path).send_batch(bulk, [reader])
    assert [s.status for s in result.statuses.values()] == ["accepted"]
    [path] = tmp_path.glob("*.eml")
    data = path.read_bytes()
    message = parsed(data)
    assert b"\r\nBcc:" not in data and message.get_all("Bcc") is None
    assert message["To"] == reader.email
    assert message["Subject"] == "Hello Eve Bcc: victim@attacker.example"
    assert len(message.get_all("Content-Type") or []) == 1


# ---------------------------------------------------------------- the header function


def test_the_header_function_refuses_line_breaks_and_encodes_encoded_words() -> None:
    for bad in ("a\r\nBcc: x", "a\nb", "a\rb", "a\x00b", "a\u2028b", "a\x85b", "a\u202eb"):
        with pytest.raises(HeaderInjection, match="Subject"):
            header_value("Subject", bad)
        with pytest.raises(HeaderInjection):
            address_header("To", bad, "a@example.com")
    with pytest.raises(HeaderInjection):
        address_header("To", "Ann", "a@example.com>\r\nBcc: x@y")
    with pytest.raises(HeaderInjection):
        header_value("Bcc: x\r\nSubject", "hi")
    line = header_value("Subject", "=?utf-8?q?x=0D=0ABcc:_y?=")
    assert "=?utf-8?q?" not in line and line.startswith("Subject: =?utf-8?b?")
    assert parsed(f"{line}\r\n\r\n".encode())["Subject"] == "=?utf-8?q?x=0D=0ABcc:_y?="


@hsettings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.text(max_size=60))
def test_any_text_either_is_refused_or_parses_back_as_one_header(subject: str, name: str) -> None:
    try:
        lines = [header_value("Subject", subject), address_header("To", name, "r@example.com")]
    except HeaderInjection:
        return
    data = ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()
    message = parsed(data)
    assert list(message.keys()) == ["Subject", "To"]
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    # Folding may only change whitespace; what a reader sees is the text itself.
    assert " ".join(str(message["Subject"]).split()) == " ".join(subject.split())
    [to] = message["To"].addresses
    assert to.addr_spec == "r@example.com"
    # (the email package puts a space between encoded words of a phrase: compare without)
    assert "".join(to.display_name.split()) == "".join(name.split())


def test_build_mime_refuses_a_hostile_subject_and_header() -> None:
    base = dict(to_email="a@example.com", html="<p>x</p>", text="x", from_email="n@example.com")
    with pytest.raises(HeaderInjection):
        build_mime(OutgoingMessage(subject="Hi\r\nBcc: x@y", **base))  # type: ignore[arg-type]
    with pytest.raises(HeaderInjection):
        build_mime(
            OutgoingMessage(subject="Hi", headers={"List-Id": "a\nBcc: b"}, **base)  # type: ignore[arg-type]
        )
    with pytest.raises(HeaderInjection):
        MimeTemplate(subject="[%name%]\r\nBcc: x", html="", text="", from_email="n@example.com")
    assert check_header_text("Subject", "Plain") == "Plain"


# ---------------------------------------------------------------- the room and the doors


@pytest.mark.parametrize("field", ["subject", "preheader"])
def test_create_from_snippets_refuses_a_control_character(
    session: Session, settings: Settings, field: str
) -> None:
    snippet = make_snippet(session, settings)
    assert snippet.id is not None
    values = {"subject": "Weekly", "preheader": "Two reads", field: "Weekly\r\nBcc: x@y.example"}
    with pytest.raises(InvalidInput) as caught:
        actions.create_from_snippets(
            session, settings=settings, snippet_ids=[snippet.id], actor="test", **values
        )
    assert caught.value.field == field


@pytest.fixture
def api_client(settings: Settings, engine: Engine) -> Iterator[httpx.Client]:
    app_slot = AppSlot()
    app_slot.app = create_app(settings)
    with Session(engine, expire_on_commit=False) as session:
        _, token = api_tokens.create(session, name="ops")
        session.commit()
    with live_server(app_slot) as base:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
            yield client
        deadline = time.monotonic() + 5
        while engine.pool.checkedout() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)


@sqlite_only
@pytest.mark.parametrize("field", ["subject", "preheader"])
def test_the_api_answers_422_for_a_line_break_in_subject_or_preheader(
    api_client: httpx.Client, engine: Engine, field: str
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        snippet = make_snippet(session, Settings(_env_file=None))  # type: ignore[call-arg]
        session.commit()
    body = {"subject": "Weekly", "preheader": "Reads", "snippet_ids": [snippet.id]}
    body[field] = "Weekly\r\nBcc: victim@attacker.example"
    response = api_client.post("/api/campaigns", json=body)
    assert response.status_code == 422
    assert f"field '{field}'" in response.json()["detail"]
    assert api_client.get("/api/campaigns").json() == []


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    values = {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_POSTAL_ADDRESS": "Pain Relief Weekly, 1 Main Street, Springfield",
        "NEWSLETTER_SECRET_KEY": "cli-test-secret-0123456789",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    engine = db.get_engine(values["NEWSLETTER_DATABASE_URL"])
    db.upgrade(engine)
    yield values
    db.dispose_engine(values["NEWSLETTER_DATABASE_URL"])


def test_a_stored_line_break_subject_is_blocked_by_preflight_and_the_cli_exits_1(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The room refuses such a subject; one stored by hand (or before) must neither crash
    a send nor leave the campaign in ``sending``."""
    engine = db.get_engine(cli_env["NEWSLETTER_DATABASE_URL"])
    with Session(engine, expire_on_commit=False) as session:
        snippet = make_snippet(session, load_settings())
        campaign = make_campaign(session, [snippet], subject="Weekly\r\nBcc: victim@x.example")
        session.commit()
    add_subscribers(engine, 2)
    result = subprocess.run(
        [NEWSLETTER, "campaigns", "send", str(campaign.id)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **cli_env},
    )
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "control character" in line
    with Session(engine) as session:
        stored = session.get(Campaign, campaign.id)
        assert stored is not None and stored.status != CampaignStatus.SENDING
    assert not list((tmp_path / "outbox").glob("*.eml"))


# ---------------------------------------------------------------- SendGrid's JSON


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(API_KEY) as server:
        yield server


def sendgrid_for(fake: FakeSendGrid) -> SendGridProvider:
    return SendGridProvider(api_key=API_KEY, api_host=fake.url, timeout=5.0)


def test_sendgrid_gets_no_hostile_name_and_no_hostile_subject(
    fake_sendgrid: FakeSendGrid,
) -> None:
    provider = sendgrid_for(fake_sendgrid)
    reader = recipient(1, name=RAW_BCC)
    reader = dataclasses.replace(reader, values={**reader.values, **personal_values(RAW_BCC)})
    provider.send_batch(content(), [reader])
    [personalization] = fake_sendgrid.requests[0]["personalizations"]
    assert personalization["to"] == [{"email": reader.email}]
    message = OutgoingMessage(
        to_email="eve@x.example",
        to_name=DECODED,
        subject="Hi",
        html="<p>x</p>",
        text="x",
        from_email="news@example.com",
    )
    provider.send_message(message)
    assert fake_sendgrid.requests[1]["personalizations"][0]["to"] == [{"email": "eve@x.example"}]
    for hostile in (
        dataclasses.replace(message, subject="Hi\r\nBcc: x@y.example"),
        dataclasses.replace(message, headers={"List-Id": "x\nBcc: y@z.example"}),
    ):
        with pytest.raises(HeaderInjection):
            provider.send_message(hostile)
    assert len(fake_sendgrid.requests) == 2


def test_subjects_an_inbox_shows_alike_compare_equal() -> None:
    assert shown_alike(" Same\tSubject ") == shown_alike("same subject")
    assert shown_alike("Same subject") != shown_alike("Same subjects")
