"""The outbox provider: one RFC 5322 ``.eml`` file per message in a folder.

The bytes come from the same encoder as SMTP's (``newsletter.mail.MimeTemplate``), so a
file holds exactly what SMTP would carry (CRLF line ends, before dot-stuffing) and a test
or a person can open, parse or replay it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from email.utils import format_datetime, make_msgid
from pathlib import Path

from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from newsletter.clock import utcnow
from newsletter.mail import (
    UNSUBSCRIBE_URL,
    MimeTemplate,
    OutgoingMessage,
    build_mime,
    list_headers,
    personalise,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def personalised_message(content: BulkContent, recipient: Recipient) -> OutgoingMessage:
    """The single message a recipient of a bulk send gets (the preview shows it)."""
    headers = list_headers(
        unsubscribe_url=recipient.values[UNSUBSCRIBE_URL], list_id=content.list_id
    )
    headers.update(content.shared_headers())
    return OutgoingMessage(
        to_email=recipient.email,
        to_name=recipient.name,
        subject=personalise(content.subject_line, recipient.values),
        html=personalise(content.html, recipient.values),
        text=personalise(content.text, recipient.values),
        from_email=content.from_email,
        from_name=content.from_name,
        reply_to=content.reply_to,
        headers=headers,
    )


class OutboxProvider(Provider):
    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._template: tuple[BulkContent, MimeTemplate] | None = None

    def _write(self, stem: str, message_id: str, data: bytes) -> None:
        name = f"{_UNSAFE.sub('_', stem)}-{message_id.split('@')[0]}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)  # a reader never sees half a file

    def send_message(self, message: OutgoingMessage) -> str:
        message_id = make_msgid(domain="outbox.local").strip("<>")
        self._write(message.to_email, message_id, build_mime(message, message_id=message_id))
        return message_id

    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        if self._template is None or self._template[0] is not content:
            self._template = (content, content.mime_template())
        template = self._template[1]
        date = format_datetime(utcnow())
        result = BatchResult()
        for recipient in recipients:
            message_id = make_msgid(domain="outbox.local").strip("<>")
            data = template.render(
                recipient.email, recipient.name, recipient.values, date=date, message_id=message_id
            )
            self._write(f"campaign{content.campaign_id}-{recipient.email}", message_id, data)
            result.accept((recipient.delivery_id,), message_id)
        return result
