"""Jinja2 templates with the gettext catalogs installed (``{{ _("...") }}`` in templates)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from frontoffice.i18n import current_language, gettext

__all__ = ["templates"]

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["_"] = gettext
templates.env.globals["current_language"] = current_language.get
