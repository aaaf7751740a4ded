"""SendGrid v3 Mail Send through the official ``sendgrid`` client.

One request carries up to 1000 recipients as personalizations. The rendered HTML and
text travel once per request; each personalization carries its recipient's placeholder
values as ``substitutions`` (``sendgrid_personalizations``). We build the raw request
body ourselves: the client's ``Mail`` helper classes cost milliseconds per 1000
personalizations. A send is CPU-bound: the send loop has :meth:`SendGridProvider.prepare`
sign its readers' links and encode their personalizations on its own thread while the
batch before is in flight, and the sending thread only posts (``send_prepared``).

Vendor quirks handled here:
- SendGrid does not apply substitutions to headers, so every personalization carries its
  own literal ``List-Unsubscribe``; ``List-Unsubscribe-Post``, the same for all, goes
  once in the body's headers.
- ``custom_args`` are echoed beside SendGrid's own event fields and kept long-term with
  no way to redact them: our keys carry the ``nl_`` prefix (``ARG_*``, read back by
  ``sendgrid_events``) and opaque ids only; a message's ``metadata`` travels the same way.
- The client has no timeout by default; we set one. A request may not name an address
  twice, hold more than 1000 personalizations, carry more than 10,000 bytes of
  custom_args per personalization or exceed 30 MB; we split or refuse before sending.
- The client (python_http_client) formats the whole request body into a debug log line
  on every request, even with debug logging off, and serialises it with ``json.dumps``:
  about 10 ms per 500 KB request, 10 s per million recipients. We serialise the body
  ourselves with orjson and hand the client a body that logs as a one-line summary
  (see ``sendgrid_http.SerializedBody``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from http.client import HTTPException
from operator import attrgetter
from typing import Any
from urllib.error import URLError

import orjson
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from campaigns.delivery.providers.base import (
    UNSIGNED,
    BatchResult,
    BulkContent,
    Prepared,
    Provider,
    Recipient,
    made_for,
)
from campaigns.delivery.providers.sendgrid_http import (
    CONTENT_TYPE,
    BodyBytes,
    SerializedBody,
    rejection,
    retry_after,
)
from campaigns.delivery.providers.sendgrid_personalizations import (
    ARG_CAMPAIGN,
    ARG_DELIVERY,
    ARG_SUBSCRIBER,
    CUSTOM_ARG_PREFIX,
    PersonalizationEncoder,
    encode,
    sender,
    to,
)
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.tracking.links import TrackingValues
from newsletter.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from newsletter.headers import check_header_text
from newsletter.mail import ONE_CLICK, OutgoingMessage
from newsletter.settings import SENDGRID_MAX_BATCH, Settings

__all__ = ["ARG_CAMPAIGN", "ARG_DELIVERY", "ARG_SUBSCRIBER", "SendGridProvider"]

MAX_PERSONALIZATIONS = SENDGRID_MAX_BATCH
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_REQUEST_BYTES = 30 * 1024 * 1024
_REQUEST_MARGIN = 64 * 1024  # JSON punctuation our size estimate does not count
_PERSONALIZATION_OVERHEAD = 400  # keys, quotes and braces of one personalization
_UNSIGNED_VALUES = 2048  # generous: the values of a recipient whose links we sign
_GENEROUS_PERSONALIZATION = 8 * 1024  # more than any real recipient's values take


_EMAIL = attrgetter("email")


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: check_header_text(name, value) for name, value in headers.items()}


class SendGridProvider(Provider):
    name = "sendgrid"

    def __init__(
        self,
        *,
        api_key: str,
        api_host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        sandbox: bool = False,
        batch_size: int = MAX_PERSONALIZATIONS,
        settings: Settings | None = None,
    ) -> None:
        """``settings``: sign the links of ledger recipients here, as bytes
        (``signs_links``; sendgrid_personalizations.PersonalizationEncoder)."""
        self._api_key = api_key
        self._api_host = api_host.rstrip("/")
        self._timeout = timeout
        self.sandbox = sandbox
        self.batch_size = min(batch_size, MAX_PERSONALIZATIONS)
        self._local = threading.local()  # one client per sending thread
        self._settings = settings
        self.signs_links = settings is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridProvider:
        return cls(
            api_key=settings.require("sendgrid_api_key"),
            api_host=settings.sendgrid_api_host,
            timeout=settings.sendgrid_timeout_seconds,
            sandbox=settings.sendgrid_sandbox,
            batch_size=settings.sendgrid_batch_size,
            settings=settings,
        )

    def _client(self) -> SendGridAPIClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = SendGridAPIClient(api_key=self._api_key, host=self._api_host)
            client.client.timeout = self._timeout  # none by default: a hung socket hangs us
            client.client.request_headers["Content-Type"] = (
                CONTENT_TYPE  # see sendgrid_http.SerializedBody
            )
            self._local.client = client
        return client

    # ------------------------------------------------------------------ requests

    def _post(self, body: dict[str, Any], personalizations: bytes | None = None) -> str:
        """POST /v3/mail/send; return X-Message-Id or raise a ProviderError subclass.

        ``personalizations``: the JSON array, already encoded, to go in ``body``.
        """
        payload = orjson.dumps(body)
        if personalizations is None:
            serialized = SerializedBody(BodyBytes.of(payload))
        else:  # body is never empty: it has "from" at least
            tail = memoryview(payload)[1:]
            serialized = SerializedBody(
                BodyBytes.of(b'{"personalizations":', personalizations, b",", tail)
            )
        try:
            response = self._client().client.mail.send.post(request_body=serialized)
        except HTTPError as err:
            status = err.status_code
            detail = rejection(err.body)
            if status in (401, 403):
                raise ProviderAuthError(
                    f"SendGrid refused our API key: {detail}", status=status, response=detail
                ) from err
            if status == 429 or status >= 500:
                raise ProviderUnavailable(
                    f"SendGrid is busy or failing: {detail}",
                    status=status,
                    response=detail,
                    retry_after=retry_after(err.headers),
                ) from err
            raise ProviderRejected(
                f"SendGrid rejected the request: {detail}", status=status, response=detail
            ) from err
        except (TimeoutError, URLError, HTTPException, OSError) as err:
            raise ProviderUnavailable(f"cannot reach SendGrid at {self._api_host}: {err}") from err
        if response.status_code not in (200, 202):
            raise ProviderError(
                "SendGrid answered unexpectedly",
                status=response.status_code,
                response=str(response.body)[:500],
            )
        return str(response.headers.get("X-Message-Id") or "")

    def _content(self, content: BulkContent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": sender(content.from_email, content.from_name),
            "subject": check_header_text("Subject", content.subject_line),
            "content": [
                {"type": "text/plain", "value": content.text},
                {"type": "text/html", "value": content.html},
            ],
            # The one-click POST header (RFC 8058) is the same for every recipient: once
            # here, not in each of up to 1000 personalizations (SendGrid gives each
            # message the body's headers and its personalization's).
            "headers": _headers({**content.shared_headers(), "List-Unsubscribe-Post": ONE_CLICK}),
            "custom_args": {ARG_CAMPAIGN: str(content.campaign_id)},
        }
        if content.reply_to:
            body["reply_to"] = sender(content.reply_to, None, "Reply-To")
        if content.categories:
            body["categories"] = list(content.categories)
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        if content.tracking:  # our redirects and pixel are in the content: never wrap twice
            body["tracking_settings"] = {
                "click_tracking": {"enable": False, "enable_text": False},
                "open_tracking": {"enable": False},
            }
        return body

    @staticmethod
    def _estimate(recipient: Recipient) -> int:
        """Bytes one personalization adds to the request, generously rounded up."""
        values = recipient.values
        return (
            _PERSONALIZATION_OVERHEAD
            + (_UNSIGNED_VALUES if values is UNSIGNED else 2 * sum(map(len, values.values())))
            + 2 * len(recipient.email)
            + 2 * len(recipient.name or "")
        )

    def _requests(
        self, fixed_size: int, recipients: Sequence[Recipient]
    ) -> Iterable[list[Recipient]]:
        """Split into requests with no address twice, <= batch size and <= 30 MB each."""
        budget = MAX_REQUEST_BYTES - _REQUEST_MARGIN - fixed_size
        if budget <= 0:
            raise ProviderRejected("the rendered email alone exceeds SendGrid's 30 MB limit")
        # Sizes only need counting when a batch could come near the limit (huge content).
        careful = fixed_size + self.batch_size * _GENEROUS_PERSONALIZATION > budget
        if (
            not careful
            and 0 < len(recipients) <= self.batch_size
            and len(set(map(str.lower, map(_EMAIL, recipients)))) == len(recipients)
        ):
            yield list(recipients)  # the usual batch: one request as it is
            return
        pending = list(recipients)
        while pending:
            seen: set[str] = set()
            chosen: list[Recipient] = []
            later: list[Recipient] = []
            size = 0
            for recipient in pending:
                address = recipient.email.lower()
                estimate = self._estimate(recipient) if careful else 0
                if (
                    address in seen
                    or len(chosen) >= self.batch_size
                    or (chosen and size + estimate > budget)
                ):
                    later.append(recipient)
                    continue
                seen.add(address)
                chosen.append(recipient)
                size += estimate
            yield chosen
            pending = later

    def _personalizations(self, content: BulkContent, chosen: Sequence[Recipient]) -> bytes:
        """The request's personalizations as JSON; unsigned recipients' links signed here.
        Raises RuntimeError for a request that mixes unsigned and signed recipients."""
        unsigned = sum(r.values is UNSIGNED for r in chosen)
        if not unsigned:
            return encode(content.campaign_id, chosen, content.test)
        if unsigned < len(chosen):
            raise RuntimeError("a request mixes recipients with and without their links")
        return self._encoder(content).encode(chosen)

    def _encoder(self, content: BulkContent) -> PersonalizationEncoder:
        """This thread's encoder for the content's campaign (its links keyed once)."""
        if self._settings is None or content.test:  # the send loop asks signs_links first
            raise RuntimeError("unsigned recipients need the settings, and a ledger send")
        encoders = self._local.__dict__.setdefault("encoders", {})
        key = (content.campaign_id, content.tracking)
        encoder = encoders.get(key)
        if encoder is None:
            links = RecipientLinks(self._settings, campaign_id=content.campaign_id)
            if content.tracking:
                links.tracking = TrackingValues(self._settings, campaign_id=content.campaign_id)
            encoder = encoders[key] = PersonalizationEncoder(links, content.campaign_id)
        return encoder

    def _encoded(
        self, content: BulkContent, recipients: Sequence[Recipient]
    ) -> list[tuple[list[Recipient], bytes]]:
        """The batch's requests: each one's recipients and their personalizations as JSON."""
        fixed = len(content.html.encode()) + len(content.text.encode()) + len(content.subject)
        return [
            (chosen, self._personalizations(content, chosen))
            for chosen in self._requests(fixed, recipients)
        ]

    def prepare(
        self, content: BulkContent, recipients: Sequence[Recipient]
    ) -> Prepared[list[tuple[list[Recipient], bytes]]]:
        """The batch's requests, their personalizations encoded (links signed): most of a
        send's CPU, done on the send loop's thread while the batch before is in flight.
        An error (a refusal over 30 MB, a stored address that may not go into a header)
        is kept for the send to raise (Provider.prepare)."""
        return Prepared.making(recipients, lambda: self._encoded(content, recipients))

    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        """Usually one request; more when an address repeats or the size calls for it.

        Each recipient is accepted under its request's X-Message-Id (``request_ids``). A
        request refused (400) rejects its recipients; 429/5xx after an earlier request of
        the batch went out defers the rest, with SendGrid's Retry-After. Raises as
        :meth:`Provider.send_batch` says when nothing of the batch went out.
        """
        return self._send(content, recipients, self._encoded(content, recipients))

    def send_prepared(
        self, content: BulkContent, recipients: Sequence[Recipient], prepared: object | None
    ) -> BatchResult:
        """:meth:`send_batch` with the requests :meth:`prepare` made of ``recipients``."""
        requests = made_for(prepared, recipients, lambda: self._encoded(content, recipients))
        return self._send(content, recipients, requests)

    def _send(
        self,
        content: BulkContent,
        recipients: Sequence[Recipient],
        requests: list[tuple[list[Recipient], bytes]],
    ) -> BatchResult:
        result = BatchResult(request_ids=True)
        body = self._content(content)
        accepted = 0
        for chosen, personalizations in requests:
            try:
                message_id = self._post(body, personalizations)
            except ProviderUnavailable as err:
                if not accepted:
                    raise
                # An earlier request of this batch went out: keep it, retry the rest.
                statuses = result.statuses
                result.defer(
                    (r.delivery_id for r in recipients if r.delivery_id not in statuses), str(err)
                )
                result.retry_after = err.retry_after
                return result
            except ProviderRejected as err:
                if not accepted and len(chosen) == len(recipients):
                    raise
                result.reject((r.delivery_id for r in chosen), str(err))
                continue
            accepted += len(chosen)
            result.accept((r.delivery_id for r in chosen), message_id or None)
        return result

    def send_message(self, message: OutgoingMessage) -> str:
        personalization: dict[str, Any] = {"to": [to(message.to_email, message.to_name)]}
        if message.headers:
            personalization["headers"] = _headers(message.headers)
        if message.metadata:
            args = {CUSTOM_ARG_PREFIX + k: str(v) for k, v in message.metadata.items()}
            if len(json.dumps(args).encode()) >= MAX_CUSTOM_ARGS_BYTES:
                raise ProviderRejected("custom_args exceed SendGrid's 10,000 bytes per message")
            personalization["custom_args"] = args
        body: dict[str, Any] = {
            "personalizations": [personalization],
            "from": sender(message.from_email, message.from_name),
            "subject": check_header_text("Subject", message.subject),
            "content": [
                {"type": "text/plain", "value": message.text},
                {"type": "text/html", "value": message.html},
            ],
        }
        if message.reply_to:
            body["reply_to"] = sender(message.reply_to, None, "Reply-To")
        if message.categories:
            body["categories"] = list(message.categories)
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return self._post(body)
