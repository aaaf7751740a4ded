"""A campaign's content as a send carries it: UTM-tagged links, tracked or plain.

``campaigns.tracking.links`` compiles the stored rendering (once per campaign: the link
table it writes numbers the links for every later run of the same send) and this puts the
result where the send needs it: the :class:`BulkContent` the provider gets (and its plain
variant, for readers who asked not to be tracked), whose ``tracking`` flag tells SendGrid
to leave links and opens alone, and the token maker the send loop's
:class:`RecipientLinks` fills the ``[%track%]`` hole with.
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
) -> tuple[BulkContent, BulkContent | None, TrackingValues | None]:
    """(the content to send, its plain variant for readers not to be tracked, the token
    maker); the last two None when the send is not tracked.

    A test copy is never tracked (it has no ledger row to count against). Raises
    ContentError when the campaign is not rendered. Flushes; the caller commits.
    """
    content = bulk_content(settings, campaign, test=test)
    compiled = compile_links(
        session, settings=settings, campaign=campaign, tracked=False if test else None
    )
    tracked = dataclasses.replace(
        content, html=compiled.html, text=compiled.text, tracking=compiled.tracked
    )
    if not compiled.tracked:
        return tracked, None, None
    assert campaign.id is not None
    # The plain variant goes out while our tracking is on: SendGrid's stays off for it too.
    plain = dataclasses.replace(tracked, html=compiled.plain_html, text=compiled.plain_text)
    return tracked, plain, TrackingValues(settings, campaign_id=campaign.id)
