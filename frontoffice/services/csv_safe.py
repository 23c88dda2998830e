"""The one CSV writer of every export: cells a spreadsheet would run as a formula stay text.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before looking for one of those) is a formula to Excel, LibreOffice and Google
Sheets: ``=cmd|' /C calc'!A0`` in a customer's name would run a program on the supervisor's machine
(OWASP "CSV injection"). Every export writes its cells through :func:`safe_cell`, which puts a single
quote before such a cell — the spreadsheets' own "this is text" mark, not shown in the cell. Numbers
(``-12.5``, ``+74951234567``) are left as they are: they are values, not formulas.

So that an export re-imports losslessly, a cell that itself starts with a quote gets one more, and the
CSV import takes one quote off a cell that starts with a quote followed by one of those characters or
by another quote (:func:`unquote_cell`). A cell ``'hello`` written by hand stays ``'hello``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_lines", "safe_cell", "unquote_cell"]

# OWASP: the characters that make a spreadsheet read a cell as a formula; tab and CR because Excel
# skips them before the formula character.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower() not in ("+inf", "-inf", "+nan", "-nan")


def safe_cell(value: Any) -> str:
    """One CSV cell: ``None`` is empty, booleans are ``true``/``false``, text a spreadsheet would run
    as a formula gets a leading ``'`` (and so does text that starts with ``'``, see the module)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text[:1] in FORMULA_STARTS and not _is_number(text):
        return _QUOTE + text
    if text[:1] == _QUOTE:
        return _QUOTE + text
    return text


def unquote_cell(text: str) -> str:
    """The value of a cell :func:`safe_cell` wrote: one protective quote taken off."""
    if text[:1] == _QUOTE and text[1:2] in (*FORMULA_STARTS, _QUOTE) and text[1:2] != "":
        return text[1:]
    return text


def csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` as CSV text (``\\r\\n`` line ends, as RFC 4180 says), every cell through :func:`safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buffer.getvalue()
