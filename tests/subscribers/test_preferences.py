"""Topics need their own consent and are optional; pauses set paused_until."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session

from newsletter.clock import utcnow
from newsletter.errors import ConsentError, InvalidInput, StateError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from subscribers.preferences import is_paused, parse_pause_weeks, update_preferences, wants
from tests.support.subscribers import make_subscriber, sqlite_only


def update(session: Session, settings: Settings, subscriber: Subscriber, **kwargs: object):
    values: dict[str, object] = {"topics": [], "topics_consent": False}
    values.update(kwargs)
    result = update_preferences(session, settings=settings, subscriber_id=subscriber.id, **values)  # type: ignore[arg-type]
    session.commit()
    return result


def test_topics_with_consent_are_stored_with_its_version(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session)
    update(session, settings, subscriber, topics=["sciatica", "back-pain"], topics_consent=True)
    stored = session.get(Subscriber, subscriber.id)
    assert stored.topics == ["back-pain", "sciatica"]
    assert stored.topics_consent_version == settings.topics_consent_version
    assert stored.topics_consented_at is not None


def test_topics_consent_is_recorded_in_history(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    update(session, settings, subscriber, topics=["sciatica"], topics_consent=True, ip="192.0.2.5")
    last = lifecycle.history(session, subscriber_id=subscriber.id)[-1]
    assert (last.reason, last.consent_version, last.ip, last.detail) == (
        "preferences updated",
        settings.topics_consent_version,
        "192.0.2.5",
        {
            "topics": ["sciatica"],
            "paused_until": None,
            "topics_consent_text": settings.topics_consent_text,
        },
    )


@sqlite_only
def test_topics_without_their_consent_are_refused(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    with pytest.raises(ConsentError, match="tick the consent box for topics"):
        update(session, settings, subscriber, topics=["sciatica"], topics_consent=False)
    assert session.get(Subscriber, subscriber.id).topics == []


@sqlite_only
def test_unknown_topic_is_refused_naming_it(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    with pytest.raises(InvalidInput) as caught:
        update(session, settings, subscriber, topics=["cancer"], topics_consent=True)
    assert caught.value.reason == (
        "unknown topic(s) 'cancer'; choose from back-pain, sciatica, leg-cramps"
    )


def test_clearing_topics_withdraws_their_consent(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    update(session, settings, subscriber, topics=["sciatica"], topics_consent=True)
    update(session, settings, subscriber, topics=[], topics_consent=False)
    stored = session.get(Subscriber, subscriber.id)
    assert (stored.topics, stored.topics_consent_version, stored.topics_consented_at) == (
        [],
        None,
        None,
    )


def test_pause_sets_paused_until(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    update(session, settings, subscriber, pause_weeks=4)
    expected = utcnow().date() + timedelta(weeks=4)
    assert session.get(Subscriber, subscriber.id).paused_until == expected


@sqlite_only
def test_pause_zero_resumes(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    update(session, settings, subscriber, pause_weeks=4)
    update(session, settings, subscriber, pause_weeks=0)
    assert session.get(Subscriber, subscriber.id).paused_until is None


@sqlite_only
def test_pause_none_keeps_the_pause(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    update(session, settings, subscriber, pause_weeks=2)
    update(session, settings, subscriber, pause_weeks=None)
    assert session.get(Subscriber, subscriber.id).paused_until is not None


@sqlite_only
def test_pause_longer_than_allowed_is_refused(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    with pytest.raises(InvalidInput, match="between 0 and 12 weeks"):
        update(session, settings, subscriber, pause_weeks=13)


@sqlite_only
def test_only_active_subscribers_change_preferences(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session, status="unsubscribed")
    with pytest.raises(StateError):
        update(session, settings, subscriber, pause_weeks=1)


@sqlite_only
@pytest.mark.parametrize(("raw", "weeks"), [(None, 0), ("", 0), ("3", 3), (2, 2)])
def test_parse_pause_weeks(settings: Settings, raw: object, weeks: int) -> None:
    assert parse_pause_weeks(raw, settings=settings) == weeks  # type: ignore[arg-type]


@sqlite_only
def test_parse_pause_weeks_refuses_words(settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="whole number of weeks"):
        parse_pause_weeks("forever", settings=settings)


def test_is_paused_until_the_day_it_ends() -> None:
    subscriber = Subscriber(email="a@example.com", paused_until=date(2026, 12, 10))
    assert is_paused(subscriber, today=date(2026, 12, 9))
    assert not is_paused(subscriber, today=date(2026, 12, 10))


def test_no_topics_means_every_category() -> None:
    assert wants(Subscriber(email="a@example.com", topics=[]), category="sciatica")


def test_chosen_topics_filter_categories() -> None:
    subscriber = Subscriber(email="a@example.com", topics=["back-pain"])
    assert (wants(subscriber, category="back-pain"), wants(subscriber, category="sciatica")) == (
        True,
        False,
    )
