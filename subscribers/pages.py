"""HTML for the subscriber pages (templates/web), so the web door only wires requests.

Each function returns a finished page; the door picks the status code (for an error,
from its one error map, web/errors.py) and :meth:`Pages.error` says what the reader sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from newsletter.clock import utcnow
from newsletter.errors import (
    ConfigError,
    DatabaseError,
    LinkNotFound,
    NewsletterError,
    NotFound,
    PageNotFound,
    PayloadTooLarge,
    ProviderError,
    RateLimited,
    StateError,
    TokenError,
    TokenExpired,
)
from newsletter.settings import Settings
from newsletter.templating import Templates, brand_context
from newsletter.timezones import COMMON_ZONES
from subscribers.emails import WEEKDAYS
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, Tokens

BACK_TO_FORM = {"url": "/subscribe", "text": "Back to the form"}
SIGN_UP_AGAIN = {"url": "/subscribe", "text": "Sign up again"}
CHALLENGE_URL = "/subscribe/challenge"


def mask_email(address: str) -> str:
    """``jane@example.com`` as ``j***@example.com``: enough for its owner to recognise,
    too little for someone who sees the page to learn the address."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


def sentence(text: str) -> str:
    """``text`` as a sentence for a page: capital first letter, final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


class Pages:
    """Renders the pages for one configuration."""

    def __init__(self, settings: Settings, templates: Templates | None = None) -> None:
        self.settings = settings
        self.templates = templates or Templates(settings)
        self.tokens = Tokens(settings)

    def _render(self, name: str, title: str, **context: Any) -> str:
        return self.templates.render_page(
            f"web/{name}.html.j2",
            {"brand": brand_context(self.settings), "title": title, **context},
        )

    def subscribe(
        self, *, values: Mapping[str, str] | None = None, errors: Sequence[str] = ()
    ) -> str:
        given = dict(values or {})
        return self._render(
            "subscribe",
            "Subscribe",
            values={
                "email": given.get("email", ""),
                "name": given.get("name", ""),
                "consent": given.get("consent", ""),
            },
            errors=list(errors),
            consent_text=self.settings.consent_text,
            privacy_notice_url=self.settings.privacy_notice_url,
            challenge_url=CHALLENGE_URL if self.settings.signup_challenge else None,
            limit_per_hour=self.settings.signup_limit_per_hour,
            zones=zone_options(given.get("timezone_choice")),
        )

    def check_inbox(self) -> str:
        return self._render("check_inbox", "Check your inbox")

    def confirmed(self, subscriber: Subscriber, *, already: bool) -> str:
        assert subscriber.id is not None
        return self._render(
            "confirmed",
            "Subscribed",
            already=already,
            preferences_url=self.tokens.url(Purpose.PREFERENCES, subscriber),
            send_day=WEEKDAYS[self.settings.send_weekday],
        )

    def unsubscribe(self, *, token: str, already: bool = False) -> str:
        """The one-button page; ``already``: the person is not mailed any more, so the
        page says so instead of offering the button again."""
        if already:
            return self.message(
                heading="You are already unsubscribed",
                message=f"This address receives no emails from {self.settings.newsletter_name}.",
                hint="There is nothing more to do.",
                link={"url": "/subscribe", "text": "Subscribe again"},
            )
        return self._render("unsubscribe", "Unsubscribe", action=f"/unsubscribe/{token}")

    def unsubscribed(self) -> str:
        return self._render("unsubscribed", "Unsubscribed")

    def preferences(
        self,
        subscriber: Subscriber,
        *,
        token: str,
        errors: Sequence[str] = (),
        saved: bool = False,
        chosen: Sequence[str] | None = None,
        today: date | None = None,
        do_not_track: bool = False,
    ) -> str:
        """The topics and pause form; ``chosen`` (topic slugs) overrides the stored topics
        when a refused form comes back; ``today`` (UTC) decides whether a pause still runs;
        ``do_not_track`` ticks the "do not track me" box (issue 15)."""
        assert subscriber.id is not None
        today = today or utcnow().date()
        picked = set(subscriber.topics or []) if chosen is None else set(chosen)
        paused = (
            subscriber.paused_until
            if subscriber.paused_until and subscriber.paused_until > today
            else None
        )
        options = [
            {"weeks": "", "label": "Keep as it is" if paused else "Do not pause", "selected": True}
        ]
        if paused:
            options.append({"weeks": 0, "label": "Resume now", "selected": False})
        options += [
            {"weeks": w, "label": f"{w} week{'s' if w > 1 else ''}", "selected": False}
            for w in (1, 2, 4, 8, 12)
            if w <= self.settings.max_pause_weeks
        ]
        return self._render(
            "preferences",
            "Preferences",
            action=f"/preferences/{token}",
            address=mask_email(subscriber.email),
            privacy_notice_url=self.settings.privacy_notice_url,
            data_action=f"/preferences/{token}/data",
            delete_url=f"/preferences/{token}/delete",
            unsubscribe_url=self.tokens.url(Purpose.UNSUBSCRIBE, subscriber),
            topics=[
                {"slug": slug, "label": label, "checked": slug in picked}
                for slug, label in self.settings.topics.items()
            ],
            topics_consent_text=self.settings.topics_consent_text,
            topics_consented=bool(subscriber.topics),
            pause_options=options,
            paused_until=paused.isoformat() if paused else None,
            zones=zone_options(subscriber.timezone),
            list_zone=self.settings.timezone,
            errors=list(errors),
            saved=saved,
            do_not_track=do_not_track,
        )

    def delete_data(self, subscriber: Subscriber, *, token: str) -> str:
        """The second page of "Delete my data": what goes, what stays, one button."""
        return self._render(
            "delete_data",
            "Delete my data",
            address=mask_email(subscriber.email),
            action=f"/preferences/{token}/delete",
            back_url=f"/preferences/{token}",
        )

    def data_deleted(self) -> str:
        return self.message(
            heading="Your data is deleted",
            message="We deleted your address, your consent history, your topics and what "
            "our emails recorded about you.",
            hint="We keep only a one-way fingerprint of the address so that it is never "
            "mailed again, even if someone else adds it to a list.",
        )

    def message(
        self,
        *,
        heading: str,
        message: str,
        hint: str | None = None,
        link: Mapping[str, str] | None = None,
        title: str | None = None,
    ) -> str:
        return self._render(
            "message", title or heading, heading=heading, message=message, hint=hint, link=link
        )

    def link_error(self, err: NewsletterError, *, purpose: Purpose) -> str:
        """A bad, expired or stale link: say what happened and what to do next."""
        expired = isinstance(err, TokenExpired)
        if purpose is Purpose.CONFIRM:
            hint = "Sign up again and we will send you a fresh confirmation link."
            link = SIGN_UP_AGAIN
        elif purpose is Purpose.UNSUBSCRIBE:
            hint = (
                "To stop emails, use the unsubscribe link in the most recent email, or "
                "reply to any email and ask us: we will remove you by hand."
            )
            link = None
        else:
            hint = "Use the preferences link in the most recent email from us."
            link = None
        heading = "This link has expired" if expired else "This link does not work"
        message = str(err)
        message = message[0].upper() + message[1:] + "."
        return self.message(heading=heading, message=message, hint=hint, link=link)

    def error(self, err: NewsletterError, *, purpose: Purpose | None = None) -> str:
        """The page for an error that ended a request: what happened and what to do next.

        ``purpose`` names the link the reader came by (None: the sign-up form). A fault of
        ours (database, configuration) arrives as DatabaseError or ConfigError and is
        never described: the reader can only try again.
        """
        if isinstance(err, TokenError):
            return self.link_error(err, purpose=purpose or Purpose.CONFIRM)
        if isinstance(err, RateLimited):
            minutes = max(1, round(err.retry_after / 60))
            return self.message(
                heading="Too many sign-ups",
                message="We received too many sign-ups from your network in a short time.",
                hint=f"Please try again in about {minutes} minute{'s' if minutes > 1 else ''}.",
            )
        if isinstance(err, PayloadTooLarge):
            return self.message(
                heading="That was too much data",
                message="The form you sent is larger than this page accepts.",
                link=BACK_TO_FORM,
            )
        if purpose is Purpose.PREFERENCES and isinstance(err, NotFound):
            return self.message(
                heading="We hold no data about this address",
                message="There is nothing stored to show or delete for this link.",
                link={"url": "/subscribe", "text": "Subscribe"},
            )
        if purpose is Purpose.PREFERENCES and isinstance(err, StateError):
            return self.message(
                heading="You are not subscribed",
                message="There are no preferences to change for this address.",
                link={"url": "/subscribe", "text": "Subscribe"},
            )
        if isinstance(err, LinkNotFound):  # issue 15: a click link of ours, changed on the way
            return self.message(heading="This link leads nowhere", message=sentence(str(err)))
        if isinstance(err, PageNotFound):  # a public page (the archive), not a link of ours
            return self.message(
                heading="This page does not exist",
                message=sentence(str(err)),
                link={"url": "/archive/", "text": "See all past issues"},
            )
        if isinstance(err, NotFound):
            return self.message(
                heading="This sign-up has expired", message=sentence(str(err)), link=SIGN_UP_AGAIN
            )
        if isinstance(err, StateError):
            return self.message(
                heading="This link is no longer valid",
                message=sentence(str(err)),
                link=SIGN_UP_AGAIN,
            )
        return self._other(err)

    def _other(self, err: NewsletterError) -> str:
        """Our faults ask the reader to come back; anything else says what went wrong."""
        if isinstance(err, ProviderError):
            message = "We could not send the confirmation email just now."
        elif isinstance(err, (DatabaseError, ConfigError)):
            message = "This page cannot be shown just now."
        else:
            return self.message(heading="Something went wrong", message=sentence(str(err)))
        return self.message(
            heading="Please try again in a few minutes", message=message, link=BACK_TO_FORM
        )


def zone_options(current: str | None) -> list[dict[str, Any]]:
    """The time zone select's options (issue 16): the common zones, plus ``current`` when
    it is another one, so a stored zone is shown, not silently replaced."""
    zones = list(COMMON_ZONES)
    if current and current not in zones:
        zones.insert(0, current)
    return [
        {"value": zone, "label": zone.replace("_", " "), "selected": zone == current}
        for zone in zones
    ]
