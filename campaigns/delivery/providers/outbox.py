"""The outbox provider: one RFC 5322 ``.eml`` file per message in a folder.

The bytes come from the same encoder as SMTP's (``newsletter.mail.MimeTemplate``), so a
file holds exactly what SMTP would carry (CRLF line ends, before dot-stuffing) and a test
or a person can open, parse or replay it.

A message is written to a temporary name and renamed, so a file is whole or absent; a
write that fails (disk full, quota, permissions) removes its temporary file. In a batch,
every message written is accepted (and so recorded as sent) and the rest are deferred:
the send loop retries them with backoff and, if the folder still refuses, stops the
campaign with the reason in one line; the next run sends only what was never written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from email.utils import format_datetime, make_msgid
from pathlib import Path

from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from newsletter.clock import utcnow
from newsletter.errors import ProviderUnavailable
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
        """Write one message whole or not at all: a failed write leaves no temporary file."""
        name = f"{_UNSAFE.sub('_', stem)}-{message_id.split('@')[0]}.eml"
        tmp = self.folder / f".{name}.tmp"
        try:
            write_file(tmp, data)
            os.replace(tmp, self.folder / name)  # a reader never sees half a file
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _refusal(self, err: OSError) -> str:
        return f"cannot write to the outbox {self.folder}: {err.strerror or err}"

    def send_message(self, message: OutgoingMessage) -> str:
        """Raises ProviderUnavailable when the folder cannot take the file (disk full...)."""
        message_id = make_msgid(domain="outbox.local").strip("<>")
        try:
            self._write(message.to_email, message_id, build_mime(message, message_id=message_id))
        except OSError as err:
            raise ProviderUnavailable(self._refusal(err)) from err
        return message_id

    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        """Every message written is accepted; when a write fails (the disk is full, say)
        that recipient and the rest are deferred, to be retried with backoff."""
        if self._template is None or self._template[0] is not content:
            self._template = (content, content.mime_template())
        template = self._template[1]
        date = format_datetime(utcnow())
        result = BatchResult()
        for index, recipient in enumerate(recipients):
            message_id = make_msgid(domain="outbox.local").strip("<>")
            data = template.render(
                recipient.email, recipient.name, recipient.values, date=date, message_id=message_id
            )
            try:
                self._write(f"campaign{content.campaign_id}-{recipient.email}", message_id, data)
            except OSError as err:
                rest = (r.delivery_id for r in recipients[index:])
                result.defer(rest, self._refusal(err))
                break
            result.accept((recipient.delivery_id,), message_id)
        return result


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (the outbox's one write: a test wraps it)."""
    with open(path, "wb") as file:
        file.write(data)
