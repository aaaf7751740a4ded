"""Jinja2 and MJML, set up once: autoescape on, StrictUndefined, user overrides first.

A user's template folder (``NEWSLETTER_TEMPLATES_DIR``) wins file by file over the
shipped ``templates/``; its files may be saved with a UTF-8 byte-order mark
(:func:`newsletter.text.decode_text`). Email templates are ``email/*.mjml.j2`` (Jinja2 renders MJML,
mjml-python renders HTML) with a plain-text twin ``email/*.txt.j2``; pages are
``web/*.html.j2``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from mjml import mjml2html

from newsletter.errors import InvalidInput, TemplateError
from newsletter.settings import PROJECT_ROOT, Settings
from newsletter.text import decode_text

DEFAULT_TEMPLATES_DIR = PROJECT_ROOT / "templates"


class TextFileLoader(jinja2.FileSystemLoader):
    """FileSystemLoader that reads every template through ``decode_text``.

    Jinja2 decodes UTF-8 as is, so a BOM became a U+FEFF before ``<mjml>`` (or inside a
    page where a partial is included) and a UTF-16 file rendered as NUL-studded garbage.
    Raises TemplateError naming the template and the encoding instead.
    """

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = jinja2.loaders.split_template_path(template)
        for folder in self.searchpath:
            filename = os.path.join(folder, *pieces)
            if os.path.isfile(filename):
                break
        else:
            raise jinja2.TemplateNotFound(template)
        with open(filename, "rb") as file:
            data = file.read()
        try:
            source = decode_text(data, source=template)
        except InvalidInput as err:
            raise TemplateError(err.reason, template=template) from err
        mtime = os.path.getmtime(filename)

        def uptodate() -> bool:
            try:
                return os.path.getmtime(filename) == mtime
            except OSError:
                return False

        return source, os.path.normpath(filename), uptodate


class Templates:
    """Renders email and page templates for one configuration."""

    def __init__(self, settings: Settings) -> None:
        folders: list[Path] = []
        if settings.templates_dir is not None:
            folders.append(Path(settings.templates_dir))
        folders.append(DEFAULT_TEMPLATES_DIR)
        self.folders = [f.resolve() for f in folders]
        loader = TextFileLoader([str(f) for f in folders])
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": jinja2.StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self.html_env = jinja2.Environment(autoescape=True, **common)
        # The text part is not HTML: escaping would show "&amp;" to the reader.
        self.text_env = jinja2.Environment(autoescape=False, keep_trailing_newline=True, **common)
        for env in (self.html_env, self.text_env):
            env.filters["safe_url"] = safe_url
        self.settings = settings

    def _render(self, env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
        try:
            return env.get_template(name).render(**context)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(
                err.message or str(err), template=err.name or name, line=err.lineno
            ) from err
        except jinja2.TemplateNotFound as err:
            raise TemplateError("template not found", template=str(err.name)) from err
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as err:
            # A runtime error: point at the innermost template frame (it may be a partial).
            where, line = self._template_location(err)
            raise TemplateError(str(err), template=where or name, line=line) from err

    def _template_location(self, err: BaseException) -> tuple[str | None, int | None]:
        """The template name and line of a Jinja2 runtime error, from its traceback."""
        filename, line = None, None
        tb = err.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.endswith(".j2"):
                filename, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
        if filename is None:
            return None, None
        for folder in self.folders:
            try:
                return Path(filename).resolve().relative_to(folder).as_posix(), line
            except ValueError:
                continue
        return filename, line

    def render_mjml_source(self, name: str, context: Mapping[str, Any]) -> str:
        return self._render(self.html_env, name, context)

    def render_email_html(self, name: str, context: Mapping[str, Any]) -> str:
        """Jinja2 -> MJML -> HTML."""
        source = self.render_mjml_source(name, context)
        return mjml_to_html(source, template=name)

    def render_text(self, name: str, context: Mapping[str, Any]) -> str:
        return self._render(self.text_env, name, context)

    def render_page(self, name: str, context: Mapping[str, Any]) -> str:
        return self._render(self.html_env, name, context)


def mjml_to_html(source: str, *, template: str = "<mjml>") -> str:
    try:
        return mjml2html(source)
    except ValueError as err:
        hint = _mjml_unbalanced(source)
        raise TemplateError(
            f"MJML error: {err}" + (f" ({hint})" if hint else ""), template=template
        ) from err


_MJML_TAG = re.compile(r"<(/?)(mjml|mj-[a-z-]+)\b[^>]*?(/?)>")


def _mjml_unbalanced(source: str) -> str | None:
    """Where the MJML elements stop nesting properly; mrml's errors carry no position.

    Lines are those of the MJML that Jinja2 produced (the template after rendering).
    """
    stack: list[tuple[str, int]] = []
    for match in _MJML_TAG.finditer(source):
        closing, name, self_closing = match.groups()
        line = source.count("\n", 0, match.start()) + 1
        if self_closing:
            continue
        if not closing:
            stack.append((name, line))
        elif not stack or stack[-1][0] != name:
            opened = f"; <{stack[-1][0]}> is open since line {stack[-1][1]}" if stack else ""
            return f"unexpected </{name}> at rendered MJML line {line}{opened}"
        else:
            stack.pop()
    if stack:
        name, line = stack[-1]
        return f"<{name}> opened at rendered MJML line {line} is never closed"
    return None


_SAFE_SCHEMES = re.compile(r"^https?://", re.IGNORECASE)


def safe_url(value: object) -> str:
    """Only http(s) links survive; anything else (javascript:, data:) becomes '#'."""
    text = str(value or "").strip()
    return text if _SAFE_SCHEMES.match(text) else "#"


_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_DEFAULT_BRAND_COLOR = "#1f5f8b"


def brand_context(settings: Settings) -> dict[str, Any]:
    """The ``brand`` mapping every email layout expects (email/layout.mjml.j2).

    The colour lands inside CSS and attributes, so anything but a hex colour falls back to
    the default rather than letting a setting inject style.
    """
    color = settings.brand_color if _HEX_COLOR.match(settings.brand_color) else None
    color = color or _DEFAULT_BRAND_COLOR
    return {
        "name": settings.newsletter_name,
        "color": color,
        # Text on the brand colour: white unless that would fail WCAG AA (4.5:1).
        "on_color": "#ffffff" if _contrast(color, "#ffffff") >= 4.5 else "#111111",
        "postal_address": settings.postal_address or "",
        # What every footer prints: who sends and where, the name once (see postal_line).
        "postal_line": postal_line(settings.newsletter_name, settings.postal_address),
        "privacy_notice_url": settings.privacy_notice_url or "",
        "disclaimer": settings.disclaimer,
        "base_url": settings.base_url.rstrip("/"),
    }


def postal_line(name: str, address: str | None) -> str:
    """'Name · address' for a footer, or the address alone when it already starts with
    the name ('Pain Relief Weekly, 12 Example Street, ...'), so no footer repeats it.

    CAN-SPAM (15 U.S.C. 7704(a)(5)(A)(iii)) wants the sender's valid postal address in
    every message; the name beside it says whose it is. Empty without an address.
    """
    address = " ".join((address or "").split())
    name = " ".join(name.split())
    if not address:
        return ""
    if not name or address.casefold().startswith(name.casefold()):
        return address
    return f"{name} \u00b7 {address}"


def _luminance(hex_color: str) -> float:
    digits = hex_color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two hex colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def footer_context(
    *,
    reason: str,
    unsubscribe_url: str | None = None,
    preferences_url: str | None = None,
    show_disclaimer: bool = True,
) -> dict[str, Any]:
    """The ``footer`` mapping of email/layout.mjml.j2 (links may be ``[%key%]`` placeholders)."""
    return {
        "reason": reason,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url,
        "show_disclaimer": show_disclaimer,
    }
