"""RFC 5322 messages: what the outbox writes is what SMTP would carry."""

import email
import email.policy
import re
from pathlib import Path

from markupsafe import Markup

from campaigns.delivery.providers.base import BulkContent, Recipient
from campaigns.delivery.providers.outbox import OutboxProvider
from campaigns.delivery.providers.smtp import SmtpConfig, SmtpProvider
from newsletter.mail import (
    GREETING,
    GREETING_HTML,
    HOLE,
    NAME,
    NAME_HTML,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    MimeTemplate,
    OutgoingMessage,
    build_mime,
    inert,
    inert_url,
    personal_values,
    personalise,
    placeholder,
)
from tests.support.delivery import content as bulk
from tests.support.delivery import recipient
from tests.support.smtp import Sink, running


def _message(**overrides: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "to_email": "reader@example.org",
        "to_name": "Ada Reader",
        "subject": "Ease your back this week",
        "html": "<p>Hello</p>",
        "text": "Hello",
        "from_email": "news@example.com",
        "from_name": "Pain Relief Weekly",
        "headers": {"List-Id": "Pain Relief Weekly <weekly.example.com>"},
    }
    values.update(overrides)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def test_mime_uses_crlf_line_ends_only() -> None:
    data = build_mime(_message())
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_mime_is_multipart_alternative_text_then_html() -> None:
    parsed = email.message_from_bytes(build_mime(_message()), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def test_non_ascii_subject_and_name_are_encoded_and_round_trip() -> None:
    data = build_mime(_message(subject="Ischias: Übungen für den Rücken", to_name="Zoë"))
    data.decode("ascii")  # headers are RFC 2047 encoded
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Ischias: Übungen für den Rücken"
    assert parsed["To"].addresses[0].display_name == "Zoë"


def test_personalise_fills_known_placeholders_and_keeps_others() -> None:
    content = f"{placeholder(NAME)} {placeholder(UNSUBSCRIBE_URL)} [%other%]"
    assert personalise(content, {NAME: "Ada", UNSUBSCRIBE_URL: "https://u"}) == (
        "Ada https://u [%other%]"
    )


def test_outbox_writes_one_eml_per_recipient_with_list_headers(tmp_path: Path) -> None:
    outbox = OutboxProvider(tmp_path)
    content = BulkContent(
        campaign_id=7,
        subject="Issue",
        from_email="news@example.com",
        from_name="PRW",
        reply_to=None,
        list_id="PRW <weekly.example.com>",
        html=f"<a href='{placeholder(UNSUBSCRIBE_URL)}'>Hi {placeholder(NAME_HTML)}</a>",
        text=f"Hi {placeholder(NAME)} {placeholder(PREFERENCES_URL)}",
    )
    recipients = [
        Recipient(
            delivery_id=i,
            subscriber_id=i,
            email=f"r{i}@example.org",
            name="A&B",
            values={
                UNSUBSCRIBE_URL: f"https://x/unsubscribe/t{i}",
                NAME: "A&B",
                NAME_HTML: "A&amp;B",
                PREFERENCES_URL: f"https://x/preferences/p{i}",
            },
        )
        for i in (1, 2)
    ]
    result = outbox.send_batch(content, recipients)
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2 and set(result.accepted) == {1, 2}
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == "<https://x/unsubscribe/t1>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Id"] == "PRW <weekly.example.com>"
    assert "A&amp;B" in parsed.get_body(("html",)).get_content()
    assert "Hi A&B https://x/preferences/p1" in parsed.get_body(("plain",)).get_content()


def _unique_parts_blanked(data: bytes) -> bytes:
    """Date, Message-ID and the MIME boundary differ per copy by design; nothing else may."""
    data = re.sub(rb"^Date: [^\r]*\r\n", b"Date: -\r\n", data, flags=re.MULTILINE)
    data = re.sub(rb"^Message-ID: <[^>]*>\r\n", b"Message-ID: -\r\n", data, flags=re.MULTILINE)
    return re.sub(rb"=_nl_[0-9a-f]{32}", b"=_nl_-", data)


def test_the_outbox_writes_byte_for_byte_what_smtp_carries(tmp_path: Path) -> None:
    handler = Sink(pipelining=True)
    batch = [recipient(1, name="Zo\u00eb & Co"), recipient(2, name=".dot")]
    with (
        running(handler) as (_controller, port),
        SmtpProvider(SmtpConfig.parse(f"smtp://127.0.0.1:{port}"), timeout=5) as smtp,
    ):
        smtp.send_batch(bulk(test=True), batch)
    OutboxProvider(tmp_path).send_batch(bulk(test=True), batch)
    files = sorted(tmp_path.glob("*.eml"), key=lambda p: "r2" in p.name)
    carried = [data for _sender, _rcpts, data in handler.messages]
    assert [_unique_parts_blanked(f.read_bytes()) for f in files] == [
        _unique_parts_blanked(data) for data in carried
    ]
    assert b"X-Newsletter-Test: yes\r\n" in carried[0] and b"\r\n..dot" not in carried[1]


def test_greeting_holes_are_filled_from_the_name_when_values_lack_them() -> None:
    """Values made before the greeting keys existed still greet naturally (issue 13)."""
    template = MimeTemplate(
        subject="Issue",
        html=f"<p>{placeholder(GREETING_HTML)}</p>",
        text=f"{placeholder(GREETING)}\n",
        from_email="news@example.com",
    )
    for name, text, html in (
        ("Zo\u00eb <&>", "Hello Zo\u00eb <&>,", "<p>Hello Zo\u00eb &lt;&amp;&gt;,</p>"),
        (None, "Hello,", "<p>Hello,</p>"),
    ):
        data = template.render("r@example.org", name, {}, date="-", message_id="m@x")
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert parsed.get_body(("plain",)).get_content().strip() == text
        assert parsed.get_body(("html",)).get_content().strip() == html


def test_inert_text_keeps_what_a_reader_sees_and_holds_no_placeholder() -> None:
    text = "Ask [%name%] about [%track%], [%draft%] and 5%"
    made = inert(text)
    assert HOLE.search(made) is None
    assert made.replace("\u2060", "") == text


def test_inert_keeps_markup_as_markup() -> None:
    made = inert(Markup("<p>[%greeting_html%]</p>"))
    assert isinstance(made, Markup) and HOLE.search(made) is None


def test_inert_url_percent_encodes_a_placeholder_and_leaves_the_rest() -> None:
    assert inert_url("https://x.example/a/[%unsubscribe_url%]?q=[%b%]") == (
        "https://x.example/a/%5B%25unsubscribe_url%25%5D?q=[%b%]"
    )


def test_inert_text_holds_no_placeholder_in_any_case() -> None:
    made = inert("Tips for [%NAME%], [%Unsubscribe_Url%]")
    assert made.lower() == inert(made.lower())  # a template's lower filter wakes none
    assert HOLE.search(made.lower()) is None


def test_a_readers_name_naming_a_placeholder_stays_text_in_every_value() -> None:
    """SendGrid may substitute within a substituted value: the greeting would carry the
    reader's preferences link (a review's find)."""
    values = personal_values("Ann [%preferences_url%]")
    assert all(HOLE.search(value) is None for value in values.values())
    assert values[GREETING].replace("\u2060", "") == "Hello Ann [%preferences_url%],"
