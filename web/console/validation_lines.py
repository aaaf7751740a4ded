"""FastAPI's own refusals of a console form, said as a marketer reads them.

A field the browser should have checked (a number, a date, a required field) can still
arrive wrong: a browser without those checks, a pasted value, an old page. FastAPI's
messages name our parameters and its types ("field 'wait_hours': Input should be a
valid integer, unable to parse string as an integer"); the console says the field's
label and what to type ("Wait before choosing: type a whole number."). The API keeps
FastAPI's wording, which names what a program sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The console's form fields by their parameter name, as their labels say them.
LABELS = {
    "on": "Date",
    "local_time": "Local time",
    "late": "If the hour has passed",
    "sample": "Sample",
    "wait_hours": "Wait before choosing",
    "metric": "Winner by",
    "after_days": "After (days)",
    "at": "Send at",
    "to": "Send a test to",
    "q": "Address contains",
    "file": "CSV file",
    "files": "Markdown files",
    "url": "URL",
    "label": "Winner",
}


def label(name: str) -> str:
    """``subject_b`` -> "Subject B"; a known field by its label."""
    if name in LABELS:
        return LABELS[name]
    head, _, tail = name.partition("_")
    return f"{head.capitalize()} {tail.upper()}" if len(tail) == 1 else name.replace("_", " ")


def _what(error: Mapping[str, Any]) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "missing":
        return "fill it in"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "type a whole number"
    if kind == "greater_than_equal":
        return f"at least {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"at most {ctx.get('le')}"
    if kind.startswith("date") or kind.startswith("datetime"):
        return "type a date such as 2026-12-01"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "literal_error":
        return "choose one of the choices offered"
    if kind == "string_pattern_mismatch":
        return "take out the tabs, line breaks or other control characters"
    return str(error.get("msg", "not valid")).rstrip(".")


def console_lines(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line for up to five of FastAPI's errors: "Label: what to type." each."""
    lines = []
    for error in errors[:5]:
        name = str(error.get("loc", ("body",))[-1])
        lines.append(f"{label(name)}: {_what(error)}.")
    return " ".join(lines) or "The form was not complete: reload the page and try again."
