"""Message catalogs (Babel ``.po`` files for en and ru) and the ``gettext`` used by every user-facing string.

Catalogs are read from the ``.po`` sources at start-up, so there is no compile step to forget.
Extract new strings with ``make messages`` (pybabel extract + update).
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["LANGUAGES", "current_language", "gettext", "negotiate", "translations"]

LANGUAGES = ("en", "ru")
LOCALE_DIR = Path(__file__).parent / "locale"
current_language: ContextVar[str] = ContextVar("current_language", default="en")


class _PoTranslations(_gettext.NullTranslations):
    def __init__(self, catalog: dict[str, str]) -> None:
        super().__init__()
        self._catalog = catalog

    def gettext(self, message: str) -> str:
        return self._catalog.get(message) or message


@cache
def translations(language: str) -> _gettext.NullTranslations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language not in LANGUAGES or not path.exists():
        return Translations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=language)
    return _PoTranslations(
        {
            m.id: m.string
            for m in catalog
            if isinstance(m.id, str) and m.id and isinstance(m.string, str) and m.string
        }
    )


def gettext(message: str, language: str | None = None) -> str:
    """Translate ``message`` into ``language`` (default: the language of the current request)."""
    return translations(language or current_language.get()).gettext(message)


def negotiate(accept_language: str | None, default: str = "en") -> str:
    """Pick en or ru from an Accept-Language header."""
    if not accept_language:
        return default
    best, best_q = default, -1.0
    for part in accept_language.split(","):
        lang, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        code = lang.strip().lower()[:2]
        if code in LANGUAGES and q > best_q:
            best, best_q = code, q
    return best
