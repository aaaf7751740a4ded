"""What a snippet import did (issue 14): counts per outcome and each bad entry, where it was.

Its own module so :mod:`campaigns.content.snippet_import` stays about reading sources.
``on_change`` lets a door follow an import as it runs (the console's progress page):
it is called after every entry, kept or rejected, with the report so far.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from campaigns.content.snippets import UpsertOutcome
from newsletter.errors import ImportProblem


@dataclass(frozen=True)
class EntryProblem:
    """One rejected entry: ``source`` (a file or feed name), ``at`` ("line 3", "entry 7"
    or ""), ``field`` (the snippet field at fault, "" when the reason names it), ``reason``."""

    source: str
    at: str
    field: str
    reason: str

    @classmethod
    def of(cls, problem: ImportProblem) -> EntryProblem:
        where = problem.where or ""
        source, sep, entry = where.partition(": entry ")
        if sep:
            at = f"entry {entry}"
        else:
            head, sep, line = where.rpartition(":")
            source, at = (head, f"line {line}") if sep and line.isdigit() else (where, "")
        return cls(source, at, problem.field or "", problem.reason)


@dataclass
class ImportReport:
    """Counts per outcome; ``problems`` are the skipped entries as one line each (the CLI's
    and the API's words), ``rejected`` the same entries split for a table."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)
    snippet_ids: list[int] = field(default_factory=list)
    rejected: list[EntryProblem] = field(default_factory=list)
    on_change: Callable[[ImportReport], None] | None = field(default=None, repr=False)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def read(self) -> int:
        """Entries read so far: imported or rejected."""
        return self.imported + len(self.problems)

    def count(self, outcome: UpsertOutcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)
        self._changed()

    def reject(self, problem: ImportProblem) -> None:
        self.problems.append(str(problem))
        self.rejected.append(EntryProblem.of(problem))
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "problems": list(self.problems),
            "snippet_ids": list(self.snippet_ids),
        }
