"""Events in bulk (issue 12.5): a request of many events is applied with set-based
statements, and ends exactly as applying its events one at a time in arrival order would:
same ledger, same people, same suppressions, same history, same counts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.providers.sendgrid_events import normalise_event
from campaigns.models import Delivery, TrackingEvent
from campaigns.tracking import effects
from campaigns.tracking.effects import ApplyResult, apply_events
from newsletter import db
from newsletter.settings import Settings
from subscribers.models import ConsentEvent, Subscriber, SubscriberStatus, Suppression
from tests.conftest import _postgres_schema_url, make_settings
from tests.support.delivery import add_subscribers
from tests.support.tracking import add_campaign, add_delivery, add_subscriber, later, sg_event

WEEK = 7 * 24 * 60
PEOPLE = 10


@pytest.fixture
def twin(database_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Engine]]:
    """A second empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'twin.db'}"])
    else:
        urls = _postgres_schema_url()
    url = next(urls)
    cfg = make_settings(url, tmp_path)
    engine = db.get_engine(cfg.database_url)
    db.upgrade(engine)
    yield cfg, engine
    db.dispose_engine(cfg.database_url)
    for _ in urls:  # the PostgreSQL schema is dropped after its generator resumes
        pass


def populate(engine: Engine) -> list[Delivery]:
    """Ten readers p0..p9 (ids 1..10), four weekly campaigns to each, one pending sign-up;
    the same ids in every fresh database."""
    with Session(engine, expire_on_commit=False) as session:
        people = [add_subscriber(session, f"p{i}@example.com") for i in range(PEOPLE)]
        add_subscriber(session, "new@example.com", status=SubscriberStatus.PENDING)
        deliveries = []
        for week in range(4):
            campaign = add_campaign(session, week=f"2026-W{40 + week}")
            for person in people:
                deliveries.append(add_delivery(session, campaign, person, message_id=f"req-{week}"))
    return deliveries


class Events:
    """Builds SendGrid events with ids unique to one scenario, in the order added."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.events: list[dict[str, Any]] = []
        self._serial = iter(range(1_000_000))

    def add(self, kind: str, delivery: Delivery, minutes: int, **extra: Any) -> None:
        email = extra.pop("email", f"p{(delivery.subscriber_id or 1) - 1}@example.com")
        event_id = f"s{self.seed}-{next(self._serial)}"
        self.events.append(
            sg_event(kind, delivery, email, at=later(minutes), event_id=event_id, **extra)
        )

    def soft(self, delivery: Delivery, minutes: int) -> None:
        self.add("bounce", delivery, minutes, type="blocked", reason="452 mailbox full")


def weekly(e: Events, delivery: Delivery) -> None:
    """One message's life: processed, bounced or delivered, opened, clicked."""
    rng = e.rng
    week = (delivery.campaign_id - 1) * WEEK
    person = (delivery.subscriber_id or 1) - 1
    e.add("processed", delivery, week)
    if person in (8, 9):
        pass  # their streaks come at the end, in arrival order
    elif person in (0, 1, 2) or (person == 3 and rng.random() < 0.5):
        e.soft(delivery, week + 5)
        if rng.random() < 0.3:  # the same message reported twice
            e.soft(delivery, week + 9)
    else:
        e.add("delivered", delivery, week + rng.randint(1, 30))
    for _ in range(rng.randint(0, 3)):
        e.add("open", delivery, week + rng.randint(30, 900), sg_machine_open=rng.random() < 0.3)
    if rng.random() < 0.4:
        e.add("click", delivery, week + rng.randint(60, 999), url="https://example.com/a")
    if rng.random() < 0.3:
        e.add("open", delivery, week + rng.randint(30, 900), custom_args=False)


def stops_and_strangers(e: Events, deliveries: list[Delivery]) -> None:
    e.add("bounce", deliveries[4], 50, type="bounce", reason="550 5.1.1 no such user")
    e.add("spamreport", deliveries[5], 70)
    e.add("unsubscribe", deliveries[6], 80)
    e.add("group_unsubscribe", deliveries[16], WEEK + 80)
    e.add("dropped", deliveries[7], 90, reason="Bounced Address")
    e.add("dropped", deliveries[8], 95, reason="Invalid SMTPAPI header")
    e.add("account_review", deliveries[9], 99)
    e.add("bounce", deliveries[9], 100, type="bounce", email="stranger@example.com")
    ours = {"nl_campaign_id": "999", "nl_subscriber_id": "999", "nl_delivery_id": "999"}
    e.add("spamreport", deliveries[9], 101, email="nobody@example.com", **ours)
    e.add("bounce", deliveries[9], 102, type="bounce", email="new@example.com", custom_args=False)


def streaks(e: Events, deliveries: list[Delivery]) -> None:
    """p8: soft bounce, delivery, soft bounce, delivery, a week apart, one after the other:
    each delivery resets the streak, whichever chunk the events fall in (ends at 0).
    p9: three soft bounces in a row stop the address; the delivery reported after them
    (a week later) must not undo that, nor hide the earlier bounces."""
    for week, delivery in enumerate(d for d in deliveries if d.subscriber_id == 9):
        if week % 2 == 0:
            e.soft(delivery, week * WEEK + 5)
        else:
            e.add("delivered", delivery, week * WEEK + 5)
    for week, delivery in enumerate(d for d in deliveries if d.subscriber_id == 10):
        if week < 3:
            e.soft(delivery, week * WEEK + 5)
        else:
            e.add("delivered", delivery, week * WEEK + 5)


def scenario(deliveries: list[Delivery], seed: int) -> list[dict[str, Any]]:
    """A shuffled mix of every kind of event, with soft-bounce streaks, resets, stops,
    repeats, strangers and events that lack our ids."""
    e = Events(seed)
    for delivery in deliveries:
        weekly(e, delivery)
    stops_and_strangers(e, deliveries)
    e.rng.shuffle(e.events)
    streaks(e, deliveries)
    repeats = [dict(x) for x in e.rng.sample(e.events, 12)]  # SendGrid retried some
    for event in repeats:
        e.events.insert(e.rng.randrange(len(e.events)), event)
    return e.events


def state(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything events can change, without ids the databases hand out on their own."""
    d, s, c, x, t = (
        Delivery.__table__,
        Subscriber.__table__,
        ConsentEvent.__table__,
        Suppression.__table__,
        TrackingEvent.__table__,
    )
    queries = {
        "delivery": sa.select(d).order_by(d.c.id),
        "subscriber": sa.select(s.c.id, s.c.email, s.c.status, s.c.soft_bounces).order_by(s.c.id),
        "consent": sa.select(
            c.c.subscriber_id, c.c.from_status, c.c.to_status, c.c.reason, c.c.source, c.c.detail
        ).order_by(c.c.id),
        "suppression": sa.select(x.c.email, x.c.reason).order_by(x.c.email),
        "events": sa.select(
            t.c.event_id,
            t.c.kind,
            t.c.raw_event,
            t.c.campaign_id,
            t.c.subscriber_id,
            t.c.delivery_id,
            t.c.machine,
            t.c.occurred_at,
            t.c.payload,
        ).order_by(t.c.id),
    }
    with engine.connect() as connection:
        return {name: [tuple(r) for r in connection.execute(q)] for name, q in queries.items()}


def total(results: list[ApplyResult]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for result in results:
        for key, value in result.to_dict().items():
            sums[key] = sums.get(key, 0) + value
    return sums


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_ends_as_one_event_at_a_time(
    settings: Settings,
    engine: Engine,
    twin: tuple[Settings, Engine],
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    twin_settings, twin_engine = twin
    events = [normalise_event(e) for e in scenario(populate(engine), seed)]
    populate(twin_engine)

    monkeypatch.setattr(effects, "CHUNK", 37)  # several chunks, cut anywhere
    with Session(engine) as session:
        bulk = apply_events(session, settings=settings, events=events)
        session.commit()
    one_by_one = []
    with Session(twin_engine) as session:
        for event in events:
            one_by_one.append(apply_events(session, settings=twin_settings, events=[event]))
            session.commit()

    assert bulk.to_dict() == total(one_by_one)
    bulk_state, single_state = state(engine), state(twin_engine)
    assert bulk_state == single_state
    # The scenario reaches what it is meant to: stops of every kind, a soft-bounce streak.
    stopped = {(email, status) for _, email, status, _ in bulk_state["subscriber"]}
    assert {
        ("p0@example.com", "bounced"),
        ("p4@example.com", "bounced"),
        ("p5@example.com", "complained"),
        ("p6@example.com", "unsubscribed"),
        ("new@example.com", "bounced"),
        ("p9@example.com", "bounced"),
    } <= stopped
    assert ("p0@example.com", "soft_bounces") in bulk_state["suppression"]
    assert [n for _, email, _, n in bulk_state["subscriber"] if email == "p8@example.com"] == [0]
    assert bulk.duplicates >= 12 and bulk.unmatched >= 2 and bulk.unknown == 1


def test_a_large_request_takes_a_bounded_number_of_statements(
    settings: Settings, engine: Engine
) -> None:
    """Set-based: statements per chunk, not per event (5 per event before issue 12)."""
    readers = 1000
    add_subscribers(engine, readers)
    with Session(engine, expire_on_commit=False) as session:
        campaign = add_campaign(session)
    d = Delivery.__table__
    with engine.begin() as connection:
        connection.execute(
            sa.insert(d).from_select(
                ["campaign_id", "subscriber_id", "status", "attempts", "open_count",
                 "machine_open_count", "click_count", "complained", "unsubscribed"],
                sa.select(
                    sa.literal(campaign.id), Subscriber.__table__.c.id, sa.literal("sent"),
                    sa.literal(1), sa.literal(0), sa.literal(0), sa.literal(0), sa.false(),
                    sa.false(),
                ),
            )
        )  # fmt: skip
    with Session(engine) as session:
        deliveries = list(session.exec(sa.select(Delivery)).scalars())
    raw = []
    for delivery in deliveries:
        email = f"user{delivery.subscriber_id}@example.com"
        raw += [
            sg_event("processed", delivery, email, at=later(0)),
            sg_event("delivered", delivery, email, at=later(1)),
            sg_event("open", delivery, email, at=later(30)),
            sg_event("open", delivery, email, at=later(40), sg_machine_open=True),
            sg_event("click", delivery, email, at=later(50), url="https://example.com/a"),
        ]
    events = [normalise_event(e) for e in raw]
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        with Session(engine) as session:
            result = apply_events(session, settings=settings, events=events)
            session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    assert (result.applied, result.unmatched, result.failed) == (5 * readers, 0, 0)
    assert len(statements) <= 30, len(statements)
    with Session(engine) as session:
        counts = session.execute(
            sa.select(
                sa.func.sum(d.c.open_count),
                sa.func.sum(d.c.machine_open_count),
                sa.func.sum(d.c.click_count),
                sa.func.count(d.c.delivered_at),
            )
        ).one()
    assert tuple(counts) == (readers, readers, readers, readers)


def test_times_are_stored_as_the_database_stores_them_everywhere_else(
    settings: Settings, engine: Engine
) -> None:
    """Written in bulk, a time must equal the same time bound the usual way, or SQL that
    compares them (earliest times, reports by period) goes wrong; on SQLite they are text
    of one format ('2026-11-24 09:01:00.000000')."""
    with Session(engine, expire_on_commit=False) as session:
        delivery = add_delivery(
            session, add_campaign(session), add_subscriber(session, "p0@example.com")
        )
        apply_events(
            session,
            settings=settings,
            events=[
                normalise_event(sg_event("delivered", delivery, "p0@example.com", at=later(1)))
            ],
        )
        session.commit()
    d, t = Delivery.__table__, TrackingEvent.__table__
    with engine.connect() as connection:
        for column in (d.c.delivered_at, t.c.occurred_at):
            same = sa.select(sa.func.count()).where(
                column == sa.bindparam("at", later(1), type_=column.type)
            )
            assert connection.execute(same).scalar_one() == 1, column
        earlier = sa.select(sa.func.count()).where(
            t.c.received_at > sa.bindparam("at", later(0), type_=t.c.received_at.type)
        )
        assert connection.execute(earlier).scalar_one() == 1
