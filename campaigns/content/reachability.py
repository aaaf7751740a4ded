"""Does every image of an issue load and every link open? Asked the way a mail client would.

Preflight used to check only that URLs were absolute http(s): an image on a host that
does not resolve passed, and the reader saw alt text in a hole. This fetches each URL
once, bounded on every side so a send is never held up for long:

- only absolute http(s) URLs (a placeholder such as ``[%unsubscribe_url%]`` is ours);
- HEAD first; GET (reading one byte) when HEAD answers an HTTP error or breaks, because
  some servers and CDNs refuse or mishandle HEAD (RFC 9110 9.3.2 makes it optional to
  serve well); redirects are followed, at most five, to http(s) only;
- the feed import's address policy (:mod:`newsletter.net`): a snippet from a feed can
  name an internal URL, and preflight must not be the one that fetches it;
- ``timeout`` for each whole request (not per read), at most ``concurrency`` requests at
  once, one ``deadline`` for all of them: what has not answered by then is reported as
  not checked, and its (daemon) thread is left to end at its own timeout.

An image is broken unless it answers 2xx with an ``image/*`` Content-Type (when it names
one: a login page answering 200 is no picture); a link unless it answers 2xx.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from newsletter.errors import FetchFailed
from newsletter.net import open_url

USER_AGENT = "newsletter-pipeline/0.1 (+preflight link check)"


@dataclass(frozen=True)
class UrlCheck:
    """What became of one URL: ``ok``, or ``reason`` in words ("HTTP 404", ...);
    ``checked`` is False when the deadline ran out before it answered."""

    url: str
    image: bool
    ok: bool
    reason: str = ""
    checked: bool = True


class _Failed(Exception):
    """Why a request failed; ``retry``: GET may succeed where HEAD did not (an HTTP error
    status, a broken answer), unlike a host that does not resolve or answer."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def _request(url: str, method: str, timeout: float, allow_private: bool) -> str:
    """The Content-Type of a 2xx answer ("" if none); raises _Failed for anything else."""
    try:
        with open_url(
            url,
            method=method,
            deadline_seconds=timeout,
            allow_private=allow_private,
            user_agent=USER_AGENT,
        ) as response:
            if not 200 <= response.status < 300:
                raise _Failed(f"HTTP {response.status} {response.reason}".rstrip(), retry=True)
            if method == "GET":
                response.read(1)  # the status line and headers are all we need
            headers = response.headers
            return headers.get_content_type() if headers["Content-Type"] else ""
    except FetchFailed as err:  # a broken answer to HEAD may be a server that mishandles it
        raise _Failed(err.reason, retry=err.broken) from err


def check_url(url: str, *, image: bool, timeout: float, allow_private: bool = False) -> UrlCheck:
    """One URL, HEAD then (if that may help) GET, within ``timeout`` seconds each, to
    addresses :mod:`newsletter.net`'s policy allows; never raises."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return UrlCheck(url, image, False, "not an http(s) URL")
    try:
        try:
            content_type = _request(url, "HEAD", timeout, allow_private)
        except _Failed as err:
            if not err.retry:
                raise
            content_type = _request(url, "GET", timeout, allow_private)
    except _Failed as err:
        return UrlCheck(url, image, False, err.reason)
    if image and content_type and not content_type.startswith("image/"):
        return UrlCheck(url, image, False, f"it is {content_type}, not an image")
    return UrlCheck(url, image, True)


def check_urls(
    urls: Mapping[str, bool],
    *,
    timeout: float,
    concurrency: int,
    deadline: float,
    allow_private: bool = False,
) -> list[UrlCheck]:
    """Check ``urls`` (URL -> is an image), in their order; within ``deadline`` seconds.

    Runs ``concurrency`` daemon threads; each request's timeout is cut to what is left
    of the deadline. URLs not answered in time come back with ``checked=False``.
    ``allow_private`` is NEWSLETTER_FETCH_ALLOW_PRIVATE (see :mod:`newsletter.net`).
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
            result = check_url(
                url, image=urls[url], timeout=min(timeout, left), allow_private=allow_private
            )
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
