"""Snippet summaries as readers see them (campaigns/content/summaries.py)."""

from __future__ import annotations

from campaigns.content import summaries

MARKDOWN = """Start slowly.

Then:

- cat-cow on hands and knees
- a gentle *pelvic* tilt
- a short walk, see [our guide](https://example.com/walk?a=1&b=2)

Stop if pain **shoots** down your leg."""


def test_the_text_keeps_paragraphs_list_items_and_links() -> None:
    assert summaries.reading_text(MARKDOWN) == (
        "Start slowly.\n\nThen:\n\n- cat-cow on hands and knees\n- a gentle pelvic tilt\n"
        "- a short walk, see our guide (https://example.com/walk?a=1&b=2)\n\n"
        "Stop if pain shoots down your leg."
    )


def test_a_numbered_list_keeps_its_numbers_in_the_text() -> None:
    assert summaries.reading_text("1. first\n2. second") == "1. first\n2. second"


def test_a_link_shown_as_its_own_url_is_written_once() -> None:
    assert summaries.reading_text("See <https://example.com>.") == "See https://example.com."


def test_the_html_keeps_only_href_and_rel_on_links() -> None:
    html = summaries.clean_html('[x](https://example.com "t" ) <a href="x" onclick="y">z</a>')
    assert html == (
        '<p><a href="https://example.com" rel="noopener noreferrer">x</a> '
        '&lt;a href="x" onclick="y"&gt;z&lt;/a&gt;</p>'
    )


def test_a_relative_or_script_link_loses_its_href() -> None:
    html = summaries.clean_html("[a](/unsubscribe) [b]([%unsubscribe_url%]) [c](javascript:x)")
    assert "href" not in html


def test_a_summary_cut_to_length_is_shown_as_the_plain_summary() -> None:
    html, text = summaries.for_email("Start slowly. Then:…", MARKDOWN)
    assert (str(html), text) == ("<p>Start slowly. Then:…</p>", "Start slowly. Then:…")


def test_a_summary_without_markdown_is_escaped_into_one_paragraph() -> None:
    html, text = summaries.for_email('a <b onclick="x">', None)
    assert (str(html), text) == ("<p>a &lt;b onclick=&#34;x&#34;&gt;</p>", 'a <b onclick="x">')


def test_a_summary_with_its_markdown_is_shown_structured() -> None:
    html, _ = summaries.for_email(summaries.flat_text(MARKDOWN), MARKDOWN)
    assert "<ul>\n<li>cat-cow on hands and knees</li>" in html
    assert "<em>pelvic</em>" in html and "<strong>shoots</strong>" in html


def test_a_hard_line_break_is_one_line_break_in_the_text() -> None:
    assert summaries.reading_text("line  \nbreak") == "line\nbreak"
