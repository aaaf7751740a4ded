"""The request body handed to python_http_client: one buffer, sent as it is, logged as a
summary."""

from __future__ import annotations

import urllib.request

from campaigns.delivery.providers.sendgrid_http import BodyBytes, SerializedBody


def test_body_holds_its_pieces_one_after_the_other():
    body = BodyBytes.of(b'{"a":', memoryview(b"x[1]")[1:], b"}")
    assert bytes(body) == b'{"a":[1]}'


def test_body_of_nothing_is_empty():
    assert bytes(BodyBytes.of()) == b""


def test_body_formats_as_a_summary_never_as_its_bytes():
    body = BodyBytes.of(b'{"personalizations":[]}')
    summary = "<SendGrid mail/send JSON, 23 bytes>"
    assert (f"{body}", str(body), repr(body)) == (summary, summary, summary)


def test_serialized_body_encodes_to_the_very_buffer():
    body = BodyBytes.of(b"{}")
    assert SerializedBody(body).encode("utf-8") is body


def test_urllib_sends_the_body_with_its_length_not_chunked():
    body = BodyBytes.of(b'{"x":', '"\u00e9"}'.encode())
    request = urllib.request.Request("http://127.0.0.1:9/v3/mail/send", data=body)
    opener = urllib.request.build_opener()  # what python_http_client opens with
    handler = next(h for h in opener.handlers if isinstance(h, urllib.request.HTTPHandler))
    handler.do_request_(request)
    headers = request.unredirected_hdrs
    assert headers["Content-length"] == str(len('{"x":"\u00e9"}'.encode()))
    assert "Transfer-encoding" not in headers
