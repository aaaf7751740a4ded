"""Does every image of an issue load and every link open? Asked the way a mail client would.

Preflight used to check only that URLs were absolute http(s): an image on a host that
does not resolve passed, and the reader saw alt text in a hole. This fetches each URL
once, bounded on every side so a send is never held up for long:

- only absolute http(s) URLs (a placeholder such as ``[%unsubscribe_url%]`` is ours);
- HEAD first; GET (reading one byte) when HEAD answers an HTTP error or breaks, because
  some servers and CDNs refuse or mishandle HEAD (RFC 9110 9.3.2 makes it optional to
  serve well); redirects are followed, at most five, to http(s) only;
- ``timeout`` per request, at most ``concurrency`` requests at once, one ``deadline`` for
  all of them: what has not answered by then is reported as not checked, and its
  (daemon) thread is left to end at its own timeout.

An image is broken unless it answers 2xx with an ``image/*`` Content-Type (when it names
one: a login page answering 200 is no picture); a link unless it answers 2xx.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "newsletter-pipeline/0.1 (+preflight link check)"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class UrlCheck:
    """What became of one URL: ``ok``, or ``reason`` in words ("HTTP 404", ...);
    ``checked`` is False when the deadline ran out before it answered."""

    url: str
    image: bool
    ok: bool
    reason: str = ""
    checked: bool = True


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Follow at most MAX_REDIRECTS redirects, to http(s) only, keeping the method."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.URLError(f"redirects to {newurl!r}, which is not http(s)")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.method = req.get_method()  # urllib turns a redirected HEAD into a GET
        return new


_OPENER = urllib.request.build_opener(_HttpRedirects)


class _Failed(Exception):
    """Why a request failed; ``retry``: GET may succeed where HEAD did not (an HTTP error
    status, a broken answer), unlike a host that does not resolve or answer."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def _request(url: str, method: str, timeout: float) -> str:
    """The Content-Type of a 2xx answer ("" if none); raises _Failed for anything else."""
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if method == "GET":
                response.read(1)  # the status line and headers are all we need
            headers = response.headers
            return headers.get_content_type() if headers["Content-Type"] else ""
    except urllib.error.HTTPError as err:
        err.close()
        raise _Failed(f"HTTP {err.code} {err.reason}".rstrip(), retry=True) from err
    except http.client.HTTPException as err:  # e.g. a server that hangs up on HEAD
        raise _Failed(f"a broken HTTP answer ({type(err).__name__})", retry=True) from err
    except urllib.error.URLError as err:
        raise _Failed(_network_reason(err.reason, timeout), retry=False) from err
    except OSError as err:  # TimeoutError and connection errors while reading
        raise _Failed(_network_reason(err, timeout), retry=False) from err


def _network_reason(reason: object, timeout: float) -> str:
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed: {getattr(reason, 'reason', None) or reason}"
    return str(reason)


def check_url(url: str, *, image: bool, timeout: float) -> UrlCheck:
    """One URL, HEAD then (if that may help) GET; never raises."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return UrlCheck(url, image, False, "not an http(s) URL")
    try:
        try:
            content_type = _request(url, "HEAD", timeout)
        except _Failed as err:
            if not err.retry:
                raise
            content_type = _request(url, "GET", timeout)
    except _Failed as err:
        return UrlCheck(url, image, False, err.reason)
    if image and content_type and not content_type.startswith("image/"):
        return UrlCheck(url, image, False, f"it is {content_type}, not an image")
    return UrlCheck(url, image, True)


def check_urls(
    urls: Mapping[str, bool], *, timeout: float, concurrency: int, deadline: float
) -> list[UrlCheck]:
    """Check ``urls`` (URL -> is an image), in their order; within ``deadline`` seconds.

    Runs ``concurrency`` daemon threads; each request's timeout is cut to what is left
    of the deadline. URLs not answered in time come back with ``checked=False``.
    """
    pending = list(urls)
    results: dict[str, UrlCheck] = {}
    lock = threading.Lock()
    ends = time.monotonic() + deadline

    def work() -> None:
        while True:
            with lock:
                left = ends - time.monotonic()
                if not pending or left <= 0:
                    return
                url = pending.pop(0)
            result = check_url(url, image=urls[url], timeout=min(timeout, left))
            if not result.ok and left < timeout and time.monotonic() >= ends:
                continue  # cut short by the deadline, not by the server's own timeout
            with lock:
                results[url] = result

    threads = [
        threading.Thread(target=work, name="preflight-fetch", daemon=True)
        for _ in range(min(concurrency, len(pending)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    with lock:
        return [
            results.get(url) or UrlCheck(url, image, False, "not checked in time", False)
            for url, image in urls.items()
        ]
