"""The Markdown a snippet's summary was typed in (issue 14: the console's snippet library).

``snippet.summary`` keeps the plain text a card shows; this table keeps what the marketer
typed, so reopening a snippet shows ``**bold**``, not ``bold``, and the email shows the
summary's paragraphs, lists and links (:mod:`campaigns.content.summaries`).
A table of its own (migration 0009i) rather than a column: the snippet table is read by
every assembly, and a snippet with no row here (a feed entry, or one saved before) simply
shows its plain-text summary. Rendering reads it with the issue's snippets
(:func:`campaigns.content.assembly.issue_items`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Column, Field, Session, SQLModel


# Issue 14 (the console's snippet library): migration 0009i.
class SnippetSource(SQLModel, table=True):
    """The Markdown source of one snippet's summary; no row: the summary is all there is."""

    __tablename__ = "snippet_source"

    snippet_id: int = Field(
        sa_column=Column(
            sa.Integer, sa.ForeignKey("snippet.id", ondelete="CASCADE"), primary_key=True
        )
    )
    summary_markdown: str = Field(sa_column=Column(sa.Text, nullable=False))


def keep_markdown(session: Session, *, snippet_id: int, markdown: str | None) -> None:
    """Store ``markdown`` as the snippet's summary source; None forgets it (the summary
    now comes from somewhere that is not Markdown, such as a feed's HTML)."""
    row = session.get(SnippetSource, snippet_id)
    if markdown is None:
        if row is not None:
            session.delete(row)
            session.flush()
        return
    if row is None:
        row = SnippetSource(snippet_id=snippet_id, summary_markdown=markdown)
    elif row.summary_markdown == markdown:
        return
    row.summary_markdown = markdown
    session.add(row)
    session.flush()


def summary_markdown(session: Session, *, snippet_id: int) -> str | None:
    """The Markdown typed for this snippet's summary, or None when none was kept."""
    row = session.get(SnippetSource, snippet_id)
    return row.summary_markdown if row is not None else None
