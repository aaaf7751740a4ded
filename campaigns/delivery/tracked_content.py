"""A campaign's content as a send carries it: UTM-tagged links, tracked or plain.

``campaigns.tracking.links`` compiles the stored rendering (once per campaign: the link
table it writes numbers the links for every later run of the same send) and this puts the
result where the send needs it: the :class:`BulkContent` the provider gets, whose
``tracking`` flag tells SendGrid to leave links and opens alone, and the per-reader values
the send loop's :class:`RecipientLinks` fills the holes with.
"""

from __future__ import annotations

import dataclasses

from sqlmodel import Session

from campaigns.delivery.providers.base import BulkContent, bulk_content
from campaigns.models import Campaign
from campaigns.tracking.links import TrackingValues, compile_links
from newsletter.settings import Settings


def tracked_content(
    session: Session, *, settings: Settings, campaign: Campaign, test: bool = False
) -> tuple[BulkContent, TrackingValues | None]:
    """(the content to send, the tracking hole values or None when not tracked).

    A test copy is never tracked (it has no ledger row to count against). Raises
    ContentError when the campaign is not rendered. Flushes; the caller commits.
    """
    content = bulk_content(settings, campaign, test=test)
    compiled = compile_links(
        session, settings=settings, campaign=campaign, tracked=not test and None
    )
    content = dataclasses.replace(
        content, html=compiled.html, text=compiled.text, tracking=compiled.tracked
    )
    if not compiled.tracked:
        return content, None
    assert campaign.id is not None
    return content, TrackingValues(settings, campaign_id=campaign.id, urls=compiled.urls)
