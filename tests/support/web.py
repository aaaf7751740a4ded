"""Helpers for the web tests: the sign-up challenge solved as the browser's script does
(web/static/signup-challenge.js), and waiting for mail that is sent after the answer."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from email.message import EmailMessage
from typing import Any

import httpx

from newsletter.settings import Settings
from tests.support.subscribers import messages, messages_to

# Cheap enough for tests (about a hundred PBKDF2 rounds of 200 iterations at most).
EASY_CHALLENGE = {"signup_challenge_max_number": 200, "signup_challenge_cost": 200}


def solve(challenge: dict[str, Any]) -> str:
    """The form's ``altcha`` value for ``challenge`` (the JSON of /subscribe/challenge):
    counters 0, 1, 2... until PBKDF2-SHA-256(salt, nonce + counter as a big-endian
    uint32) starts with ``keyPrefix``; then base64(JSON {challenge, solution})."""
    params = challenge["parameters"]
    assert params["algorithm"] == "PBKDF2/SHA-256"
    nonce, salt = bytes.fromhex(params["nonce"]), bytes.fromhex(params["salt"])
    for counter in range(2**32):
        password = nonce + counter.to_bytes(4, "big")
        key = hashlib.pbkdf2_hmac("sha256", password, salt, params["cost"], params["keyLength"])
        if key.hex().startswith(params["keyPrefix"]):
            solution = {"counter": counter, "derivedKey": key.hex()}
            payload = {"challenge": challenge, "solution": solution}
            return base64.b64encode(json.dumps(payload).encode()).decode()
    raise AssertionError("no counter solves the challenge")


def solved(client: httpx.Client) -> str:
    """A fresh challenge from the app, solved."""
    response = client.get("/subscribe/challenge")
    assert response.status_code == 200, response.text
    return solve(response.json())


def arrived(
    settings: Settings, address: str | None = None, *, count: int = 1, timeout: float = 10
) -> list[EmailMessage]:
    """The outbox (to ``address``) once it holds ``count`` messages: a sign-up's
    confirmation is sent after the answer, so it may land a moment after the page."""
    deadline = time.monotonic() + timeout
    while True:
        found = messages(settings) if address is None else messages_to(settings, address)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)
