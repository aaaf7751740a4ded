"""A private Debian Dovecot on 127.0.0.1 for the bounce mailbox tests, and our DSN samples.

:func:`dovecot` starts ``/usr/sbin/dovecot -F`` with its own configuration in a temporary
folder (runtime dir, state, logs, Maildir), one passwd-file user, plain IMAP with
LOGIN allowed (127.0.0.1 only) on a free port, and stops it at the end. Run as root,
the mail processes take the ``dovecot`` user's uid (Dovecot never gives mail access to
uid 0); otherwise the caller's. :func:`skip_without_dovecot` skips with the reason when
Debian's package is missing (``.ci/run`` installs ``dovecot-imapd``).

Samples in ``tests/support/dsn/`` hold ``{{VERP}}``, ``{{RECIPIENT}}`` and
``{{MESSAGE_ID}}``, filled in by :func:`dsn_sample`.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.smtp import free_port, self_signed

DOVECOT = Path("/usr/sbin/dovecot")
SAMPLES = Path(__file__).parent / "dsn"
USER, PASSWORD = "bounces", "b0unce-pass"
WITHOUT_MOVE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS"


def skip_without_dovecot() -> None:
    if not DOVECOT.exists():
        pytest.skip(
            "Debian's Dovecot (/usr/sbin/dovecot) is not installed: apt-get install dovecot-imapd"
        )


def dsn_sample(name: str, *, verp: str, recipient: str, message_id: str) -> bytes:
    """A sample from tests/support/dsn with its placeholders filled, CRLF line ends."""
    text = (SAMPLES / name).read_text()
    for key, value in (("VERP", verp), ("RECIPIENT", recipient), ("MESSAGE_ID", message_id)):
        text = text.replace("{{" + key + "}}", value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


@dataclass
class Dovecot:
    port: int
    root: Path
    tls_port: int | None = None  # IMAPS (implicit TLS), with a self-signed certificate
    user: str = USER
    password: str = PASSWORD

    def url(self, folder: str = "INBOX") -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/{folder}?starttls=0"

    def tls_url(self, folder: str = "INBOX", *, verify: bool = False) -> str:
        query = "" if verify else "?verify=0"
        return f"imaps://{self.user}:{self.password}@127.0.0.1:{self.tls_port}/{folder}{query}"

    def connect(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        imap = self.connect()
        try:
            imap.append(folder, None, None, raw)
        finally:
            imap.logout()

    def count(self, folder: str) -> int:
        imap = self.connect()
        try:
            status, data = imap.select(folder, readonly=True)
            return int(data[0]) if status == "OK" else 0
        finally:
            imap.logout()


def _config(
    root: Path, port: int, uid: int, gid: int, who: str, tls_port: int, capability: str
) -> str:
    ssl = (
        f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"
        if tls_port
        else "ssl = no"
    )
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {who}
default_internal_group = {who}
default_login_user = {who}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{root}/mail/%u
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@contextmanager
def dovecot(*, tls: bool = False, move: bool = True) -> Iterator[Dovecot]:
    """A running private Dovecot; stopped and its folder removed at the end. ``tls``: also
    IMAPS and STARTTLS with a self-signed certificate for 127.0.0.1; ``move=False``: MOVE
    (RFC 6851) left out of the capabilities it announces, as older servers do.

    Its folder is a fresh one under the system's temporary directory, readable by the mail
    user (pytest's tmp_path is private to root, and Dovecot's processes are not root).
    """
    skip_without_dovecot()
    root = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    who = pwd.getpwnam("dovecot") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    for path in (root, *root.iterdir()):
        shutil.chown(path, who.pw_uid, who.pw_gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port, tls_port = free_port(), free_port() if tls else 0
    if tls:
        self_signed(root)
    conf = root / "dovecot.conf"
    capability = "" if move else f"imap_capability = {WITHOUT_MOVE}"
    conf.write_text(_config(root, port, who.pw_uid, who.pw_gid, who.pw_name, tls_port, capability))
    errors = (root / "stderr.log").open("wb")
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=errors,
        start_new_session=True,
    )
    server = Dovecot(port, root, tls_port or None)
    try:
        _wait_until_up(server, process, root)
        yield server
    finally:
        # Its own process group (start_new_session): the master and its children at once;
        # a graceful stop costs seconds and nothing of it is kept.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        errors.close()
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_up(server: Dovecot, process: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = [root / "stderr.log", root / "dovecot.log"]
            text = " ".join(p.read_text()[-2000:] for p in logs if p.exists())
            raise RuntimeError(f"dovecot exited ({process.returncode}): {text}")
        try:
            server.connect().logout()
            return
        except (OSError, imaplib.IMAP4.error):
            time.sleep(0.05)
    raise RuntimeError("dovecot did not answer within 15 s")
