"""One Markdown file as a snippet: YAML front matter, a body, and the line of each field.

A refusal names the line to fix (the house's rule: file, line, field): the line of the
field's key in the front matter, the body's first line for a summary made from it, the
front matter's first line for a field that is missing. A YAML error names the line where
the broken value starts (a "[" never closed is reported by YAML where it gave up, often
the end of the block) and says what usually causes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt

from campaigns.content.feeds import absolute_url, html_to_text
from campaigns.content.snippets import SITE_IMAGES_PATH, collapse_whitespace
from newsletter.clock import as_utc
from newsletter.errors import ImportProblem, InvalidInput
from newsletter.text import decode_text

_markdown = MarkdownIt("commonmark")

# A snippet's field -> the front matter keys that may give it, first found wins.
FIELD_KEYS = {
    "title": ("title",),
    "url": ("url", "canonical_url", "link"),
    "summary": ("summary",),
    "image_url": ("image", "image_url"),
    "image_alt": ("image_alt",),
    "category": ("category",),
    "tags": ("tags",),
    "author": ("author",),
    "published_at": ("published", "date"),
    "pinned": ("pinned",),
}
_KEY = re.compile(r"([A-Za-z_][\w-]*)\s*:")
_QUOTING = "put a value that starts with [ or { or holds ': ' in quotes"


@dataclass(frozen=True)
class MarkdownSnippet:
    """A file's snippet values and, per field, the file line it came from."""

    name: str
    values: dict[str, Any]
    lines: dict[str, int]

    def where(self, field_name: str | None = None) -> str:
        """``name:line`` of ``field_name`` (the front matter's first line if unknown)."""
        return f"{self.name}:{self.lines.get(field_name or '', 1)}"


def read_markdown(path: Path, name: str) -> MarkdownSnippet:
    """The snippet of one Markdown file; ImportProblem (``name:line``) when it has none."""
    try:
        text = decode_text(path.read_bytes(), source=name)
    except OSError as err:
        raise ImportProblem(f"cannot read: {err.strerror or err}", where=name) from err
    except InvalidInput as err:  # UTF-16, not text, not UTF-8: say which, not "no front matter"
        raise ImportProblem(err.reason, where=name) from err
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as err:
        raise _yaml_problem(err, name, text) from err
    if not post.metadata:
        raise ImportProblem(
            "front matter missing (start the file with a '---' block)", where=f"{name}:1"
        )
    found = MarkdownSnippet(name, {}, key_lines(text))
    found.values.update(_values(post, found))
    return found


def _block(text: str) -> tuple[list[str] | None, int]:
    """The front matter's lines (file line 2 onwards), None when the file does not start
    with '---'; and the file's line count."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None, len(lines)
    body = lines[1:]
    end = next((i for i, line in enumerate(body) if line.strip() == "---"), len(body))
    return body[:end], len(lines)


def key_lines(text: str) -> dict[str, int]:
    """Snippet field -> the file line (1-based) of its key in the front matter; the body's
    first line as the summary's when the front matter gives none."""
    block, count = _block(text)
    if block is None:
        return {}
    keys: dict[str, int] = {}
    for number, line in enumerate(block, start=2):
        if match := _KEY.match(line):  # a top-level key (indented lines are its value)
            keys.setdefault(match.group(1), number)
    end = len(block) + 2  # the closing '---'
    found = {
        field_name: keys[key]
        for field_name, names in FIELD_KEYS.items()
        for key in reversed(names)
        if key in keys
    }
    found.setdefault("summary", min(end + 1, count))
    return found


def _yaml_problem(err: yaml.YAMLError, name: str, text: str) -> ImportProblem:
    """The YAML error in one line, at the line where the broken value starts. The block
    is parsed again as the file has it: python-frontmatter's split drops blank lines
    after the '---', which moves its marks."""
    try:
        yaml.safe_load("\n".join(_block(text)[0] or []))
    except yaml.YAMLError as own:
        err = own
    mark = getattr(err, "context_mark", None) or getattr(err, "problem_mark", None)
    line = mark.line + 2 if mark is not None else 1  # the block starts on the file's line 2
    reason = collapse_whitespace(getattr(err, "problem", None) or str(err))
    return ImportProblem(
        f"front matter is not valid YAML: {reason} ({_QUOTING})", where=f"{name}:{line}"
    )


def _values(post: frontmatter.Post, found: MarkdownSnippet) -> dict[str, Any]:
    meta = post.metadata
    title = _text_field(meta, "title", found)
    url = _first(meta, "url")
    if not url:
        raise ImportProblem("front matter: missing 'url'", where=found.where())
    summary, markdown = meta.get("summary"), None
    if summary is None or not str(summary).strip():
        markdown = post.content.strip() or None  # the body, kept as typed (issue 14)
        summary = html_to_text(_markdown.render(post.content))
    if not str(summary).strip():
        raise ImportProblem(
            "no summary: add 'summary' to the front matter or a body", where=found.where()
        )
    image = _opt_str(_first(meta, "image_url"))
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in tags.split(",")]
    if not isinstance(tags, list):
        raise ImportProblem("front matter: 'tags' must be a list", where=found.where("tags"))
    return {
        "title": title,
        "summary": html_to_text(str(summary)),
        "summary_markdown": markdown,
        "url": str(url),
        "image_url": _image_url(image, str(url)) if image else None,
        "image_alt": _opt_str(meta.get("image_alt")),
        "category": _opt_str(meta.get("category")) or "general",
        "tags": [str(t) for t in tags],
        "author": _opt_str(meta.get("author")),
        "published_at": _front_matter_date(meta, found),
        "source": f"markdown:{found.name}",
        "pinned": bool(meta.get("pinned", False)),
    }


def _first(meta: dict[str, Any], field_name: str) -> Any:
    """The value of the first key of ``FIELD_KEYS[field_name]`` that has one."""
    return next((meta[key] for key in FIELD_KEYS[field_name] if meta.get(key)), None)


def _text_field(meta: dict[str, Any], key: str, found: MarkdownSnippet) -> str:
    value = meta.get(key)
    if value is None or not str(value).strip():
        raise ImportProblem(f"front matter: missing {key!r}", where=found.where())
    return collapse_whitespace(str(value))


def _image_url(image: str, article_url: str) -> str:
    """A site-relative image ("/images/x.jpg") belongs to the article's site, except one
    of our own sample images (under :data:`SITE_IMAGES_PATH`): that stays a path on our
    site, resolved against NEWSLETTER_BASE_URL when rendered."""
    if image.startswith(SITE_IMAGES_PATH):
        return image
    return absolute_url(image, article_url)


def _opt_str(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _front_matter_date(meta: dict[str, Any], found: MarkdownSnippet) -> datetime:
    value = _first(meta, "published_at")
    if value is None:
        raise ImportProblem("front matter: missing 'published' (a date)", where=found.where())
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as err:
        raise ImportProblem(
            f"front matter: 'published' {value!r} is not an ISO date",
            where=found.where("published_at"),
        ) from err
    return as_utc(parsed)
