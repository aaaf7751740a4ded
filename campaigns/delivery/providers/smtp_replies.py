"""One message's envelope over SMTP, and what each reply means for its recipient.

The commands (MAIL FROM, RCPT TO, DATA) of RFC 5321, pipelined where the server offers it
(RFC 2920: one write, the replies read in order), and the classification of a reply
(RFC 5321 4.2.1): accepted, bounced (5yz about the recipient), put off (4yz about the
recipient), or a fault of the connection or of our sender, which stops or defers the batch.
"""

from __future__ import annotations

import re
import smtplib

from campaigns.delivery.providers.base import BatchResult
from newsletter.errors import ProviderAuthError

_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20<>]")  # would break out of the SMTP command
_STAGES = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))
LOCAL, MESSAGE = "not sent", "message"  # stages beside the three commands: ours, the end of DATA

Refusal = tuple[str, int, str]  # (stage, SMTP code, the reply's text)
Item = tuple[int, str, bytes, str, str]  # delivery id, address, wire bytes, message id, sender


def envelope(conn: smtplib.SMTP, sender: str, to: str) -> bytes | Refusal:
    """MAIL FROM, RCPT TO and DATA lines, or why they cannot be sent to this server."""
    utf8 = not (sender.isascii() and to.isascii())
    if utf8 and not conn.has_extn("smtputf8"):
        return LOCAL, 553, f"{to} needs SMTPUTF8, which the server lacks"
    if _UNSAFE_ADDRESS.search(sender) or _UNSAFE_ADDRESS.search(to):
        return LOCAL, 553, f"{sender!r} to {to!r} would break the SMTP command"
    option = " SMTPUTF8" if utf8 else ""  # RFC 6531
    return f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode()


def envelope_refusal(
    conn: smtplib.SMTP, commands: bytes, *, pipelined: bool, sent: bool = False
) -> Refusal | None:
    """MAIL, RCPT, DATA; None when the server waits for the message, else the refusal.

    Pipelined (RFC 2920): one write, three replies read in order; ``sent`` when the
    commands already went out behind the previous message.
    """
    if pipelined:
        if not sent:
            conn.send(commands)
        replies = [conn.getreply() for _ in _STAGES]
    else:
        replies = []
        for command, (_stage, expected) in zip(
            commands.splitlines(keepends=True), _STAGES, strict=True
        ):
            conn.send(command)
            replies.append(conn.getreply())
            if replies[-1][0] not in expected:
                break
    refusal = None
    for (stage, expected), (code, reply) in zip(_STAGES, replies, strict=False):
        if code not in expected:
            refusal = (stage, code, reply.decode(errors="replace"))
            break
    if refusal is None:
        return None
    if replies[-1][0] == 354:
        # DATA accepted after a refused RCPT (RFC 2920 says it must not be): end it empty.
        conn.send(b".\r\n")
        conn.getreply()
    else:
        conn.rset()
    return refusal


def record_reply(result: BatchResult, item: Item, refusal: Refusal) -> None:
    """One recipient's answer (RFC 5321 4.2.1), classified by who it is about.

    250: accepted. A 5yz to RCPT, DATA or the message: that recipient bounced; a 4yz
    there: that recipient is deferred alone. 421, or a refusal of MAIL FROM, is about
    the server or our sender: raised (SMTPResponseException) as a connection fault,
    or ProviderAuthError (stop the campaign) for a 5yz to MAIL FROM when nothing of
    the batch was settled yet, else this one is deferred (the batch's retry meets it).
    """
    delivery_id, message_id = item[0], item[3]
    stage, code, text = refusal
    if code == 250:
        result.accept((delivery_id,), message_id)
        return
    if stage == MESSAGE:
        reason = f"{code} {text}"
    elif stage == LOCAL:
        reason = f"{code} not sent: {text}"
    else:
        reason = f"{code} {stage} refused: {text}"
    if code == 421 or (stage == "MAIL FROM" and code < 500):
        raise smtplib.SMTPResponseException(code, reason)
    if (stage == "MAIL FROM" or code in (530, 535)) and not result.settled:
        raise ProviderAuthError(f"the SMTP server refused to go on: {reason}", status=code)
    if stage == "MAIL FROM" or code in (530, 535):
        result.defer((delivery_id,), reason)
    elif stage == LOCAL or not 400 <= code < 600:
        result.reject((delivery_id,), reason)
    elif code >= 500:
        result.bounce(delivery_id, reason, f"{code} {text}")
    else:
        result.postpone(delivery_id, reason)
