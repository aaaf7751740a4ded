"""A Markdown file's snippet: each refusal names the file line to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.content.markdown_snippets import key_lines, read_markdown
from newsletter.errors import ImportProblem


def _refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "a.md"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportProblem) as refused:
        read_markdown(path, "a.md")
    return str(refused.value)


def test_an_unclosed_bracket_is_reported_on_its_own_line_with_what_to_do(
    tmp_path: Path,
) -> None:
    """YAML gives up at the end of the block; the marketer must fix line 2."""
    line = _refusal(tmp_path, "---\ntitle: [unclosed\nurl: https://x.example/a\n---\nBody\n")
    assert line.startswith("a.md:2: front matter is not valid YAML: ")
    assert line.endswith("(put a value that starts with [ or { or holds ': ' in quotes)")


def test_a_date_that_is_not_one_is_reported_on_its_line(tmp_path: Path) -> None:
    text = "---\ntitle: T\nurl: https://x.example/a\n\npublished: soon\n---\nBody\n"
    assert _refusal(tmp_path, text) == (
        "a.md:5: front matter: 'published' 'soon' is not an ISO date"
    )


def test_tags_that_are_not_a_list_are_reported_on_their_line(tmp_path: Path) -> None:
    text = "---\ntitle: T\ntags: {a: 1}\nurl: https://x.example/a\n---\nBody\n"
    assert _refusal(tmp_path, text) == "a.md:3: front matter: 'tags' must be a list"


def test_a_missing_field_is_reported_at_the_front_matter(tmp_path: Path) -> None:
    assert _refusal(tmp_path, "---\ntitle: T\n---\nBody\n") == "a.md:1: front matter: missing 'url'"


def test_key_lines_take_the_first_key_that_names_a_field_and_the_body_for_a_summary() -> None:
    text = "---\ntitle: T\nlink: https://x/b\nurl: https://x/a\n  more: 1\n---\n\nBody\n"
    lines = key_lines(text)
    assert (lines["title"], lines["url"], lines["summary"]) == (2, 4, 7)
    assert "more" not in lines and "tags" not in lines


def test_a_file_without_front_matter_has_no_key_lines() -> None:
    assert key_lines("just text\n") == {}
