"""Topics and pauses, chosen by the subscriber on the preferences page.

Topics on a health newsletter can reveal a condition (GDPR art. 9), so they need their
own explicit consent (``settings.topics_consent_text``), are optional (no topics means
"everything"), and withdrawing that consent clears them. Assembly and sending read
``Subscriber.topics`` (snippet category slugs) and ``Subscriber.paused_until``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlmodel import Session

from newsletter.clock import utcnow
from newsletter.errors import ConsentError, InvalidInput, StateError
from newsletter.settings import Settings
from subscribers import atomic, lifecycle
from subscribers.models import ConsentSource, Subscriber, SubscriberStatus, TrackingOptOut


def is_paused(subscriber: Subscriber, *, today: date) -> bool:
    return subscriber.paused_until is not None and subscriber.paused_until > today


def wants(subscriber: Subscriber, *, category: str) -> bool:
    """Does the subscriber want snippets of ``category``? No topics chosen: everything."""
    return not subscriber.topics or category in subscriber.topics


def parse_pause_weeks(raw: str | int | None, *, settings: Settings) -> int:
    if raw is None or raw == "":
        return 0
    try:
        weeks = int(raw)
    except (TypeError, ValueError) as err:
        raise InvalidInput(
            "the pause must be a whole number of weeks", field="pause_weeks"
        ) from err
    if not 0 <= weeks <= settings.max_pause_weeks:
        raise InvalidInput(
            f"the pause must be between 0 and {settings.max_pause_weeks} weeks",
            field="pause_weeks",
        )
    return weeks


def update_preferences(
    session: Session,
    *,
    settings: Settings,
    subscriber_id: int,
    topics: Sequence[str],
    topics_consent: bool,
    pause_weeks: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    source: ConsentSource = ConsentSource.FORM,
    now: datetime | None = None,
    do_not_track: bool | None = None,
) -> Subscriber:
    """Set topics (with their separate consent) and pause; ``pause_weeks`` 0 resumes,
    None leaves the pause as it is; ``do_not_track`` (issue 15) True: plain links and no
    open pixel from the next newsletter on, None leaves it as it is.

    The row is taken first (atomic.lock_subscriber), so a concurrent unsubscribe either
    lands before (StateError here) or after this history row, never under it.
    """
    subscriber = atomic.lock_subscriber(session, subscriber_id=subscriber_id)
    if subscriber.status != SubscriberStatus.ACTIVE:
        raise StateError("only a confirmed subscriber can change preferences")
    chosen = sorted(dict.fromkeys(t.strip() for t in topics if t.strip()))
    unknown = [t for t in chosen if t not in settings.topics]
    if unknown:
        raise InvalidInput(
            f"unknown topic(s) {', '.join(repr(t) for t in unknown)}; "
            f"choose from {', '.join(settings.topics)}",
            field="topics",
        )
    if chosen and not topics_consent:
        raise ConsentError(
            "to tailor the newsletter to topics, please tick the consent box for topics"
        )
    now = now or utcnow()
    if pause_weeks is not None:
        if not 0 <= pause_weeks <= settings.max_pause_weeks:
            raise InvalidInput(
                f"the pause must be between 0 and {settings.max_pause_weeks} weeks",
                field="pause_weeks",
            )
        subscriber.paused_until = now.date() + timedelta(weeks=pause_weeks) if pause_weeks else None

    detail: dict[str, object] = {"paused_until": _iso(subscriber.paused_until)}
    if do_not_track is not None and do_not_track != tracking_refused(session, subscriber_id):
        _set_tracking_refused(session, subscriber_id, do_not_track, now)
        detail["do_not_track"] = do_not_track
    if chosen != list(subscriber.topics or []):
        detail["topics"] = chosen
    consent_version = None
    if chosen:
        if subscriber.topics_consent_version != settings.topics_consent_version or (
            chosen != list(subscriber.topics or [])
        ):
            subscriber.topics_consented_at = now
        subscriber.topics_consent_version = settings.topics_consent_version
        consent_version = settings.topics_consent_version
        detail["topics_consent_text"] = settings.topics_consent_text
    else:
        subscriber.topics_consent_version = None
        subscriber.topics_consented_at = None
    subscriber.topics = chosen
    session.add(subscriber)
    lifecycle.record_event(
        session,
        subscriber,
        reason="preferences updated"
        if chosen or subscriber.paused_until
        else "preferences cleared",
        source=source,
        ip=ip,
        user_agent=user_agent,
        consent_version=consent_version,
        detail=detail,
        at=now,
    )
    return subscriber


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def tracking_refused(session: Session, subscriber_id: int) -> bool:
    """Whether the reader asked not to be tracked (issue 15: plain links, no pixel)."""
    return session.get(TrackingOptOut, subscriber_id) is not None


def _set_tracking_refused(
    session: Session, subscriber_id: int, refused: bool, now: datetime
) -> None:
    row = session.get(TrackingOptOut, subscriber_id)
    if refused and row is None:
        session.add(TrackingOptOut(subscriber_id=subscriber_id, created_at=now))
    elif not refused and row is not None:
        session.delete(row)
    session.flush()
