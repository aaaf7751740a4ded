"""What a posted subscriber form means: the rules of the sign-up, unsubscribe and
preferences forms.

A door reads the request into a :class:`PostedForm` (size-capped, no files) and calls one
function here; the answer says what to show. A refusal the reader can fix (a bad
address, a missing tick) comes back as ``errors`` to show beside the form again, not as
an exception: only errors that end the request (a bad link, a provider or database
fault) are raised, for the door's error map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from sqlmodel import Session, col, delete

from newsletter import db
from newsletter.errors import ChallengeFailed, ConsentError, InvalidInput, NotFound, StateError
from newsletter.mail import Mailer
from newsletter.settings import Settings
from newsletter.timezones import optional_timezone
from subscribers import challenge, lifecycle, preferences, signup
from subscribers.addresses import email_hash
from subscribers.models import (
    ConfirmationSend,
    ConsentEvent,
    ConsentSource,
    Subscriber,
    SubscriberStatus,
)
from subscribers.pages import sentence

# Issue 16: "timezone" is filled by our script from the browser (Intl API), hidden;
# "timezone_choice" is the <select> a reader may use instead (it wins when chosen).
TIMEZONE_FIELDS = frozenset({"timezone", "timezone_choice"})
SIGN_UP_FIELDS = (
    frozenset({"email", "name", "consent", "website", challenge.FIELD}) | TIMEZONE_FIELDS
)
PREFERENCES_FIELDS = frozenset(
    {"topics", "topics_consent", "pause_weeks", "timezone_choice", "do_not_track"}
)
TIMEZONE_UNKNOWN = "Please choose your time zone from the list."
# A field people never see (hidden by CSS and aria-hidden) that form-filling bots fill in.
HONEYPOT = "website"
CONSENT_MISSING = "Please tick the box to confirm that you want the newsletter."
# RFC 8058 3.1: a mailbox provider's one-click POST carries "List-Unsubscribe=One-Click".
ONE_CLICK = b"One-Click"


@dataclass(frozen=True)
class PostedForm:
    """A posted form: each field name with every value sent, in order.

    ``problem`` says why the body could not be read as a form (then ``fields`` is empty).
    """

    fields: Mapping[str, Sequence[str]] = field(default_factory=dict)
    problem: str | None = None

    def first(self, name: str) -> str:
        """The first value of ``name``; "" when it was not sent."""
        values = self.fields.get(name)
        return values[0] if values else ""


@dataclass(frozen=True)
class SignUpForm:
    """The sign-up form's answer. No ``errors``: show "check your inbox", whether the
    address was new, known, or the post came from a bot (the answer never tells)."""

    values: dict[str, str]
    errors: list[str]


@dataclass(frozen=True)
class PreferencesForm:
    """The preferences form's answer: the subscriber to show it for, the topics to tick
    (None: the stored ones), errors to show, and whether the change was saved."""

    subscriber: Subscriber
    chosen: list[str] | None = None
    errors: list[str] = field(default_factory=list)
    saved: bool = False
    do_not_track: bool = False  # issue 15: the reader's "do not track me" box


def _form_errors(form: PostedForm, expected: frozenset[str]) -> list[str]:
    """An unreadable body or fields this form does not have: refuse, name at most five."""
    if form.problem is not None:
        return [f"The form could not be read: {form.problem}."]
    unknown = sorted(set(form.fields) - expected)
    if not unknown:
        return []
    names = ", ".join(repr(n[:40]) for n in unknown[:5])
    return [f"The form contained unexpected field(s) {names}; please use this form."]


def sign_up_from_form(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer,
    form: PostedForm,
    ip: str | None = None,
    user_agent: str | None = None,
) -> SignUpForm:
    """The sign-up form: only its own fields; when ``settings.signup_challenge`` is on, a
    proof of work solved once (:func:`challenge.redeem`, the ALTCHA protocol); the
    honeypot filled means a bot, answered like a success and otherwise ignored; the
    consent box must be ticked (GDPR art. 7: consent is a clear affirmative act); then
    double opt-in (:func:`signup.sign_up`).

    A challenge is spent even when the sign-up is then refused (its mark stays in the
    transaction). Raises ProviderError when ``mailer`` sends at once and fails.
    """
    values = {name: form.first(name) for name in SIGN_UP_FIELDS if name in form.fields}
    values.pop(challenge.FIELD, None)  # never shown back: a new check is solved each time
    errors = _form_errors(form, SIGN_UP_FIELDS)
    if errors:
        return SignUpForm(values, errors)
    if settings.signup_challenge:
        try:
            challenge.redeem(session, settings=settings, payload=form.first(challenge.FIELD))
        except ChallengeFailed as err:
            return SignUpForm(values, [sentence(err.reason)])
    if values.get(HONEYPOT):
        return SignUpForm(values, [])
    if values.get("consent") != "yes":
        return SignUpForm(values, [CONSENT_MISSING])
    try:
        zone = zone_from_form(form)
    except InvalidInput:
        return SignUpForm(values, [TIMEZONE_UNKNOWN])
    try:
        with db.savepoint(session):  # a refused address keeps nothing of the sign-up
            signup.sign_up(
                session,
                settings=settings,
                mailer=mailer,
                email=values.get("email", ""),
                name=values.get("name"),
                source=ConsentSource.FORM,
                ip=ip,
                user_agent=user_agent,
                timezone=zone,
            )
    except InvalidInput as err:
        return SignUpForm(values, [sentence(err.reason)])
    return SignUpForm(values, [])


def zone_from_form(form: PostedForm) -> str | None:
    """The reader's zone (issue 16): the one chosen in the select, else the browser's.

    A browser's value that is not an IANA name (an old browser, a bot) is dropped: the
    reader then gets the list's zone. A chosen one that is not raises InvalidInput.
    """
    chosen = optional_timezone(form.first("timezone_choice"), field="timezone_choice")
    if chosen is not None:
        return chosen
    try:
        return optional_timezone(form.first("timezone"))
    except InvalidInput:
        return None


def confirmation_not_sent(session: Session, *, email: str) -> None:
    """Undo what a sign-up kept when its confirmation, sent after the answer, failed, so
    the reader's next try sends one at once.

    A first sign-up (one history event) is deleted with its history: we hold no consent
    for the address, as when a sign-up expires (subscribers.housekeeping). A repeated or
    returning one stays pending but forgets when a confirmation was sent, so the resend
    throttle does not hold the next try back.
    """
    subscriber = lifecycle.find_by_email(session, email=email)
    if subscriber is None or subscriber.status != SubscriberStatus.PENDING:
        return
    assert subscriber.id is not None
    if subscriber.confirmation_sent_at is not None:
        # The mail never went: it does not count toward the address's confirmation caps.
        session.exec(
            delete(ConfirmationSend).where(
                col(ConfirmationSend.email_hash) == email_hash(subscriber.email),
                col(ConfirmationSend.sent_at) >= subscriber.confirmation_sent_at,
            )
        )
    if len(lifecycle.history(session, subscriber_id=subscriber.id)) <= 1:
        session.exec(delete(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
        session.delete(subscriber)
    else:
        subscriber.confirmation_sent_at = None
        session.add(subscriber)
    session.flush()


def already_unsubscribed(session: Session, *, subscriber_id: int) -> bool:
    """Whether an unsubscribe link's person is already not mailed: gone (erased, an
    expired sign-up) or no longer active or pending (left, bounced, complained)."""
    subscriber = session.get(Subscriber, subscriber_id)
    return subscriber is None or subscriber.status not in (
        SubscriberStatus.ACTIVE,
        SubscriberStatus.PENDING,
    )


def unsubscribe_by_link(
    session: Session,
    *,
    subscriber_id: int,
    posted: bytes = b"",
    ip: str | None = None,
    user_agent: str | None = None,
    campaign_id: int | None = None,
) -> None:
    """The unsubscribe link's POST: the form button and RFC 8058 one-click alike.

    The signed link is the authority; ``posted`` (the body, b"" when too large) only
    tells whether a mailbox provider sent it. A subscriber who is gone (erased, or an
    expired sign-up) is already not mailed, which is what was asked: not an error.
    ``campaign_id`` (signed in the link of a newsletter) goes into the history's detail:
    the campaign report counts who left through that issue (campaigns.reports.figures).
    """
    detail: dict[str, object] = {"one_click": ONE_CLICK in posted}
    if campaign_id is not None:
        detail["campaign_id"] = campaign_id
    with suppress(NotFound):
        lifecycle.unsubscribe(
            session,
            subscriber_id=subscriber_id,
            source=ConsentSource.FORM,
            reason="unsubscribed by link",
            ip=ip,
            user_agent=user_agent,
            detail=detail,
        )


def active_subscriber(session: Session, *, subscriber_id: int) -> Subscriber:
    """The subscriber a preferences link opens; StateError when they left or were erased
    (there is nothing to change then)."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.ACTIVE:
        raise StateError("only a confirmed subscriber can change preferences")
    return subscriber


def preferences_of(session: Session, *, subscriber_id: int) -> PreferencesForm:
    """The preferences form as stored (StateError as :func:`active_subscriber`)."""
    subscriber = active_subscriber(session, subscriber_id=subscriber_id)
    refused = preferences.tracking_refused(session, subscriber_id)
    return PreferencesForm(subscriber, do_not_track=refused)


def pause_weeks(raw: str, *, settings: Settings) -> int | None:
    """The pause field: "" keeps the pause as it is (the form's first option), "0"
    resumes, n pauses for n weeks; InvalidInput otherwise."""
    if raw == "":
        return None
    return preferences.parse_pause_weeks(raw, settings=settings)


def save_preferences(
    session: Session,
    *,
    settings: Settings,
    subscriber_id: int,
    form: PostedForm,
    ip: str | None = None,
    user_agent: str | None = None,
) -> PreferencesForm:
    """The preferences form: ticked ``topics`` with their own consent box
    (``topics_consent`` = "yes", GDPR art. 9), ``pause_weeks`` and ``timezone_choice``
    (an IANA name, "" for the list's; issue 16).

    Raises StateError when the subscriber is no longer active.
    """
    subscriber = active_subscriber(session, subscriber_id=subscriber_id)
    chosen = None if form.problem else list(form.fields.get("topics", []))
    errors = _form_errors(form, PREFERENCES_FIELDS)
    do_not_track = form.first("do_not_track") == "yes"
    if errors:
        return PreferencesForm(subscriber, chosen, errors, do_not_track=do_not_track)
    try:
        zone = optional_timezone(form.first("timezone_choice"), field="time zone")
        updated = preferences.update_preferences(
            session,
            settings=settings,
            subscriber_id=subscriber_id,
            topics=chosen or [],
            topics_consent=form.first("topics_consent") == "yes",
            pause_weeks=pause_weeks(form.first("pause_weeks"), settings=settings),
            ip=ip,
            user_agent=user_agent,
            do_not_track=do_not_track,
        )
        if "timezone_choice" in form.fields:  # issue 16: "" = the list's zone
            updated.timezone = zone
            session.add(updated)
    except (InvalidInput, ConsentError) as err:
        session.rollback()  # the session holds only this change: keep none of it
        reason = err.reason if isinstance(err, InvalidInput) else str(err)
        return PreferencesForm(subscriber, chosen, [sentence(reason)], do_not_track=do_not_track)
    return PreferencesForm(subscriber, saved=True, do_not_track=do_not_track)
