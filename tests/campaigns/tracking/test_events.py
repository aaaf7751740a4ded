"""The one mapping from SendGrid event names to our kinds (anymail's words), and event
normalisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from campaigns.delivery.providers.sendgrid_events import classify, normalise_event
from campaigns.tracking.events import EventKind, RejectReason

K, R = EventKind, RejectReason


@pytest.mark.parametrize(
    ("event", "type_", "kind", "why"),
    [
        ("processed", None, K.QUEUED, None),
        ("delivered", None, K.DELIVERED, None),
        ("deferred", None, K.DEFERRED, None),
        ("open", None, K.OPENED, None),
        ("click", None, K.CLICKED, None),
        ("bounce", "bounce", K.BOUNCED, R.BOUNCED),
        ("bounce", "blocked", K.BOUNCED, R.BLOCKED),
        ("bounce", None, K.BOUNCED, R.BOUNCED),
        ("dropped", None, K.REJECTED, R.OTHER),
        ("spamreport", None, K.COMPLAINED, None),
        ("unsubscribe", None, K.UNSUBSCRIBED, None),
        ("group_unsubscribe", None, K.UNSUBSCRIBED, None),
        ("group_resubscribe", None, K.SUBSCRIBED, None),
    ],
)
def test_every_sendgrid_event_maps_to_its_kind(
    event: str, type_: str | None, kind: K, why: R | None
) -> None:
    assert classify(event, type_) == (kind, why)


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("Bounced Address", R.BOUNCED),
        ("Invalid", R.INVALID),
        ("Spam Reporting Address", R.SPAM),
        ("Unsubscribed Address", R.UNSUBSCRIBED),
        ("Invalid SMTPAPI header", R.OTHER),
    ],
)
def test_a_drop_is_a_rejection_with_its_reason(reason: str, why: R) -> None:
    assert classify("dropped", None, reason) == (K.REJECTED, why)


def test_our_vocabulary_is_anymails() -> None:
    assert {k.value for k in K} == {
        "queued",
        "sent",
        "rejected",
        "failed",
        "bounced",
        "deferred",
        "delivered",
        "opened",
        "clicked",
        "complained",
        "unsubscribed",
        "subscribed",
        "unknown",
    }


def test_an_unknown_event_name_maps_to_unknown() -> None:
    assert classify("account_status_change") == (K.UNKNOWN, None)


def test_an_unknown_bounce_type_is_a_hard_bounce() -> None:
    assert classify("bounce", "something-new") == (K.BOUNCED, R.BOUNCED)


def test_event_names_are_matched_without_regard_to_case() -> None:
    assert classify(" Delivered ") == (K.DELIVERED, None)


def test_normalising_keeps_the_raw_name_of_an_unknown_event() -> None:
    event = normalise_event(
        {"event": "account_status_change", "sg_event_id": "e1", "timestamp": 1764000000}
    )
    assert (event.kind, event.raw_event, event.event_id) == (
        K.UNKNOWN,
        "account_status_change",
        "e1",
    )


def test_normalising_reads_our_custom_args_and_the_message_id_prefix() -> None:
    event = normalise_event(
        {
            "event": "delivered",
            "sg_event_id": "e2",
            "timestamp": 1764000000,
            "email": "Ann@Example.com",
            "sg_message_id": "14c5d75ce93.filterdrecv-p3las1-1.0",
            "nl_campaign_id": "7",
            "nl_subscriber_id": "8",
            "nl_delivery_id": "9",
        }
    )
    assert (event.campaign_id, event.subscriber_id, event.delivery_id) == (7, 8, 9)
    assert event.message_id == "14c5d75ce93"
    assert event.email == "ann@example.com"
    assert event.occurred_at == datetime.fromtimestamp(1764000000, UTC)


def test_a_machine_open_is_flagged() -> None:
    event = normalise_event(
        {"event": "open", "sg_event_id": "e3", "timestamp": 1764000000, "sg_machine_open": True}
    )
    assert event.machine is True


def test_a_bounce_type_blocked_is_a_soft_bounce_with_its_reason() -> None:
    event = normalise_event(
        {
            "event": "bounce",
            "type": "blocked",
            "sg_event_id": "e4",
            "timestamp": 1764000000,
            "reason": "421 try again later",
        }
    )
    assert (event.kind, event.soft_bounce, event.reason) == (K.BOUNCED, True, "421 try again later")


def test_an_event_that_is_not_an_object_becomes_unknown() -> None:
    event = normalise_event(["not", "an", "event"])
    assert (event.kind, event.raw_event) == (K.UNKNOWN, "")


def test_an_event_without_id_gets_the_same_stable_id_every_time() -> None:
    raw = {"event": "open", "timestamp": 1764000000, "email": "a@example.com"}
    first, second = normalise_event(raw), normalise_event(dict(raw))
    assert first.event_id == second.event_id
    assert first.event_id.startswith("sha256:")


def test_garbage_ids_and_timestamps_do_not_raise() -> None:
    event = normalise_event(
        {
            "event": "click",
            "sg_event_id": "e5",
            "timestamp": "soon",
            "nl_campaign_id": "x",
            "nl_delivery_id": -3,
        }
    )
    assert (event.kind, event.campaign_id, event.delivery_id) == (K.CLICKED, None, None)


def test_a_hard_bounce_is_not_soft() -> None:
    event = normalise_event(
        {"event": "bounce", "type": "bounce", "sg_event_id": "e6", "timestamp": 1764000000}
    )
    assert (event.kind, event.reject_reason, event.soft_bounce) == (K.BOUNCED, R.BOUNCED, False)
