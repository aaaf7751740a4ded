"""A snippet's summary as a reader sees it: safe HTML for the email and the archive page,
readable plain text for the text part.

Summaries are typed in Markdown; ``snippet.summary`` keeps the flat text a card shows in
the console (and searches), and :mod:`campaigns.content.sources` keeps the Markdown. The
email keeps the Markdown's structure (paragraphs, lists, emphasis, links) within the same
subset the console's preview allows, cleaned by nh3, so the preview, the email and the
archive page read alike. Links keep only an absolute ``http``, ``https`` or ``mailto``
``href`` (no relative URL, which could name one of our per-reader placeholders) and no
other attribute, so a summary cannot smuggle markup or attributes into the email.
"""

from __future__ import annotations

from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from campaigns.content.feeds import html_to_text
from campaigns.content.snippets import collapse_whitespace

_MARKDOWN = MarkdownIt("commonmark", {"html": False})
# What a summary may show of rendered Markdown (nh3 drops everything else, scripts too).
SUMMARY_TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "code", "blockquote"}
LINK_SCHEMES = ("http://", "https://", "mailto:")


def _keep_href(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: ``href`` is the one attribute kept (nh3 would keep ``title``
    and ``lang`` anywhere), and only as an absolute URL of an allowed scheme; ``rel`` is
    nh3's own (``link_rel``: one written in the input never gets this far)."""
    if attribute == "rel":
        return value
    if attribute != "href" or not value.strip().lower().startswith(LINK_SCHEMES):
        return None
    return value


def clean_html(markdown: str) -> str:
    """Safe HTML of a Markdown summary: no raw HTML, no script, no style; links keep only
    ``href`` (absolute http, https, mailto) and get ``rel="noopener noreferrer"``."""
    return nh3.clean(
        _MARKDOWN.render(markdown or ""),
        tags=SUMMARY_TAGS,
        attributes={"a": {"href"}},
        attribute_filter=_keep_href,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    ).strip()


def flat_text(markdown: str) -> str:
    """The one-line plain text a card shows for a Markdown summary."""
    return html_to_text(_MARKDOWN.render(markdown or ""))


class _TextWriter(HTMLParser):
    """nh3-cleaned summary HTML -> blocks of lines: paragraphs, ``- `` list items and
    links as ``text (url)``. Only the tags of :data:`SUMMARY_TAGS` can occur."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[list[str]] = []
        self.line = ""
        self.lists: list[int] = []  # per open list: 0 for bullets, else the next number
        self.prefix = ""
        self.href: str | None = None
        self.link_text = ""

    def _flush(self) -> None:
        text = "\n".join(collapse_whitespace(part) for part in self.line.split("\n")).strip()
        self.line = ""
        if not text:
            return
        line = self.prefix + text
        if self.lists and self.blocks and self.prefix:
            self.blocks[-1].append(line)
        else:
            self.blocks.append([line])
        self.prefix = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "blockquote", "ul", "ol", "li"):
            self._flush()
        if tag in ("ul", "ol"):
            if not self.lists:
                self.blocks.append([])
            self.lists.append(1 if tag == "ol" else 0)
        elif tag == "li" and self.lists:
            number = self.lists[-1]
            indent = "  " * (len(self.lists) - 1)
            self.prefix = indent + (f"{number}. " if number else "- ")
            if number:
                self.lists[-1] += 1
        elif tag == "br":
            self.line += "\n"
        elif tag == "a":
            self.href, self.link_text = dict(attrs).get("href"), ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.href:
            shown = collapse_whitespace(self.link_text)
            if self.href not in (shown, f"mailto:{shown}"):
                self.line += f" ({self.href})"
            self.href = None
        elif tag in ("p", "blockquote", "li"):
            self._flush()
        elif tag in ("ul", "ol") and self.lists:
            self._flush()
            self.lists.pop()

    def handle_data(self, data: str) -> None:
        if self.line.endswith("\n") and data.startswith("\n"):
            data = data[1:]  # markdown-it writes "<br />\n": one line break, not two
        self.line += data
        if self.href is not None:
            self.link_text += data

    def text(self) -> str:
        self._flush()
        return "\n\n".join("\n".join(block) for block in self.blocks if block)


def reading_text(markdown: str) -> str:
    """Readable plain text of a Markdown summary: paragraphs apart by a blank line, list
    items on lines of their own ("- " or "1. "), links as "text (url)"."""
    writer = _TextWriter()
    writer.feed(clean_html(markdown))
    writer.close()
    return writer.text()


def for_email(summary: str, markdown: str | None) -> tuple[Markup, str]:
    """The (HTML, text) an email shows for a snippet's summary.

    The Markdown is used only while it is what the summary was made from (a summary cut
    to ``summary_max_chars``, or replaced by a feed's, no longer matches it); otherwise
    the plain summary, escaped, is the one paragraph.
    """
    if markdown and collapse_whitespace(flat_text(markdown)) == collapse_whitespace(summary):
        return Markup(clean_html(markdown)), reading_text(markdown)  # nh3-cleaned: safe
    return Markup("<p>{}</p>").format(summary), summary
