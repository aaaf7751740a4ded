"""The outbox provider: one RFC 5322 ``.eml`` file per message in a folder.

The bytes are exactly what SMTP would carry (CRLF line ends), so a test or a person can
open, parse or replay them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from email.utils import make_msgid
from pathlib import Path

from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from newsletter.mail import (
    UNSUBSCRIBE_URL,
    OutgoingMessage,
    build_mime,
    list_headers,
    personalise,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def personalised_message(content: BulkContent, recipient: Recipient) -> OutgoingMessage:
    """The single message a recipient of a bulk send gets (also used by SMTP)."""
    headers = list_headers(
        unsubscribe_url=recipient.values[UNSUBSCRIBE_URL], list_id=content.list_id
    )
    if content.test:
        headers["X-Newsletter-Test"] = "yes"
    return OutgoingMessage(
        to_email=recipient.email,
        to_name=recipient.name,
        subject=("[TEST] " if content.test else "") + content.subject,
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

    def _write(self, stem: str, data: bytes) -> str:
        message_id = make_msgid(domain="outbox.local").strip("<>")
        name = f"{_UNSAFE.sub('_', stem)}-{message_id.split('@')[0]}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.folder / name)  # a reader never sees half a file
        return message_id

    def send_message(self, message: OutgoingMessage) -> str:
        return self._write(f"{message.to_email}", build_mime(message))

    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        result = BatchResult()
        for recipient in recipients:
            message = personalised_message(content, recipient)
            stem = f"campaign{content.campaign_id}-{recipient.email}"
            result.message_ids[recipient.delivery_id] = self._write(stem, build_mime(message))
        return result
