"""FastAPI's refusals of a console form, in its own words (web/console/validation_lines.py)."""

from __future__ import annotations

import pytest

from web.console.validation_lines import console_lines, label


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("subject_b", "Subject B"),
        ("preheader_c", "Preheader C"),
        ("on", "Date"),
        ("x_y_z", "x y z"),
    ],
)
def test_a_field_is_named_by_its_label(name: str, said: str) -> None:
    assert label(name) == said


@pytest.mark.parametrize(
    ("error", "line"),
    [
        ({"type": "missing", "loc": ("body", "local_time")}, "Local time: fill it in."),
        ({"type": "int_parsing", "loc": ("body", "sample")}, "Sample: type a whole number."),
        (
            {"type": "greater_than_equal", "loc": ("body", "after_days"), "ctx": {"ge": 1}},
            "After (days): at least 1.",
        ),
        (
            {"type": "date_from_datetime_parsing", "loc": ("body", "on")},
            "Date: type a date such as 2026-12-01.",
        ),
        (
            {"type": "string_too_long", "loc": ("body", "url"), "ctx": {"max_length": 2000}},
            "URL: at most 2000 characters.",
        ),
    ],
)
def test_each_kind_of_refusal_says_what_to_type(error: dict, line: str) -> None:
    assert console_lines([error]) == line


def test_no_error_listed_still_says_what_to_do() -> None:
    assert console_lines([]) == "The form was not complete: reload the page and try again."
