"""Which opens and clicks are a person's and which a machine's: the rules, in one place.

A machine's open or click is stored with ``machine=True`` and counted apart
(``delivery.machine_open_count``, ``machine_click_count``); it never sets ``opened_at`` or
``clicked_at`` and never reaches a decision about a person. The rules (README, "Opens and
clicks, humans and machines"):

1. A ``HEAD`` request is a machine: a mail client showing an image or a browser following
   a link asks with ``GET``; link checkers and scanners often only ``HEAD``.
2. A known scanner's or tool's user agent (:data:`SCANNER_AGENTS`) is a machine, for opens
   and clicks alike.
3. Apple Mail Privacy Protection: Apple documents that Mail "downloads remote content in
   the background" through its proxy, whether or not the message is read
   (support.apple.com/guide/iphone/use-mail-privacy-protection-iphf084865c7), and that
   Apple's own network is 17.0.0.0/8 (support.apple.com/en-us/101555, "Use Apple products
   on enterprise networks"). An open from that network is a machine open. The proxy's
   bare ``Mozilla/5.0`` user agent is widely observed, not documented by Apple; it is
   the second test (a person's mail client names itself).
4. An open by a known image prefetcher (:data:`PREFETCHERS`: Google's image proxy, Yahoo's
   proxy) within ``tracking_prefetch_seconds`` of the send is the prefetch, not a reader:
   the same proxies fetch when a person opens the message later, so later ones count.
5. Clicks on every link of a message (two or more links) within
   ``tracking_burst_seconds`` are a scanner following links, each of them a machine click
   (:func:`burst_clicks`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta

# Substrings of User-Agent headers (compared in lower case) of link scanners and tools.
# Vendors do not publish stable strings; these are the tokens their fetchers are seen
# to carry. Keep the table here, and only here.
SCANNER_AGENTS: dict[str, str] = {
    "barracuda": "Barracuda Email Security",
    "mimecast": "Mimecast URL protection",
    "proofpoint": "Proofpoint URL Defense",
    "ppops": "Proofpoint (ppops)",
    "safelinks": "Microsoft Defender Safe Links",
    "microsoft office existence discovery": "Microsoft Office link check",
    "messagelabs": "Symantec MessageLabs",
    "symantec": "Symantec",
    "trendmicro": "Trend Micro",
    "forcepoint": "Forcepoint",
    "sophos": "Sophos",
    "fortiguard": "Fortinet FortiGuard",
    "ironport": "Cisco IronPort",
    "zscaler": "Zscaler",
    "bitdefender": "Bitdefender",
    "checkpoint": "Check Point",
    "headlesschrome": "headless Chrome",
    "phantomjs": "PhantomJS",
    "python-requests": "python-requests",
    "python-urllib": "Python urllib",
    "go-http-client": "Go HTTP client",
    "curl/": "curl",
    "wget/": "wget",
    "bot": "a bot",
    "spider": "a crawler",
    "crawler": "a crawler",
}
# Image proxies that fetch as the message arrives (rule 4), and again for real opens.
PREFETCHERS: dict[str, str] = {
    "googleimageproxy": "Google Image Proxy",
    "yahoomailproxy": "Yahoo Mail proxy",
    "ymailproxy": "Yahoo Mail proxy",
}
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")  # support.apple.com/en-us/101555
APPLE_PROXY_AGENT = "mozilla/5.0"


def _agent(user_agent: str | None, table: dict[str, str]) -> str | None:
    agent = (user_agent or "").lower()
    return next((name for token, name in table.items() if token in agent), None)


def _apple(ip: str | None, user_agent: str | None) -> bool:
    if (user_agent or "").strip().lower() == APPLE_PROXY_AGENT:
        return True
    try:
        return ip is not None and ipaddress.ip_address(ip) in APPLE_NETWORK
    except ValueError:
        return False


def request_machine(method: str, user_agent: str | None) -> str | None:
    """Rules 1 and 2: why one request is a machine's, or None."""
    if method.upper() == "HEAD":
        return "HEAD request"
    scanner = _agent(user_agent, SCANNER_AGENTS)
    return f"scanner: {scanner}" if scanner else None


def open_machine(
    *,
    method: str,
    user_agent: str | None,
    ip: str | None,
    at: datetime,
    sent_at: datetime | None,
    prefetch_seconds: float,
) -> str | None:
    """Rules 1-4 for an open: why it is a machine's, or None (a person's)."""
    reason = request_machine(method, user_agent)
    if reason:
        return reason
    if _apple(ip, user_agent):
        return "Apple Mail Privacy Protection"
    prefetcher = _agent(user_agent, PREFETCHERS)
    if prefetcher and sent_at is not None and at - sent_at <= timedelta(seconds=prefetch_seconds):
        return f"prefetch: {prefetcher}"
    return None


def burst_clicks(
    clicks: Sequence[tuple[datetime, int]], *, link_count: int, window_seconds: float
) -> set[int]:
    """Rule 5 for one reader's clicks on one message, ``(time, link position)`` each:
    the indexes (into ``clicks``) of those that fall in a window of ``window_seconds``
    covering every one of the message's ``link_count`` links."""
    if link_count < 2 or len(clicks) < link_count:
        return set()
    order = sorted(range(len(clicks)), key=lambda i: clicks[i][0])
    window = timedelta(seconds=window_seconds)
    machine: set[int] = set()
    start = 0
    for end in range(len(order)):
        while clicks[order[end]][0] - clicks[order[start]][0] > window:
            start += 1
        inside = order[start : end + 1]
        if len({clicks[i][1] for i in inside}) >= link_count:
            machine.update(inside)
    return machine
