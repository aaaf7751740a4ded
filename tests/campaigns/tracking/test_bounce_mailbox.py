"""The bounce mailbox over IMAP: TLS both ways against Debian's Dovecot, and its setting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from campaigns.tracking.bounce_mailbox import ImapConfig, Mailbox
from newsletter.errors import ConfigError, FetchFailed
from tests.support.imap import Dovecot, dovecot

NOTE = b"Subject: a note\r\nFrom: ann@example.org\r\n\r\nnot a bounce\r\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    with dovecot(tls=True) as running:
        running.append(NOTE)
        yield running


def read(url: str) -> list[bytes]:
    with Mailbox(ImapConfig.parse(url), processed="Processed") as box:
        return [raw for _uid, raw in box.messages()]


def test_imaps_reads_the_mailbox(server: Dovecot):
    assert [raw.replace(b"\r\n", b"\n") for raw in read(server.tls_url())] == [
        NOTE.replace(b"\r\n", b"\n")
    ]


def test_starttls_reads_the_mailbox(server: Dovecot):
    assert len(read(server.url().replace("starttls=0", "starttls=1&verify=0"))) == 1


def test_an_unverified_certificate_is_one_line(server: Dovecot):
    with pytest.raises(FetchFailed, match="certificate verify failed"):
        read(server.tls_url(verify=True))


def test_a_wrong_password_is_one_line(server: Dovecot):
    with pytest.raises(
        FetchFailed, match=r"^the bounce mailbox 127\.0\.0\.1:\d+: \[AUTHENTICATIONFAILED\]"
    ):
        read(server.tls_url().replace(server.password, "wrong"))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://a:b@mail.example.com/", "must look like imaps://"),
        ("imaps://mail.example.com/INBOX", "needs a user and a password"),
        ("imap://a:b@mail.example.com/INBOX?starttls=0", "in clear"),
    ],
)
def test_an_unusable_url_is_a_config_error(url: str, words: str):
    with pytest.raises(ConfigError, match=words):
        ImapConfig.parse(url)


def test_the_url_gives_folder_and_percent_decoded_login():
    config = ImapConfig.parse("imaps://bounce%40example.com:p%2Fss@mail.example.com/Bounces")
    assert (config.user, config.password, config.folder, config.port) == (
        "bounce@example.com", "p/ss", "Bounces", 993
    )  # fmt: skip


def test_without_move_a_read_message_is_copied_then_expunged():
    with dovecot(move=False) as old:
        old.append(NOTE)
        with Mailbox(ImapConfig.parse(old.url()), processed="Processed") as box:
            uids = [uid for uid, _raw in box.messages()]
            assert not box.moves
            box.done(uids[0])
        assert (old.count("INBOX"), old.count("Processed")) == (0, 1)
