"""A form the room refused, drawn again with what the marketer typed.

A console form's handler catches the room's ``InvalidInput``, rolls the request's session
back and draws its own page again, status 400, with a :class:`Refused`: which form, the
console's one line (``web.errors.console_message``: the reason and what to do), the field
named and the values as posted, so nothing typed is lost and the line stands next to the
form (``role="alert"``; the field gets ``aria-invalid``). Refusals that are not about what
was typed (a state change not allowed, no such campaign) keep the error map's page.
Every console page gets :data:`NOTHING` unless its handler passes another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class Refused:
    form: str = ""
    message: str = ""
    field: str = ""
    values: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def line(self, form: str) -> str:
        """The refusal's line if ``form`` is the form refused, else ""."""
        return self.message if form == self.form else ""

    def typed(self, form: str, name: str, default: object = "") -> object:
        """What was typed into ``name`` if ``form`` was refused, else ``default``."""
        return self.values.get(name, default) if form == self.form else default

    def invalid(self, form: str, name: str) -> bool:
        """Whether ``name`` of ``form`` is the field the refusal names."""
        return form == self.form and name == self.field


NOTHING = Refused()
