"""The SMTP provider's bytes on the wire: the envelope commands and scatter-gather writes.

Kept apart from ``providers.smtp`` (the conversation: connections, replies, outcomes) so
that module stays short.
"""

from __future__ import annotations

import re
import smtplib
import ssl

_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20<>]")  # would break out of the SMTP command
LOCAL, MESSAGE = "not sent", "message"  # stages beside the three commands: ours, the end of DATA
Refusal = tuple[str, int, str]  # (stage, SMTP code, the reply's text)
# delivery id, address, the message as DATA sends it (pieces to write in order), message
# id, envelope sender
Item = tuple[int, str, list[bytes], str, str]
_IOV_MAX = 512  # pieces per sendmsg call; Linux allows 1024


def send_parts(conn: smtplib.SMTP, parts: list[bytes]) -> None:
    """Write ``parts`` in order with scatter-gather writes (``sendmsg``), no joined copy.

    A message is about 40 KB in a few dozen pieces (``MimeTemplate.render_parts``); joining
    them, and again to append the next message's commands, were copies made only to be
    copied into the socket. TLS sockets have no ``sendmsg``: they get one joined write, as
    smtplib's ``send`` does.
    """
    sock = conn.sock
    if sock is None or isinstance(sock, ssl.SSLSocket):
        conn.send(b"".join(parts))
        return
    views = [memoryview(part) for part in parts if part]
    while views:
        sent = sock.sendmsg(views[:_IOV_MAX])
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if sent:
            views[0] = views[0][sent:]


def envelope(conn: smtplib.SMTP, sender: str, to: str) -> bytes | Refusal:
    """MAIL FROM, RCPT TO and DATA lines, or why they cannot be sent to this server."""
    utf8 = not (sender.isascii() and to.isascii())
    if utf8 and not conn.has_extn("smtputf8"):
        return LOCAL, 553, f"{to} needs SMTPUTF8, which the server lacks"
    if _UNSAFE_ADDRESS.search(sender) or _UNSAFE_ADDRESS.search(to):
        return LOCAL, 553, f"{sender!r} to {to!r} would break the SMTP command"
    option = " SMTPUTF8" if utf8 else ""  # RFC 6531
    return f"MAIL FROM:<{sender}>{option}\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode()
