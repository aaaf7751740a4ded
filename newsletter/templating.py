"""Jinja2 and MJML, set up once: autoescape on, StrictUndefined, user overrides first.

A user's template folder (``NEWSLETTER_TEMPLATES_DIR``) wins file by file over the
shipped ``templates/``. Email templates are ``email/*.mjml.j2`` (Jinja2 renders MJML,
mjml-python renders HTML) with a plain-text twin ``email/*.txt.j2``; pages are
``web/*.html.j2``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from mjml import mjml2html

from newsletter.errors import TemplateError
from newsletter.settings import PROJECT_ROOT, Settings

DEFAULT_TEMPLATES_DIR = PROJECT_ROOT / "templates"


class Templates:
    """Renders email and page templates for one configuration."""

    def __init__(self, settings: Settings) -> None:
        folders: list[Path] = []
        if settings.templates_dir is not None:
            folders.append(Path(settings.templates_dir))
        folders.append(DEFAULT_TEMPLATES_DIR)
        loader = jinja2.FileSystemLoader([str(f) for f in folders])
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
            raise TemplateError(err.message or str(err), template=err.name or name,
                                line=err.lineno) from err
        except jinja2.TemplateNotFound as err:
            raise TemplateError("template not found", template=str(err.name)) from err
        except jinja2.UndefinedError as err:
            raise TemplateError(str(err), template=name, line=_template_line(err)) from err

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
        raise TemplateError(f"MJML error: {err}", template=template) from err


def _template_line(err: BaseException) -> int | None:
    """The template line of a Jinja2 runtime error, from its traceback."""
    tb = err.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_SAFE_SCHEMES = re.compile(r"^https?://", re.IGNORECASE)


def safe_url(value: object) -> str:
    """Only http(s) links survive; anything else (javascript:, data:) becomes '#'."""
    text = str(value or "").strip()
    return text if _SAFE_SCHEMES.match(text) else "#"
