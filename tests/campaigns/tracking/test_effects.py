"""Applying SendGrid events: once each, in any order, with the right effect on the list."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, func, select

from campaigns.models import Delivery, TrackingEvent
from newsletter.settings import Settings
from subscribers.lifecycle import history
from subscribers.models import Subscriber, SubscriberStatus, Suppression
from tests.support.tracking import (
    T0,
    add_campaign,
    add_delivery,
    add_subscriber,
    apply,
    later,
    sg_event,
)

S = SubscriberStatus
ANN = "ann@example.com"


@pytest.fixture
def ann(session: Session) -> Subscriber:
    return add_subscriber(session, ANN)


@pytest.fixture
def delivery(session: Session, ann: Subscriber) -> Delivery:
    return add_delivery(session, add_campaign(session), ann)


def fresh(session: Session, row: Any) -> Any:
    session.expire_all()
    return session.get(type(row), row.id)


def suppressions(session: Session) -> list[tuple[str | None, str]]:
    return [(s.email, s.reason) for s in session.exec(select(Suppression))]


def event_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(TrackingEvent)).one()


# ---------------------------------------------------------------- once, whatever happens


def test_a_batch_delivered_twice_is_applied_once(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    batch = [sg_event("open", delivery, ANN), sg_event("click", delivery, ANN)]
    apply(session, settings, *batch)
    again = apply(session, settings, *batch)
    row = fresh(session, delivery)
    assert (again.applied, again.duplicates) == (0, 2)
    assert (row.open_count, row.click_count, event_count(session)) == (1, 1, 2)


def test_the_same_event_twice_in_one_batch_counts_once(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    event = sg_event("open", delivery, ANN)
    result = apply(session, settings, event, dict(event))
    assert (result.applied, result.duplicates) == (1, 1)
    assert fresh(session, delivery).open_count == 1


def _snapshot(session: Session, delivery: Delivery, ann: Subscriber) -> tuple[object, ...]:
    d, s = fresh(session, delivery), fresh(session, ann)
    return (
        d.delivered_at,
        d.opened_at,
        d.clicked_at,
        d.open_count,
        d.machine_open_count,
        d.click_count,
        d.bounce,
        d.unsubscribed,
        s.status,
        suppressions(session),
    )


@pytest.mark.parametrize(
    "order",
    [lambda b: b, lambda b: b[::-1], lambda b: b[2:] + b[:2]],
    ids=["in-order", "reversed", "rotated"],
)
def test_the_outcome_does_not_depend_on_arrival_order(
    session: Session,
    settings: Settings,
    delivery: Delivery,
    ann: Subscriber,
    order: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> None:
    batch = [
        sg_event("processed", delivery, ANN, at=later(0)),
        sg_event("delivered", delivery, ANN, at=later(1)),
        sg_event("open", delivery, ANN, at=later(30), sg_machine_open=True),
        sg_event("open", delivery, ANN, at=later(60), sg_machine_open=False),
        sg_event("open", delivery, ANN, at=later(90)),
        sg_event("click", delivery, ANN, at=later(91), url="https://example.com/a"),
        sg_event("unsubscribe", delivery, ANN, at=later(120)),
    ]
    for event in order(batch):
        apply(session, settings, event)
    assert _snapshot(session, delivery, ann) == (
        later(1),
        later(60),
        later(91),
        2,
        1,
        1,
        None,
        True,
        S.UNSUBSCRIBED,
        [(ANN, "unsubscribe")],
    )


# ---------------------------------------------------------------- delivery and engagement


def test_processed_keeps_the_send_time_we_recorded(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    apply(session, settings, sg_event("processed", delivery, ANN, at=later(5)))
    assert fresh(session, delivery).sent_at == T0


def test_a_machine_open_is_counted_apart_and_sets_no_open_time(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    apply(session, settings, sg_event("open", delivery, ANN, sg_machine_open=True))
    row = fresh(session, delivery)
    assert (row.machine_open_count, row.open_count, row.opened_at) == (1, 0, None)
    assert session.exec(select(TrackingEvent.machine)).one() is True


def test_a_machine_open_decides_nothing_about_the_person(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    week = 7 * 24 * 60
    d1, d2 = _weekly_deliveries(session, ann, 2)
    apply(session, settings, soft(d1, 0))
    before = fresh(session, ann)
    state = (before.status, before.soft_bounces, before.status_changed_at)
    entries = len(history(session, subscriber_id=ann.id))
    apply(session, settings, sg_event("open", d2, ANN, at=later(week), sg_machine_open=True))
    after = fresh(session, ann)
    assert (after.status, after.soft_bounces, after.status_changed_at) == state
    assert len(history(session, subscriber_id=ann.id)) == entries
    assert fresh(session, d2).opened_at is None


def test_a_deferral_changes_nothing_but_is_recorded(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(session, settings, sg_event("deferred", delivery, ANN, response="451 try later"))
    row = fresh(session, delivery)
    assert (row.delivered_at, row.bounce, fresh(session, ann).status) == (None, None, S.ACTIVE)
    assert session.exec(select(TrackingEvent.kind)).one() == "deferred"


# ---------------------------------------------------------------- what stops mail to a person


def test_a_hard_bounce_marks_the_person_bounced_and_suppresses_at_once(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    event = sg_event("bounce", delivery, ANN, type="bounce", reason="550 5.1.1 no such user")
    apply(session, settings, event)
    assert fresh(session, delivery).bounce == "hard"
    assert fresh(session, ann).status == S.BOUNCED
    assert suppressions(session) == [(ANN, "hard_bounce")]


def test_the_bounce_is_in_the_subscribers_history(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    event = sg_event("bounce", delivery, ANN, type="bounce", reason="550 5.1.1 no such user")
    apply(session, settings, event)
    last = history(session, subscriber_id=ann.id)[-1]
    assert (last.from_status, last.to_status, last.source) == ("active", "bounced", "provider")
    assert last.detail["event_id"] == event["sg_event_id"]
    assert last.detail["campaign_id"] == delivery.campaign_id
    assert last.detail["reason"] == "550 5.1.1 no such user"


def test_a_spam_complaint_marks_the_person_complained_and_suppresses(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(session, settings, sg_event("spamreport", delivery, ANN))
    assert fresh(session, delivery).complained is True
    assert fresh(session, ann).status == S.COMPLAINED
    assert suppressions(session) == [(ANN, "complaint")]


@pytest.mark.parametrize("event", ["unsubscribe", "group_unsubscribe"])
def test_an_unsubscribe_at_the_provider_unsubscribes_and_suppresses(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber, event: str
) -> None:
    apply(session, settings, sg_event(event, delivery, ANN, asm_group_id=42))
    assert fresh(session, delivery).unsubscribed is True
    assert fresh(session, ann).status == S.UNSUBSCRIBED
    assert suppressions(session) == [(ANN, "unsubscribe")]
    assert history(session, subscriber_id=ann.id)[-1].detail["event"] == event


def test_a_group_resubscribe_does_not_bring_anyone_back(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(
        session,
        settings,
        sg_event("group_unsubscribe", delivery, ANN, at=later(1)),
        sg_event("group_resubscribe", delivery, ANN, at=later(2)),
    )
    assert fresh(session, ann).status == S.UNSUBSCRIBED
    assert suppressions(session) == [(ANN, "unsubscribe")]


@pytest.mark.parametrize(
    ("reason", "status", "suppression"),
    [
        ("Bounced Address", S.BOUNCED, "hard_bounce"),
        ("Invalid", S.BOUNCED, "hard_bounce"),
        ("Spam Reporting Address", S.COMPLAINED, "complaint"),
        ("Unsubscribed Address", S.UNSUBSCRIBED, "unsubscribe"),
    ],
)
def test_a_drop_for_a_known_bad_address_stops_mail_to_it(
    session: Session,
    settings: Settings,
    delivery: Delivery,
    ann: Subscriber,
    reason: str,
    status: S,
    suppression: str,
) -> None:
    apply(session, settings, sg_event("dropped", delivery, ANN, reason=reason))
    assert fresh(session, ann).status == status
    assert suppressions(session) == [(ANN, suppression)]


def test_a_drop_for_another_reason_leaves_the_person_alone(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(session, settings, sg_event("dropped", delivery, ANN, reason="Invalid SMTPAPI header"))
    assert (fresh(session, ann).status, suppressions(session)) == (S.ACTIVE, [])


def test_a_complaint_after_an_unsubscribe_keeps_one_suppression(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(
        session,
        settings,
        sg_event("unsubscribe", delivery, ANN, at=later(1)),
        sg_event("spamreport", delivery, ANN, at=later(2)),
    )
    row = fresh(session, delivery)
    assert (row.unsubscribed, row.complained) == (True, True)
    assert len(suppressions(session)) == 1


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        ("unsubscribe", "spamreport", S.COMPLAINED),
        ("bounce", "spamreport", S.COMPLAINED),
        ("unsubscribe", "bounce", S.BOUNCED),
    ],
)
def test_the_stronger_stop_wins_whatever_the_arrival_order(
    session: Session,
    settings: Settings,
    delivery: Delivery,
    ann: Subscriber,
    first: str,
    second: str,
    status: S,
    reverse: bool,
) -> None:
    events = [
        sg_event(first, delivery, ANN, at=later(1), type="bounce"),
        sg_event(second, delivery, ANN, at=later(2), type="bounce"),
    ]
    for event in events[::-1] if reverse else events:
        apply(session, settings, event)
    assert fresh(session, ann).status == status


def test_the_complaint_is_in_the_subscribers_history(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    event = sg_event("spamreport", delivery, ANN)
    apply(session, settings, event)
    last = history(session, subscriber_id=ann.id)[-1]
    assert (last.from_status, last.to_status, last.source) == ("active", "complained", "provider")
    assert (last.detail["event"], last.detail["event_id"]) == ("spamreport", event["sg_event_id"])


def test_a_drop_for_a_bounced_address_is_in_the_history_with_its_reason(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(session, settings, sg_event("dropped", delivery, ANN, reason="Bounced Address"))
    last = history(session, subscriber_id=ann.id)[-1]
    assert (last.to_status, last.detail["event"], last.detail["reason"]) == (
        "bounced",
        "dropped",
        "Bounced Address",
    )


def test_a_drop_is_not_counted_as_a_bounce_of_the_delivery(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    apply(session, settings, sg_event("dropped", delivery, ANN, reason="Bounced Address"))
    assert fresh(session, delivery).bounce is None


# ---------------------------------------------------------------- soft bounces


def _weekly_deliveries(session: Session, ann: Subscriber, weeks: int) -> list[Delivery]:
    return [
        add_delivery(
            session, add_campaign(session, week=f"2026-W{40 + i}"), ann, message_id=f"msg-w{i}"
        )
        for i in range(weeks)
    ]


def soft(delivery: Delivery, minutes: int) -> dict[str, Any]:
    return sg_event(
        "bounce", delivery, ANN, type="blocked", at=later(minutes), reason="452 4.2.2 mailbox full"
    )


def test_a_soft_bounce_is_counted_but_does_not_stop_mail(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(session, settings, soft(delivery, 1))
    assert fresh(session, delivery).bounce == "soft"
    person = fresh(session, ann)
    assert (person.status, person.soft_bounces, suppressions(session)) == (S.ACTIVE, 1, [])


def test_soft_bounces_up_to_the_limit_in_a_row_suppress_the_address(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    week = 7 * 24 * 60
    deliveries = _weekly_deliveries(session, ann, settings.soft_bounce_limit)
    apply(session, settings, *[soft(d, i * week) for i, d in enumerate(deliveries)])
    assert fresh(session, ann).status == S.BOUNCED
    assert suppressions(session) == [(ANN, "soft_bounces")]


def test_one_soft_bounce_fewer_than_the_limit_keeps_the_address(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    week = 7 * 24 * 60
    deliveries = _weekly_deliveries(session, ann, settings.soft_bounce_limit - 1)
    apply(session, settings, *[soft(d, i * week) for i, d in enumerate(deliveries)])
    person = fresh(session, ann)
    assert (person.status, person.soft_bounces, suppressions(session)) == (
        S.ACTIVE,
        settings.soft_bounce_limit - 1,
        [],
    )


def test_the_soft_bounce_limit_is_a_setting(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    strict = settings.model_copy(update={"soft_bounce_limit": 1})
    (delivery,) = _weekly_deliveries(session, ann, 1)
    apply(session, strict, soft(delivery, 0))
    assert (fresh(session, ann).status, suppressions(session)) == (
        S.BOUNCED,
        [(ANN, "soft_bounces")],
    )


def test_two_soft_bounce_events_for_one_message_count_once(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    apply(session, settings, soft(delivery, 1), soft(delivery, 2))
    assert fresh(session, ann).soft_bounces == 1


def test_a_delivery_in_between_resets_the_soft_bounce_streak(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    week = 7 * 24 * 60
    d1, d2, d3 = _weekly_deliveries(session, ann, 3)
    apply(
        session,
        settings,
        soft(d1, 0),
        sg_event("delivered", d2, ANN, at=later(week)),
        soft(d3, 2 * week),
    )
    person = fresh(session, ann)
    assert (person.status, person.soft_bounces) == (S.ACTIVE, 1)


def test_a_late_report_of_an_older_delivery_does_not_reset_the_streak(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    week = 7 * 24 * 60
    d1, d2 = _weekly_deliveries(session, ann, 2)
    apply(session, settings, soft(d2, week), sg_event("delivered", d1, ANN, at=later(0)))
    assert fresh(session, ann).soft_bounces == 1


def test_a_hard_bounce_outranks_a_soft_one_whatever_the_order(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    hard = sg_event("bounce", delivery, ANN, type="bounce", at=later(1))
    apply(session, settings, hard, soft(delivery, 0))
    assert fresh(session, delivery).bounce == "hard"


# ---------------------------------------------------------------- matching


def test_without_custom_args_the_message_id_and_address_find_the_delivery(
    session: Session, settings: Settings, ann: Subscriber
) -> None:
    campaign = add_campaign(session)
    bob = add_subscriber(session, "bob@example.com")
    ann_delivery = add_delivery(session, campaign, ann, message_id="shared-request-id")
    bob_delivery = add_delivery(session, campaign, bob, message_id="shared-request-id")
    apply(session, settings, sg_event("open", bob_delivery, "Bob@Example.com", custom_args=False))
    assert (fresh(session, ann_delivery).open_count, fresh(session, bob_delivery).open_count) == (
        0,
        1,
    )


def test_custom_args_naming_someone_else_do_not_touch_that_person(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    result = apply(session, settings, sg_event("spamreport", delivery, "eve@example.com"))
    assert result.unmatched == 1
    assert (fresh(session, ann).status, fresh(session, delivery).complained) == (S.ACTIVE, False)


def test_a_bounce_of_a_message_outside_any_campaign_still_stops_the_address(
    session: Session, settings: Settings
) -> None:
    pending = add_subscriber(session, "new@example.com", status=S.PENDING)
    event = {
        "event": "bounce",
        "type": "bounce",
        "email": "new@example.com",
        "sg_event_id": "conf-1",
        "timestamp": int(T0.timestamp()),
        "sg_message_id": "confirmation-id.filterdrecv-1",
    }
    apply(session, settings, event)
    assert fresh(session, pending).status == S.BOUNCED


def test_an_event_of_an_unknown_campaign_is_stored_and_harms_nothing(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    event = sg_event(
        "bounce",
        delivery,
        "stranger@example.com",
        type="bounce",
        nl_campaign_id="999",
        nl_subscriber_id="999",
        nl_delivery_id="999",
    )
    result = apply(session, settings, event)
    assert (result.applied, result.unmatched) == (1, 1)
    assert (fresh(session, ann).status, suppressions(session)) == (S.ACTIVE, [])
    stored = session.exec(select(TrackingEvent)).one()
    assert (stored.delivery_id, stored.campaign_id, stored.payload["nl_campaign_id"]) == (
        None,
        None,
        "999",
    )


def test_an_event_of_an_unknown_campaign_is_logged(
    session: Session,
    settings: Settings,
    delivery: Delivery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = sg_event(
        "open",
        delivery,
        "stranger@example.com",
        event_id="stray-1",
        nl_campaign_id="999",
        nl_subscriber_id="999",
        nl_delivery_id="999",
    )
    with caplog.at_level(logging.INFO, logger="campaigns.tracking.effects"):
        apply(session, settings, event)
    assert "tracking: open event stray-1 matches nothing of ours" in caplog.messages


def test_an_unknown_event_type_is_logged(
    session: Session,
    settings: Settings,
    delivery: Delivery,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="campaigns.delivery.providers.sendgrid_events"):
        apply(session, settings, sg_event("account_review", delivery, ANN))
    assert "sendgrid webhook: unknown event type 'account_review'" in caplog.messages


def test_an_unknown_event_type_is_stored_with_its_name_and_changes_nothing(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    result = apply(session, settings, sg_event("account_review", delivery, ANN))
    assert result.unknown == 1
    stored = session.exec(select(TrackingEvent)).one()
    assert (stored.kind, stored.raw_event) == ("unknown", "account_review")
    assert fresh(session, ann).status == S.ACTIVE


def test_events_for_an_erased_subscriber_still_count_for_the_campaign(
    session: Session, settings: Settings, delivery: Delivery, ann: Subscriber
) -> None:
    session.delete(fresh(session, ann))
    session.commit()
    apply(session, settings, sg_event("open", delivery, ANN, nl_subscriber_id=None))
    assert fresh(session, delivery).open_count == 1


def test_stored_events_carry_our_words_and_the_providers_name(
    session: Session, settings: Settings, delivery: Delivery
) -> None:
    apply(
        session,
        settings,
        sg_event("processed", delivery, ANN, at=later(0)),
        sg_event("open", delivery, ANN, at=later(1), sg_machine_open=True),
        soft(delivery, 2),
        sg_event("spamreport", delivery, ANN, at=later(3)),
        sg_event("group_unsubscribe", delivery, ANN, at=later(4)),
    )
    stored = session.exec(
        select(TrackingEvent.kind, TrackingEvent.raw_event, TrackingEvent.machine).order_by(
            TrackingEvent.occurred_at
        )
    ).all()
    assert stored == [
        ("queued", "processed", False),
        ("opened", "open", True),
        ("bounced", "bounce", False),
        ("complained", "spamreport", False),
        ("unsubscribed", "group_unsubscribe", False),
    ]
    assert fresh(session, delivery).bounce == "soft"  # the soft bounce's flag, kept on its row
