"""Factories for the content tests: snippets, campaigns, user template folders."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlmodel import Session

from campaigns.content.snippets import add_snippet
from campaigns.models import Campaign, CampaignSnippet, CampaignStatus, Snippet
from newsletter.settings import PROJECT_ROOT, Settings

CONTENT_DIR = PROJECT_ROOT / "content"
BASE_DAY = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
_counter = itertools.count(1)


def make_snippet(session: Session, settings: Settings, **overrides: Any) -> Snippet:
    """A valid snippet; each call gets a unique URL and, by default, a later date."""
    n = next(_counter)
    values: dict[str, Any] = {
        "title": f"Article {n}",
        "summary": f"Plain summary of article {n} about easing everyday pain.",
        "url": f"https://blog.example.com/articles/{n}",
        "category": "general",
        "published_at": BASE_DAY + timedelta(hours=n),
    }
    values.update(overrides)
    return add_snippet(session, settings=settings, data=values)


def insert_raw_snippet(session: Session, **fields: Any) -> Snippet:
    """A snippet written straight to the table, bypassing validation (hostile data at rest)."""
    n = next(_counter)
    values: dict[str, Any] = {
        "title": f"Raw {n}",
        "summary": "raw",
        "url": f"https://blog.example.com/raw/{n}",
        "published_at": BASE_DAY,
    }
    values.update(fields)
    snippet = Snippet(**values)
    session.add(snippet)
    session.flush()
    return snippet


def make_campaign(
    session: Session,
    snippets: list[Snippet],
    *,
    week: str | None = None,
    status: CampaignStatus = CampaignStatus.DRAFT,
    subject: str = "Test issue",
) -> Campaign:
    campaign = Campaign(subject=subject, preheader="Preheader text", week=week, status=status)
    session.add(campaign)
    session.flush()
    for position, snippet in enumerate(snippets, start=1):
        session.add(
            CampaignSnippet(campaign_id=campaign.id, snippet_id=snippet.id, position=position)
        )
    session.flush()
    return campaign


def with_templates(settings: Settings, folder: Path, files: dict[str, str]) -> Settings:
    """Settings whose user template folder holds ``files`` (name -> source)."""
    for name, source in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return settings.model_copy(update={"templates_dir": folder})


def shipped_template(name: str) -> str:
    return (PROJECT_ROOT / "templates" / name).read_text(encoding="utf-8")


class ElementCollector(HTMLParser):
    """Every start tag with its attributes, parsed like a browser would see the markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = ElementCollector()
    collector.feed(html)
    collector.close()
    return collector.elements
