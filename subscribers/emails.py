"""The two messages the subscriber side sends: the confirmation request and the welcome.

Both are rendered from ``templates/email`` through the shared layout. The confirmation
carries no advertising and no list headers (the person is not on a list yet); the
welcome carries the one-click unsubscribe headers like every newsletter.
"""

from __future__ import annotations

from typing import Any

from newsletter.mail import OutgoingMessage, list_headers, list_id
from newsletter.settings import Settings
from newsletter.templating import Templates, brand_context, footer_context
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, Tokens

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CONFIRM_HTML = "email/confirm.mjml.j2"
CONFIRM_TEXT = "email/confirm.txt.j2"
WELCOME_HTML = "email/welcome.mjml.j2"
WELCOME_TEXT = "email/welcome.txt.j2"


def _message(
    settings: Settings,
    subscriber: Subscriber,
    *,
    subject: str,
    html: str,
    text: str,
    headers: dict[str, str] | None = None,
    kind: str,
) -> OutgoingMessage:
    return OutgoingMessage(
        to_email=subscriber.email,
        to_name=subscriber.name,
        subject=subject,
        html=html,
        text=text,
        from_email=settings.from_email,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        headers=headers or {},
        metadata={"subscriber_id": str(subscriber.id), "kind": kind},
        categories=(kind,),
    )


def _render(templates: Templates, html_name: str, text_name: str, context: dict[str, Any]):
    return (
        templates.render_email_html(html_name, context),
        templates.render_text(text_name, context),
    )


def _confirmation_reason(settings: Settings, subscriber: Subscriber) -> str:
    """Why this one email came, truthfully for each way an address reaches the list."""
    name = settings.newsletter_name
    how = {
        "import": f"was in a list of readers imported by {name}",
        "form": f"was entered in the sign-up form of {name}",
    }.get(subscriber.source, f"was added to the sign-up list of {name}")
    return f"You received this one-time email because this address {how}."


def confirmation_message(
    settings: Settings, subscriber: Subscriber, *, templates: Templates | None = None
) -> OutgoingMessage:
    assert subscriber.id is not None
    templates = templates or Templates(settings)
    tokens = Tokens(settings)
    brand = brand_context(settings)
    context: dict[str, Any] = {
        "brand": brand,
        "preheader": f"One click to confirm your subscription to {settings.newsletter_name}.",
        "footer": footer_context(
            reason=_confirmation_reason(settings, subscriber), show_disclaimer=False
        ),
        "subscriber_name": subscriber.name,
        "confirm_url": tokens.url(Purpose.CONFIRM, subscriber),
        "site_url": brand["base_url"],
        "expiry_days": settings.confirm_token_max_age_days,
        "consent_text": settings.consent_text,
    }
    html, text = _render(templates, CONFIRM_HTML, CONFIRM_TEXT, context)
    return _message(
        settings,
        subscriber,
        subject=f"Please confirm your subscription to {settings.newsletter_name}",
        html=html,
        text=text,
        kind="confirmation",
    )


def welcome_message(
    settings: Settings, subscriber: Subscriber, *, templates: Templates | None = None
) -> OutgoingMessage:
    assert subscriber.id is not None
    templates = templates or Templates(settings)
    tokens = Tokens(settings)
    unsubscribe_url = tokens.url(Purpose.UNSUBSCRIBE, subscriber)
    preferences_url = tokens.url(Purpose.PREFERENCES, subscriber)
    context: dict[str, Any] = {
        "brand": brand_context(settings),
        "preheader": "What to expect, and how to leave whenever you like.",
        "footer": footer_context(
            reason=(
                f"You receive this because you subscribed to {settings.newsletter_name} "
                f"and confirmed your address."
            ),
            unsubscribe_url=unsubscribe_url,
            preferences_url=preferences_url,
        ),
        "subscriber_name": subscriber.name,
        "send_day": WEEKDAYS[settings.send_weekday] + "s",
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
    }
    html, text = _render(templates, WELCOME_HTML, WELCOME_TEXT, context)
    return _message(
        settings,
        subscriber,
        subject=f"Welcome to {settings.newsletter_name}",
        html=html,
        text=text,
        kind="welcome",
        headers=list_headers(unsubscribe_url=unsubscribe_url, list_id=list_id(settings)),
    )
