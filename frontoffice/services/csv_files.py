"""Reading an uploaded CSV file the way every import of ours does: UTF-8 (with or without BOM) or
Windows-1251, what Excel writes in Russian and English locales; comma-, semicolon- or tab-separated;
a binary file refused with the line of its first control character; a quote never closed refused
with the line it opened on (``strict``), not read as one cell swallowing the rest of the file; at
most ``max_rows`` rows. Refusals are :class:`InvalidInput` (400) naming the line, never a 500.

The customer import (``crm_csv``), the campaign contact lists and the do-not-call lists use it.
"""

from __future__ import annotations

import csv
import io
import re

from frontoffice.domain.exceptions import InvalidInput

__all__ = ["csv_error_reason", "decode_text", "read_rows", "sniff_delimiter"]

# Control characters no text file holds (C0 but tab, line feed and carriage return; DEL): Windows-1251
# maps almost every byte to some character, so a binary file (an image, a spreadsheet's .xlsx, a
# zip) decodes "successfully"; these characters, frequent in binary data, tell it apart.
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_text(data: bytes) -> str:
    """The file's text: UTF-8 first (with or without BOM), else Windows-1251; a binary file is refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1251")
        except UnicodeDecodeError:
            raise InvalidInput(
                "The file is neither UTF-8 nor Windows-1251 text", error_id="csv-encoding"
            ) from None
    binary = _BINARY.search(text)
    if binary is not None:
        raise InvalidInput(
            "The file is not a text file (it holds control characters)",
            error_id="csv-encoding",
            line=text.count("\n", 0, binary.start()) + 1,
        )
    return text


def csv_error_reason(exc: csv.Error) -> str:
    """What the csv module's error means to the person who made the file."""
    reason = str(exc)
    if "unexpected end of data" in reason:
        return 'a quoted cell is not closed: a quote (") is missing'
    return reason


def sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def read_rows(data: bytes, *, required: str, max_rows: int) -> list[tuple[int, dict[str, str]]]:
    """The rows of an uploaded CSV as (line the row starts on, cells by lower-cased column name);
    ``required`` names the column the file must have."""
    text = decode_text(data)
    reader = csv.DictReader(io.StringIO(text), delimiter=sniff_delimiter(text), strict=True)
    rows: list[tuple[int, dict[str, str]]] = []
    row_start = 1
    try:
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if required not in fields:
            # Literal messages, so the catalog has them (an f-string's text is never extracted).
            if required == "phone":
                raise InvalidInput("The file needs a 'phone' column", error_id="csv-no-phone-column")
            raise InvalidInput(
                "The file lacks a required column", error_id=f"csv-no-{required}-column", column=required
            )
        reader.fieldnames = fields
        row_start = reader.line_num + 1
        for row in reader:
            if len(rows) >= max_rows:
                raise InvalidInput("Too many rows", error_id="csv-too-long", max_rows=max_rows)
            cells = {k: (v or "") for k, v in row.items() if isinstance(k, str)}
            rows.append((row_start, cells))
            row_start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput(
            "Malformed CSV", error_id="csv-malformed", line=row_start, reason=csv_error_reason(exc)
        ) from None
    return rows
