"""Position and expected-wait announcements for queued callers, in English and Russian.

The sentence is built from the ACD engine's figures (:meth:`RoutingEngine.position` and
:meth:`RoutingEngine.expected_wait`) and synthesised with espeak-ng on first use, like the menu
prompts; each distinct sentence is rendered once and kept (positions and minutes repeat). Russian
numbers are written out in words with the right gender and plural ("одна минута", "две минуты",
"пять минут"), because espeak-ng reads bare digits in the nominative masculine and the noun after
them would not agree.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections import OrderedDict

from .prompts import render_prompt

__all__ = ["Announcer", "announcement_text", "russian_number", "russian_plural"]

log = logging.getLogger("frontoffice.voice")

# Distinct rendered sentences kept in memory (about 60 KB each): positions 1-100 in two languages
# with a few wait values fit.
CACHE_SIZE = 512
# Above this, the minutes are not worth saying precisely ("about 60 minutes" is already bad news).
MAX_SPOKEN_MINUTES = 60

_UNITS_M = ("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_UNITS_F = ("ноль", "одна", "две", *_UNITS_M[3:])
_TEENS = (
    "десять",
    "одиннадцать",
    "двенадцать",
    "тринадцать",
    "четырнадцать",
    "пятнадцать",
    "шестнадцать",
    "семнадцать",
    "восемнадцать",
    "девятнадцать",
)
_TENS = (
    "",
    "",
    "двадцать",
    "тридцать",
    "сорок",
    "пятьдесят",
    "шестьдесят",
    "семьдесят",
    "восемьдесят",
    "девяносто",
)
_HUNDREDS = (
    "",
    "сто",
    "двести",
    "триста",
    "четыреста",
    "пятьсот",
    "шестьсот",
    "семьсот",
    "восемьсот",
    "девятьсот",
)


def russian_plural(n: int, one: str, few: str, many: str) -> str:
    """The noun form after ``n``: 1, 21 → ``one``; 2-4, 22-24 → ``few``; 0, 5-20, 25... → ``many``."""
    n = abs(n) % 100
    if 11 <= n <= 19:
        return many
    last = n % 10
    if last == 1:
        return one
    if 2 <= last <= 4:
        return few
    return many


def _below_thousand(n: int, feminine: bool) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(_HUNDREDS[hundreds])
    if 10 <= rest <= 19:
        words.append(_TEENS[rest - 10])
        return words
    tens, units = divmod(rest, 10)
    if tens:
        words.append(_TENS[tens])
    if units:
        words.append((_UNITS_F if feminine else _UNITS_M)[units])
    return words


def russian_number(n: int, *, feminine: bool = False) -> str:
    """A cardinal number in words, nominative case (0 ≤ n < 1 000 000): ``russian_number(21,
    feminine=True)`` is "двадцать одна" (минута), ``russian_number(2000)`` "две тысячи"."""
    if not 0 <= n < 1_000_000:
        raise ValueError("out of range")
    if n == 0:
        return _UNITS_M[0]
    thousands, rest = divmod(n, 1000)
    words: list[str] = []
    if thousands:
        words += _below_thousand(thousands, feminine=True)  # тысяча is feminine
        words.append(russian_plural(thousands, "тысяча", "тысячи", "тысяч"))
    if rest:
        words += _below_thousand(rest, feminine)
    return " ".join(words)


def announcement_text(language: str, position: int, wait_s: float | None) -> str:
    """The sentence for a caller at ``position`` with ``wait_s`` expected (None: unknown, not said).

    The wait is rounded to whole minutes; under a minute it is "less than a minute".
    """
    minutes = None if wait_s is None else min(MAX_SPOKEN_MINUTES, round(wait_s / 60))
    if language == "ru":
        text = f"Ваш номер в очереди: {russian_number(position)}."
        if minutes is not None:
            if minutes < 1:
                text += " Примерное время ожидания: меньше минуты."
            else:
                unit = russian_plural(minutes, "минута", "минуты", "минут")
                text += f" Примерное время ожидания: {russian_number(minutes, feminine=True)} {unit}."
        return text
    text = f"You are number {position} in the queue."
    if minutes is not None:
        if minutes < 1:
            text += " The expected wait is less than a minute."
        else:
            text += f" The expected wait is about {minutes} minute{'' if minutes == 1 else 's'}."
    return text


class Announcer:
    """Renders announcements with espeak-ng on first use and keeps them (LRU)."""

    def __init__(self, espeak: str | None = None) -> None:
        self.espeak = espeak or shutil.which("espeak-ng")
        self._cache: OrderedDict[str, asyncio.Task[bytes]] = OrderedDict()

    @property
    def available(self) -> bool:
        return self.espeak is not None

    async def render(self, language: str, position: int, wait_s: float | None) -> bytes:
        """8 kHz PCM of the announcement; empty without espeak-ng or when synthesis fails."""
        if self.espeak is None:
            return b""
        lang = language if language in ("en", "ru") else "en"
        text = announcement_text(lang, position, wait_s)
        task = self._cache.get(text)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(render_prompt, text, lang, self.espeak)
            )
            self._cache[text] = task
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(text)
        try:
            return await asyncio.shield(task)
        except Exception:
            log.warning("announcement synthesis failed", exc_info=True)
            self._cache.pop(text, None)
            return b""
