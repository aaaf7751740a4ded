"""RSS 2.0 and Atom feeds read entry by entry, each entry turned into a snippet's values.

``feedparser.parse()`` wants the whole document and holds several copies of it at once
(the bytes, the text, the text re-encoded as UTF-8, every entry): a 200 MB feed took
4.2 GB (issue 12 point 8). :class:`FeedStream` decodes bytes as they come and feeds the
text to feedparser's own SAX handler (the same dates, links, ``xml:base``, media and
enclosures as ``parse()``), handing on each entry once it has ended and forgetting it.

Only well-formed XML can be read like this. Real blogs publish feeds that are not (an
unescaped ``&``, an HTML entity); :class:`FeedNotWellFormed` tells the caller to read
such a feed whole with :func:`parse_whole`, feedparser's forgiving parser.
"""

from __future__ import annotations

import codecs
import html
import re
import xml.sax
from calendar import timegm
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import nh3
from feedparser.api import StrictFeedParser
from feedparser.exceptions import UndeclaredNamespace
from feedparser.sanitizer import replace_doctype

from campaigns.content.snippets import collapse_whitespace
from newsletter.errors import ImportProblem
from newsletter.text import decode_text, utf16_encoding

SNIFF_BYTES = 4096  # enough to see a BOM, the XML declaration, and UTF-16 without a BOM
PROLOG_MAX_CHARS = 1024 * 1024  # before the first element: declaration, comments, DOCTYPE
# Block elements become line breaks before all tags go, so "a</p><p>b" reads "a b".
# fmt: off
_BLOCK_TAGS = {
    "p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "tr", "td", "th", "section", "article", "figure", "figcaption", "pre",
}
# fmt: on
_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_ENCODING = re.compile(rb"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""")
_FIRST_ELEMENT = re.compile(r"<\w")


def html_to_text(markup: str) -> str:
    """Readable plain text from untrusted HTML: tags and scripts gone, entities decoded."""
    if not markup:
        return ""
    blocks = nh3.clean(markup, tags=_BLOCK_TAGS, attributes={}, strip_comments=True)
    # After nh3 the remaining tags are canonical and attribute-free (<p>, </p>, <br>):
    # each becomes a space, then a second pass with no tags at all drops anything left.
    for tag in _BLOCK_TAGS:
        blocks = blocks.replace(f"<{tag}>", " ").replace(f"</{tag}>", " ")
    text = nh3.clean(blocks, tags=set(), strip_comments=True)
    return collapse_whitespace(html.unescape(text))


def absolute_url(url: str, base_url: str) -> str:
    """``url`` resolved against ``base_url`` when it is relative and there is a base."""
    url = url.strip()
    if _scheme(url) or not base_url:
        return url
    try:
        return urljoin(base_url, url)
    except ValueError:  # an unclosed "[" in it: left as it is, and refused as a link
        return url


def _scheme(url: str) -> str | None:
    """The URL's scheme ("" for none); None for what urlsplit cannot read (an unclosed
    "[" in the host: a review found one such link ending a whole feed's import)."""
    try:
        return urlsplit(url).scheme
    except ValueError:
        return None


# ---------------------------------------------------------------- reading


class FeedNotWellFormed(Exception):
    """The document is not well-formed XML: read it whole with :func:`parse_whole`."""


class FeedStream:
    """Write a feed's bytes in pieces; get back the entries that are complete.

    Entries are feedparser's dictionaries, as ``feedparser.parse(...).entries`` holds
    them; ``link`` is the feed's own ``<link>`` (its site) as far as read so far, and
    ``version`` the feed's kind ("rss20", "atom10", ...; "" if it is not a feed).
    Raises FeedNotWellFormed, and InvalidInput for UTF-16 without a byte-order mark.
    """

    def __init__(self, *, name: str) -> None:
        self.name = name
        handler = StrictFeedParser("", None, "utf-8")
        # The entries become plain text (html_to_text) and their links are resolved
        # against the site: feedparser's HTML sanitising and rewriting would be wasted.
        handler.resolve_relative_uris = False
        handler.sanitize_html = False
        parser = xml.sax.make_parser()  # expat: fed text, it ignores the declared encoding
        parser.setFeature(xml.sax.handler.feature_namespaces, True)
        parser.setFeature(xml.sax.handler.feature_external_ges, False)
        parser.setContentHandler(handler)
        parser.setErrorHandler(handler)
        self._handler = handler
        self._parser: Any = parser
        self._head = b""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._prolog: str | None = ""  # None once the first element has been seen
        self._doctype_version: str | None = None

    @property
    def link(self) -> str | None:
        return self._handler.feeddata.get("link")

    @property
    def version(self) -> str:
        return self._doctype_version or self._handler.version or ""

    def write(self, data: bytes) -> list[Any]:
        """Read ``data``; the entries it completed."""
        if self._decoder is None:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return []
            data, self._head = self._head, b""
            self._decoder = self._pick_decoder(data)
        self._text(self._decoder.decode(data))
        return self._completed()

    def close(self) -> list[Any]:
        """The end of the document; the entries still to hand on."""
        if self._decoder is None:
            self._decoder = self._pick_decoder(self._head)
            self._text(self._decoder.decode(self._head, final=True), final=True)
        else:
            self._text(self._decoder.decode(b"", final=True), final=True)
        self._feed("", final=True)
        return self._completed()

    def _pick_decoder(self, head: bytes) -> codecs.IncrementalDecoder:
        """By the byte-order mark, else the XML declaration, else UTF-8 (XML 1.0 F.1).

        Bytes that are not valid in that encoding become U+FFFD rather than stop the
        import: a feed's declaration is sometimes wrong, and one odd letter in a title
        is better seen in review than a feed that cannot be read at all.
        """
        encoding = utf16_encoding(head)
        if encoding == "UTF-16":
            name = "utf-16"  # the BOM picks the byte order and is consumed
        elif encoding is not None:
            decode_text(head, source=self.name)  # raises InvalidInput, naming UTF-16
            name = "utf-8"
        elif head.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        else:
            declared = _DECLARED.match(head)
            name = declared.group(1).decode("ascii") if declared else "utf-8"
            try:
                codecs.getincrementaldecoder(name)
            except LookupError:
                name = "utf-8"
        return codecs.getincrementaldecoder(name)(errors="replace")

    def _text(self, text: str, *, final: bool = False) -> None:
        if self._prolog is None:
            self._feed(text)
            return
        # Hold the prolog until the first element, then drop its DOCTYPE and unsafe
        # ENTITY declarations as feedparser.parse() does (no entity expansion tricks).
        self._prolog += text
        waiting = not final and not _FIRST_ELEMENT.search(self._prolog)
        if waiting and len(self._prolog) <= PROLOG_MAX_CHARS:
            return
        prolog, self._prolog = self._prolog, None
        version, data, _entities = replace_doctype(prolog.encode("utf-8"))
        self._doctype_version = version
        self._feed(data.decode("utf-8"))

    def _feed(self, text: str, *, final: bool = False) -> None:
        try:
            if final:
                self._parser.close()
            elif text:
                self._parser.feed(text)
        except (xml.sax.SAXException, UndeclaredNamespace) as err:
            raise FeedNotWellFormed(str(err)) from err

    def _completed(self) -> list[Any]:
        entries = self._handler.entries
        done = len(entries) - (1 if self._handler.inentry else 0)
        if done <= 0:
            return []
        out = entries[:done]
        del entries[:done]  # feedparser only ever touches the last (the open) entry
        for entry in out:
            self._handler.property_depth_map.pop(entry, None)
        return out


def feed_bytes(data: bytes, *, name: str) -> bytes:
    """A feed's bytes as feedparser reads them best; InvalidInput for BOM-less UTF-16.

    feedparser honours the XML declaration's encoding (a windows-1252 feed stays one), so
    bytes are only touched when a byte-order mark says more: a UTF-8 BOM is dropped, and
    UTF-16 with a BOM becomes UTF-8 with its declaration saying so (feedparser trusts a
    declared "UTF-8" over the BOM and fails). XML 1.0, appendix F.
    """
    encoding = utf16_encoding(data)
    if encoding is None:
        return data.removeprefix(codecs.BOM_UTF8)
    text = decode_text(data, source=name)  # raises, naming UTF-16, when there is no BOM
    return _XML_ENCODING.sub(rb'\1"utf-8"', text.encode("utf-8"), count=1)


def parse_whole(data: bytes, *, name: str) -> Any:
    """feedparser's forgiving parse of a whole document (one that is not well-formed)."""
    # No content-location for feedparser: it would resolve relative links against the
    # feed's URL before we see them, so the same feed imported from a file and from its
    # URL (or via a feed proxy) would give different, duplicate snippets.
    return feedparser.parse(
        feed_bytes(data, name=name), sanitize_html=False, resolve_relative_uris=False
    )


# ---------------------------------------------------------------- entries


def needs_base(entry: Any) -> bool:
    """Whether the entry's link or picture is relative (so the site's URL matters)."""
    image, _alt = _feed_image(entry)
    urls = [entry.get("link") or "", image or ""]
    return any(url.strip() and _scheme(url.strip()) == "" for url in urls)


def entry_values(entry: Any, *, base_url: str, feed_name: str, where: str) -> dict[str, Any]:
    """A snippet's values from one entry; ImportProblem (at ``where``) when it has none."""
    title = html_to_text(entry.get("title", ""))
    if not title:
        raise ImportProblem("missing title", where=where)
    link = entry.get("link") or ""
    if not link.strip():
        raise ImportProblem("missing link", where=where)
    link = absolute_url(link, base_url)
    scheme = _scheme(link)
    if scheme is None:
        raise ImportProblem(f"link {link!r} is not a valid URL", where=where)
    if scheme not in ("http", "https"):
        raise ImportProblem(
            f"link {link!r} is not an http(s) URL and there is no base URL to resolve it against",
            where=where,
        )
    body = entry.get("summary") or ""
    if not body and entry.get("content"):
        body = entry["content"][0].get("value", "")
    summary = html_to_text(body)
    if not summary:
        raise ImportProblem("missing summary", where=where)
    image_url, image_alt = _feed_image(entry)
    terms = [t.get("term") for t in entry.get("tags") or [] if t.get("term")]
    return {
        "title": title,
        "summary": summary,
        "url": link,
        "image_url": absolute_url(image_url, base_url) if image_url else None,
        "image_alt": image_alt or (title if image_url else None),
        "category": html_to_text(terms[0]) if terms else "general",
        "tags": [html_to_text(t) for t in terms],
        "author": html_to_text(entry.get("author", "")) or None,
        "published_at": _entry_date(entry),
        "source": f"feed:{feed_name}",
    }


def _feed_image(entry: Any) -> tuple[str | None, str | None]:
    for media in entry.get("media_content") or []:
        if media.get("url") and media.get("medium", "image") == "image":
            return media["url"], None
    for thumb in entry.get("media_thumbnail") or []:
        if thumb.get("url"):
            return thumb["url"], None
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return link.get("href"), None
    return None, None


def _entry_date(entry: Any) -> datetime | None:
    """The entry's date; None (no date) makes it new as of its first import."""
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp is None:
        return None
    return datetime.fromtimestamp(timegm(stamp), tz=UTC)
