"""Per-reader placeholders where a marketer may not expect what they do (preflight warnings).

Only the subject, the preheader and the templates are filled per reader: a placeholder
typed into a snippet's text is shown as written (``newsletter.mail.inert``: a feed's or an
article's text is data, and a filled one could carry the reader's links to the article's
site). And ``[%name%]`` is empty for a reader without a name ("Hi [%name%]," reads "Hi ,").
"""

from __future__ import annotations

from html import escape

from campaigns.models import Campaign, Snippet
from newsletter.mail import ANY_CASE_HOLE, NAME, placeholder

# The snippet's fields an issue shows as text (links are refused at input instead).
SNIPPET_TEXT_FIELDS = ("title", "summary", "image_alt", "author")
BARE_NAME = placeholder(NAME)


def snippet_placeholders(snippet: Snippet) -> list[tuple[str, str]]:
    """(field, message) for each text field of ``snippet`` that holds a placeholder."""
    found = []
    for field_name in SNIPPET_TEXT_FIELDS:
        hole = ANY_CASE_HOLE.search(getattr(snippet, field_name) or "")
        if hole is not None:
            message = (
                f"{hole.group()} is shown to readers as written: only the subject, the "
                "preheader and the templates are filled per reader"
            )
            found.append((field_name, message))
    return found


def bare_name_headlines(campaign: Campaign) -> list[str]:
    """A message for the subject and the preheader when one uses the bare name."""
    return [
        f"the {name} uses {BARE_NAME}, empty for readers without a name "
        f'("Hi {BARE_NAME}," reads "Hi ," for them)'
        for name, text in (("subject", campaign.subject), ("preheader", campaign.preheader))
        if BARE_NAME in (text or "")
    ]


def outside_headlines(content: str, subject: str, preheader: str) -> str:
    """``content`` without the subject and preheader it shows (a template's own use of a
    placeholder is the template's finding; the headlines' are theirs)."""
    for text in (subject, preheader):
        if text:
            content = content.replace(escape(text), "").replace(text, "")
    return content
