"""What a marketer is told before "Send now": who the issue goes to, and what went out alike.

The console asks before a send that cannot be taken back (web/console/campaigns.py). The
reader count is the queueing's own audience rule (``campaigns.delivery.waves``, through
``subscribers.audience``), counted today; "went out alike" compares the subject (case and
spacing aside) and the snippets in issue order with the newest campaigns that are sent or
sending, so a duplicate sent again says so before it mails anybody twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from campaigns import subject_tests
from campaigns.actions import get_campaign
from campaigns.content.preflight import preflight
from campaigns.delivery import waves
from campaigns.delivery.variant_sends import READY
from campaigns.models import Campaign, CampaignSnippet, CampaignStatus
from campaigns.views import CampaignView, view
from campaigns.workflow import can_transition
from newsletter.clock import utcnow
from newsletter.headers import shown_alike
from newsletter.settings import Settings

# How many of the newest sent or sending campaigns are compared: about four years of a
# weekly list, in two queries whatever the number.
LOOKBACK = 200
_GONE_OUT = (CampaignStatus.SENT.value, CampaignStatus.SENDING.value)


@dataclass(frozen=True)
class EarlierSend:
    """A campaign that went out with the same subject, the same snippets, or both."""

    campaign: CampaignView
    same_subject: bool
    same_snippets: bool

    @property
    def what(self) -> str:
        """'subject', 'snippets' or 'subject and snippets'."""
        if self.same_subject and self.same_snippets:
            return "subject and snippets"
        return "subject" if self.same_subject else "snippets"


@dataclass(frozen=True)
class SendCheck:
    campaign: CampaignView
    readers: int  # eligible readers today, by the queueing's rule
    earlier: list[EarlierSend]  # newest first
    can_send: bool  # Send now may start from the campaign's status (campaigns.workflow)
    # Preflight's errors (offline: no link fetched), "where: message"; the scheduler would
    # refuse the send for them, so the confirmation names them instead of offering it.
    errors: list[str]
    # Preflight's warnings, the same way: the send goes ahead, but the marketer should see them.
    warnings: list[str] = field(default_factory=list)
    # A subject test still to start (subject_tests.describe): Send now sends its sample
    # first, not the campaign's own subject to everyone (a marketer's review).
    subject_test: dict[str, object] | None = None


def send_check(
    session: Session, *, settings: Settings, campaign_id: int, lookback: int = LOOKBACK
) -> SendCheck:
    """The facts for Send now's confirmation. Raises NotFound for an unknown campaign."""
    campaign = get_campaign(session, campaign_id=campaign_id)
    can_send = can_transition(campaign.status, CampaignStatus.SCHEDULED)
    errors: list[str] = []
    warnings: list[str] = []
    if can_send:
        offline = settings.model_copy(update={"preflight_fetch": False})
        report = preflight(session, settings=offline, campaign=campaign)
        errors = [f"{f.where}: {f.message}" if f.where else f.message for f in report.errors]
        warnings = [f"{f.where}: {f.message}" if f.where else f.message for f in report.warnings]
    zones = waves.audience_zones(
        session, campaign=campaign, list_zone=settings.timezone, on_date=utcnow().date()
    )
    test = subject_tests.describe(session, campaign_id=campaign_id)
    return SendCheck(
        campaign=view(campaign, settings=settings),
        readers=sum(zones.values()),
        earlier=_earlier(session, settings, campaign, lookback),
        can_send=can_send,
        errors=errors,
        warnings=warnings,
        subject_test=test if test is not None and test["phase"] == READY else None,
    )


def _earlier(
    session: Session, settings: Settings, campaign: Campaign, lookback: int
) -> list[EarlierSend]:
    others = session.exec(
        select(Campaign)
        .where(col(Campaign.status).in_(_GONE_OUT), Campaign.id != campaign.id)
        .order_by(col(Campaign.id).desc())
        .limit(lookback)
    ).all()
    if not others:
        return []
    snippets: dict[int, list[int]] = defaultdict(list)
    rows = session.exec(
        select(CampaignSnippet.campaign_id, CampaignSnippet.snippet_id)
        .where(col(CampaignSnippet.campaign_id).in_([campaign.id, *(o.id for o in others)]))
        .order_by(col(CampaignSnippet.campaign_id), col(CampaignSnippet.position))
    ).all()
    for campaign_id, snippet_id in rows:
        snippets[campaign_id].append(snippet_id)
    mine, subject = snippets.get(campaign.id or 0, []), shown_alike(campaign.subject)
    found = []
    for other in others:
        same_subject = shown_alike(other.subject) == subject
        same_snippets = bool(mine) and snippets.get(other.id or 0) == mine
        if same_subject or same_snippets:
            found.append(EarlierSend(view(other, settings=settings), same_subject, same_snippets))
    return found
