"""What the public archive lists (campaigns/archive.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from campaigns.archive import _image_origins, archived_issues, set_archived
from campaigns.models import Campaign, CampaignLog, CampaignStatus
from newsletter.settings import Settings
from tests.support.tracking import T0


def campaign(session: Session, subject: str, *, days: int, status: str = "sent") -> Campaign:
    row = Campaign(subject=subject, status=status, started_at=T0 + timedelta(days=days))
    session.add(row)
    session.commit()
    return row


def test_only_sent_issues_not_left_out_are_listed_newest_first(
    session: Session, settings: Settings
) -> None:
    campaign(session, "Old", days=0)
    campaign(session, "New", days=7)
    campaign(session, "Sending", days=8, status=CampaignStatus.SENDING)
    campaign(session, "Draft", days=9, status=CampaignStatus.DRAFT)
    hidden = campaign(session, "Hidden", days=3)
    set_archived(session, campaign_id=hidden.id, included=False, actor="test")
    session.commit()
    issues = archived_issues(session, settings=settings)
    assert [i.subject for i in issues] == ["New", "Old"]
    assert issues[0].url == f"{settings.base_url}/archive/{issues[0].campaign_id}-new"
    assert archived_issues(session, settings=settings, offset=1, limit=1)[0].subject == "Old"


def test_leaving_out_is_logged_once_and_can_be_undone(session: Session) -> None:
    row = campaign(session, "Issue", days=0)
    first = set_archived(session, campaign_id=row.id, included=False, actor="cli:ann")
    second = set_archived(session, campaign_id=row.id, included=False, actor="cli:ann")
    back = set_archived(session, campaign_id=row.id, included=True, actor="cli:bob")
    session.commit()
    assert (first.changed, second.changed, back.changed, back.included) == (True, False, True, True)
    logged = session.exec(
        select(CampaignLog.actor, CampaignLog.reason).where(CampaignLog.campaign_id == row.id)
    ).all()
    assert logged == [
        ("cli:ann", "left out of the archive"),
        ("cli:bob", "included in the archive"),
    ]


def test_image_origins_are_rebuilt_from_scheme_host_and_port_dropping_bad_hosts() -> None:
    html = "".join(
        f'<img alt="" src="{src}">'
        for src in (
            "https://IMG.example.org/a.jpg?x=1",
            "https://img.example.org/b.jpg",
            "http://cdn.example.net:8080/c.png",
            "https://[2001:db8::1]/d.png",
            "https://xn--bcher-kva.example/e.png",
            "https://img.example *; frame-src *;/x.png",
            "https://img.example&#10;;script-src */x.png",
            "https://img_example;/x.png",
            "https://img.example:port/x.png",
            "javascript:alert(1)",
            "/content/local.png",
        )
    )
    assert _image_origins(html) == [
        "http://cdn.example.net:8080",
        "https://[2001:db8::1]",
        "https://img.example.org",
        "https://xn--bcher-kva.example",
    ]
