"""SendGrid personalizations: one per recipient of a request, as JSON.

A personalization carries the recipient's ``to``, their placeholder values as
``substitutions`` (SendGrid's legacy tags, ``[%key%]``), their own literal
``List-Unsubscribe`` (SendGrid substitutes nothing in headers) and our opaque ids as
``custom_args`` (SendGrid keeps those long-term and cannot redact them: ids only, under
our ``nl_`` prefix, read back by ``sendgrid_events``).

Two ways to the same JSON. :func:`encode` takes recipients whose values are made
(``RecipientLinks.values``): test copies, and any caller of ``send_batch`` with a ready
recipient. :class:`PersonalizationEncoder` takes the send loop's recipients unsigned
(``Recipient.values`` is ``providers.base.UNSIGNED``, ``link_key`` set: the provider
``signs_links``) and writes each one's personalization as one bytes template filled
with their links signed as bytes (``RecipientLinks.signed``): no values dict, no
personalization dict, no str round trip (bench/README.md, "Issue 17.4, third pass":
sender CPU 22 -> 15 µs a recipient with the batch-ahead preparation); tests pin the two
to the same JSON. The fast path writes the To address and name and List-Unsubscribe
without ``newsletter.headers``' check, so it takes only what that check passes unchanged:
printable ASCII addresses, names without any character ``_UNSAFE_TEXT`` matches (a test
pins that every such character sends a reader down the checked path).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from campaigns.delivery.providers.base import Recipient
from campaigns.delivery.recipient_links import RecipientLinks
from newsletter.headers import check_header_text, safe_display_name
from newsletter.mail import (
    GREETING,
    GREETING_HTML,
    NAME,
    NAME_HTML,
    PLACEHOLDER_KEYS,
    PREFERENCES_URL,
    TRACK,
    UNSUBSCRIBE_URL,
    personal_values,
    placeholder,
)

# SendGrid echoes custom_args beside its own event fields: our prefix keeps them apart.
CUSTOM_ARG_PREFIX = "nl_"
ARG_CAMPAIGN = f"{CUSTOM_ARG_PREFIX}campaign_id"
ARG_SUBSCRIBER = f"{CUSTOM_ARG_PREFIX}subscriber_id"
ARG_DELIVERY = f"{CUSTOM_ARG_PREFIX}delivery_id"


class _Tags(dict[str, str]):
    """Placeholder key -> SendGrid substitution tag; a key not listed gets its tag made."""

    def __missing__(self, key: str) -> str:
        return placeholder(key)


_TAGS = _Tags({key: placeholder(key) for key in (*PLACEHOLDER_KEYS, TRACK)})


def sender(email: str, name: str | None, field: str = "From") -> dict[str, str]:
    """SendGrid's ``{"email", "name"}``; values pass newsletter.headers' check
    (HeaderInjection), as SendGrid writes them into the From/To headers."""
    check_header_text(field, email)
    return {"email": email, "name": check_header_text(field, name)} if name else {"email": email}


def to(email: str, name: str | None) -> dict[str, str]:
    """A recipient: a stored name that may not go into a header is left out, not sent."""
    return sender(email, safe_display_name(name), "To")


def personalization(
    campaign_id: str,
    delivery_id: int,
    subscriber_id: int,
    email: str,
    name: str | None,
    values: Mapping[str, str],
    test: bool = False,
) -> dict[str, Any]:
    """One recipient's personalization; ``values`` are their placeholder values."""
    if GREETING not in values:  # SendGrid would leave "[%greeting%]" in the email
        values = {**personal_values(name), **values}
    # custom_args are three short decimal ids under fixed keys: far below 10,000 bytes.
    args = {ARG_CAMPAIGN: campaign_id}
    if not test:  # a test send has no ledger row to point at
        args[ARG_SUBSCRIBER] = str(subscriber_id)
        args[ARG_DELIVERY] = str(delivery_id)
    unsubscribe = f"<{values[UNSUBSCRIBE_URL]}>"
    return {
        "to": [to(email, name)],
        "substitutions": {_TAGS[key]: value for key, value in values.items()},
        # Literal per recipient: SendGrid does not substitute inside headers. The
        # one-click POST header, the same for all, is in the request's (sendgrid._content).
        "headers": {"List-Unsubscribe": check_header_text("List-Unsubscribe", unsubscribe)},
        # Opaque ids only: SendGrid keeps custom_args long-term and cannot redact them.
        "custom_args": args,
    }


def encode(campaign_id: int, recipients: Sequence[Recipient], test: bool) -> bytes:
    """The JSON array of personalizations of recipients whose values are made."""
    cid = str(campaign_id)
    return orjson.dumps(
        [
            personalization(cid, r.delivery_id, r.subscriber_id, r.email, r.name, r.values, test)
            for r in recipients
        ]
    )


# What may go between JSON quotes as it is: printable ASCII but '"' and '\\' (one
# character class: an alternation costs three times as much per address).
_JSON_CARE = re.compile(r"[^ !#-\[\]-~]")
# A character that JSON would escape, or that personal_values (one_line, html.escape) or
# safe_display_name would change: C0 and C1 controls, DEL, every whitespace character but
# the space (str.isspace's set, which one_line's split() uses; a test pins it), bidi
# controls (newsletter.headers._UNSAFE_TEXT), the HTML specials. Any other character,
# accents included, goes into the JSON as UTF-8, as orjson writes it. Runs of spaces
# and spaces at either end are checked apart (see _plain_name).
_NAME_CARE = re.compile(  # "[": a placeholder in a name is made inert (personal_values)
    "[\x00-\x1f\x7f-\xa0\u1680\u2000-\u200a\u2028-\u202f\u205f\u2066-\u2069\u3000\"\\\\&<>'\\[]"
)


def _plain_name(name: str) -> bool:
    """Whether ``name`` goes into the JSON and the greeting exactly as it is."""
    return not (_NAME_CARE.search(name) or "  " in name or name[0] == " " or name[-1] == " ")


_NAMELESS = personal_values(None)


def _tag(key: str) -> bytes:
    """The key's tag as a JSON string, ready for a %-template (its "%" doubled)."""
    return orjson.dumps(_TAGS[key]).replace(b"%", b"%%")


class PersonalizationEncoder:
    """A campaign's personalizations as JSON bytes, straight from unsigned recipients.

    The reader's links are signed as bytes (``RecipientLinks.signed``) and each
    personalization is one bytes template filled with them: no values dict, no
    personalization dict, no str round trip: those were about half of a SendGrid send's
    CPU with the signing, which stays (three HMACs a reader).
    The result is the JSON :func:`encode` makes from ``RecipientLinks.values`` (a test
    pins it); a recipient whose address or name needs escaping, or whose name
    ``personal_values`` would change, takes that slower path instead.
    """

    def __init__(self, links: RecipientLinks, campaign_id: int) -> None:
        self.links = links
        self._cid = str(campaign_id)
        self._fast = not _JSON_CARE.search(links.base_url)
        u, p, n, nh, g, gh, t = map(
            _tag,
            (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME, NAME_HTML, GREETING, GREETING_HTML, TRACK),
        )
        ids = orjson.dumps({ARG_CAMPAIGN: self._cid})[:-1]
        self._template = (
            b'{"to":[{"email":"%s"%s}],"substitutions":{'
            + u
            + b':"%s",'
            + p
            + b':"%s",%s%s},'
            + b'"headers":{"List-Unsubscribe":"<%s>"},"custom_args":'
            + ids
            + b',"'
            + ARG_SUBSCRIBER.encode()
            + b'":"%d","'
            + ARG_DELIVERY.encode()
            + b'":"%d"}}'
        )
        self._personal = (
            n + b':"%s",' + nh + b':"%s",' + g + b':"Hello %s,",' + gh + b':"Hello %s,"'
        )
        self._nameless = orjson.dumps({_TAGS[k]: v for k, v in _NAMELESS.items()})[1:-1]
        self._track = b"," + t + b':"%s"'

    def encode(self, recipients: Sequence[Recipient]) -> bytes:
        """The JSON array of the recipients' personalizations (a ledger send: not a test)."""
        links = self.links
        links.new_batch()
        signed = links.signed
        template, personal, nameless, track_part = (
            self._template,
            self._personal,
            self._nameless,
            self._track,
        )
        json_care = _JSON_CARE.search
        parts: list[bytes] = []
        append = parts.append
        for r in recipients:
            email, name = r.email, r.name
            if not self._fast or json_care(email) or (name and not _plain_name(name)):
                append(self._slow(r))
                continue
            unsubscribe, preferences, track = signed(r.subscriber_id, r.link_key, not r.plain)
            if name:
                raw = name.encode()
                to_name = b',"name":"%s"' % raw
                values = personal % (raw, raw, raw, raw)
            else:
                to_name, values = b"", nameless
            append(
                template
                % (
                    email.encode(),
                    to_name,
                    unsubscribe,
                    preferences,
                    values,
                    b"" if track is None else track_part % track,
                    unsubscribe,
                    r.subscriber_id,
                    r.delivery_id,
                )
            )
        if not parts:
            return b"[]"
        # One join makes the array: "[" and "]" ride on the first and last parts (an
        # 800-byte copy each) rather than on the whole (two more copies of 800 KB).
        parts[0] = b"[" + parts[0]
        parts[-1] += b"]"
        return b",".join(parts)

    def _slow(self, r: Recipient) -> bytes:
        values = self.links.values(r.subscriber_id, r.name, r.link_key, not r.plain)
        return orjson.dumps(
            personalization(self._cid, r.delivery_id, r.subscriber_id, r.email, r.name, values)
        )
