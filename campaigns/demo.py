"""The demo: this week's issue end to end, through the same code paths production uses.

Snippets are imported from ``content/``, three sample readers sign up by real double
opt-in (the confirmation link is read back out of the outbox ``.eml`` and followed), the
issue is assembled, rendered and sent through the outbox provider. Running it again
sends nothing twice: the week's campaign is found, already sent.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from campaigns.actions import get_campaign
from campaigns.content.assembly import assemble_week
from campaigns.content.preview import write_preview
from campaigns.content.snippet_import import import_snippets
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.providers.outbox import OutboxProvider
from campaigns.delivery.sending import send_campaign
from campaigns.models import CampaignStatus
from newsletter import db
from newsletter.errors import ContentError, Suppressed
from newsletter.settings import PROJECT_ROOT, Settings, load_settings
from subscribers.models import ConsentSource
from subscribers.signup import SignUpOutcome, confirm, sign_up

CONTENT_DIR = PROJECT_ROOT / "content" / "snippets"
DEMO_POSTAL_ADDRESS = "Pain Relief Weekly (demo), 100 Example Street, Springfield, USA"
SAMPLE_READERS = (
    ("ada.reader@example.org", "Ada"),
    ("ben.walker@example.org", "Ben"),
    ("chidi.stretch@example.org", "Chidi"),
)
_CONFIRM_LINK = re.compile(r"/confirm/([A-Za-z0-9_.\-]+)")

Step = Callable[[str], None]


@dataclass
class DemoSummary:
    campaign_id: int
    week: str | None
    subject: str
    status: str
    recipients: int
    sent_now: int
    already_sent: bool
    snippets_imported: int
    confirmed: list[str]
    outbox_dir: Path
    preview_dir: Path
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "week": self.week,
            "subject": self.subject,
            "status": self.status,
            "recipients": self.recipients,
            "sent_now": self.sent_now,
            "already_sent": self.already_sent,
            "snippets_imported": self.snippets_imported,
            "confirmed": self.confirmed,
            "outbox_dir": str(self.outbox_dir),
            "preview_dir": str(self.preview_dir),
            "notes": self.notes,
        }


def demo_settings(folder: Path, **overrides: Any) -> Settings:
    """Settings for a demo folder: embedded SQLite, file outbox, a key kept in the folder.

    The secret key is generated once and stored beside the database, so links in the
    outbox keep working across runs; nothing here is used outside the demo.

    Preflight's fetch of images and links is off: the demo runs offline, its articles
    live on a sample blog (``blog.painrelief.example``) and its images under the base
    URL, served by ``newsletter serve`` (``content/images``), which is not running now.
    The preview shows those images all the same (``campaigns.content.preview``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(32))
        key_file.chmod(0o600)
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{folder.resolve() / 'newsletter.db'}",
        "provider": "outbox",
        "outbox_dir": folder.resolve() / "outbox",
        "secret_key": key_file.read_text().strip(),
        "postal_address": DEMO_POSTAL_ADDRESS,
        "preflight_fetch": False,
    }
    values.update(overrides)
    return load_settings(**values)


def confirmation_token(outbox: Path, address: str) -> str:
    """The confirm token of the newest confirmation email to ``address`` in the outbox."""
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        recipients = message.get("To")
        if recipients is None or address not in str(recipients):
            continue
        body = message.get_body(("plain",))
        found = _CONFIRM_LINK.search(body.get_content() if body else "")
        if found:
            return found.group(1)
    raise ContentError(f"no confirmation email to {address} in {outbox}")


def run_demo(
    *,
    settings: Settings,
    engine: Engine,
    out_dir: Path,
    content_dir: Path = CONTENT_DIR,
    chromium_path: str = "/usr/bin/chromium",
    step: Step = lambda _message: None,
) -> DemoSummary:
    db.upgrade(engine)
    outbox = OutboxProvider(settings.outbox_dir)

    with db.session_scope(engine) as session:
        report = import_snippets(session, settings=settings, source=str(content_dir))
    step(
        f"snippets: {report.created} new, {report.updated} updated, "
        f"{report.unchanged} unchanged from {content_dir}"
    )

    confirmed: list[str] = []
    for address, name in SAMPLE_READERS:
        try:
            with db.session_scope(engine) as session:
                result = sign_up(
                    session,
                    settings=settings,
                    mailer=outbox,
                    email=address,
                    name=name,
                    source=ConsentSource.CLI,
                )
        except Suppressed:
            # They unsubscribed through a link of an earlier run: that stands (no mail
            # may start to a suppressed address), and the demo goes on without them.
            step(f"{address}: unsubscribed earlier; left alone")
            continue
        if result.outcome is SignUpOutcome.ALREADY_ACTIVE:
            step(f"{address}: already confirmed")
            continue
        token = confirmation_token(settings.outbox_dir, address)
        with db.session_scope(engine) as session:
            confirm(session, settings=settings, mailer=outbox, token=token)
        confirmed.append(address)
        step(f"{address}: signed up, confirmation email read from the outbox, confirmed")

    with db.session_scope(engine) as session:
        issue = assemble_week(session, settings=settings, actor="demo")
        campaign_id = issue.campaign.id
    assert campaign_id is not None

    with db.session_scope(engine) as session:
        campaign = issue.campaign
        already_sent = campaign.status == CampaignStatus.SENT
        sent_now = 0
        if already_sent:
            step(f"campaign {campaign_id} ({campaign.week}) was already sent; nothing sent again")
        else:
            sent = send_campaign(
                session,
                settings=settings,
                campaign_id=campaign_id,
                provider=outbox,
                actor="demo",
            )
            sent_now = sent.sent
            step(f"campaign {campaign_id} ({campaign.week}): {sent.sent} sent")

    with db.session_scope(engine) as session:
        campaign = get_campaign(session, campaign_id=campaign_id)
        counts = delivery_counts(session, campaign_id=campaign_id)
        preview = write_preview(
            session,
            settings=settings,
            campaign=campaign,
            out_dir=out_dir / "preview",
            chromium_path=chromium_path,
        )
        return DemoSummary(
            campaign_id=campaign_id,
            week=campaign.week,
            subject=campaign.subject,
            status=campaign.status,
            recipients=counts.sent,
            sent_now=sent_now,
            already_sent=already_sent,
            snippets_imported=report.created + report.updated + report.unchanged,
            confirmed=confirmed,
            outbox_dir=settings.outbox_dir,
            preview_dir=preview.out_dir,
            notes=[*preview.notes, *preview.warnings],
        )
