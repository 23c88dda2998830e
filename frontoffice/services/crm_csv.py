"""CSV import and export of customers, lossless, run as background jobs (:mod:`.jobs`).

**The format** (docs/integrations.md, "CSV import and export"): one row per customer; ``id`` (the
card's id: empty for a new customer), the names, ``company`` (by name), one column per kind of identity
— ``phones``, ``emails``, ``chats``, ``messengers`` — with several values separated by ``;`` (or
``,`` / ``|`` when the file's delimiter is ``;``), each value optionally followed by its label in
brackets (``+74951234567 [work]``; ``\\`` escapes ``]`` and ``\\`` inside a label), ``tags`` likewise,
``vip`` as ``true``/``false``, ``language``, ``owner`` (a username) and ``custom:<name>`` per custom field.
Every cell goes through the shared writer (:mod:`.csv_safe`): text a spreadsheet would run as a formula
is written with a leading ``'``, which the import takes off again. So an export re-imports into the
same database as an update that changes nothing.

**Modes.** ``create`` makes a card per row (a row with an ``id``, or with an identity another card
has, is an error); ``update`` changes the card the row names — by ``id``, or else by its identities —
and refuses rows that name none; ``upsert`` updates the card a row names and creates one for a row that
names none. An update changes only the columns the file has: a column it has replaces that part of
the card (its identities of that kind, its tags; an empty ``custom:x`` cell removes the field).

**Errors.** A validation pass reads the whole file first (a dry run stops there); with
``all_or_nothing`` one bad row means nothing is written, with ``valid_rows`` the valid rows are written
and the bad ones reported by line. The rows are then written in batches of :data:`IMPORT_BATCH` rows,
each batch in its own transaction that also records the job's progress and checkpoint, so an import
interrupted by a restart continues after its last committed batch (a row that became invalid since the
validation pass — another user took its phone meanwhile — is reported, not written).

**Beside live traffic.** The rows are parsed in a worker process, :data:`PARSE_CHUNK` rows at a time
(on the event loop or a thread, parsing delayed the loop's other work: see there), a batch is short
enough to hold SQLite's write lock for about 20 ms, and after each batch the job pauses as long as the
batch took (:data:`WRITE_PAUSE_RATIO`), so contacts keep their latency while a large file is imported
(``bench/import_job.py``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from frontoffice.aio import ProcessWorker
from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import IdentityKind
from frontoffice.store.tables import Company, Customer, CustomerProject, CustomerTag, Identity, User

from .context import Actor, audit
from .crm import CrmService, search_key
from .csv_files import csv_error_reason, decode_text
from .csv_safe import csv_lines, unquote_cell
from .identities import normalize_identity
from .jobs import JobContext, JobOut, JobOutcome, JobRunner, job_out
from .schemas import CustomerPatch, ImportReport, ImportRowError
from .scope import card_owners, creation_projects, customer_visible, where

__all__ = [
    "CHECK_BATCH",
    "CSV_COLUMNS",
    "EXPORT_JOB",
    "IMPORT_BATCH",
    "IMPORT_JOB",
    "PARSE_CHUNK",
    "WRITE_PAUSE_RATIO",
    "CustomerCsv",
    "CustomerExportJob",
    "CustomerImportJob",
    "ImportMode",
    "OnErrors",
    "export_customers_csv",
    "read_import_file",
]

IMPORT_JOB = "customers.import"
EXPORT_JOB = "customers.export"

IDENTITY_COLUMNS: dict[str, IdentityKind] = {
    "phones": IdentityKind.PHONE,
    "emails": IdentityKind.EMAIL,
    "chats": IdentityKind.CHAT,
    "messengers": IdentityKind.MESSENGER,
}
CSV_COLUMNS = [
    "id",
    "first_name",
    "middle_name",
    "last_name",
    "company",
    *IDENTITY_COLUMNS,
    "tags",
    "vip",
    "language",
    "owner",
]
KNOWN = set(CSV_COLUMNS)
CUSTOM_PREFIX = "custom:"
# Several identities or tags in one cell are separated by ';' (or ',' or '|', whichever the file's
# delimiter is not); separators inside a label's brackets do not count.
LIST_SEPARATORS = (";", ",", "|")
# Rows per write transaction. On SQLite a batch holds the database's one write lock from its first
# INSERT to its COMMIT, and every contact the ACD commits meanwhile waits for it. Measured with
# bench/import_job.py (parsing on the loop, waiters woken): 500-row batches held it 40-60 ms (p50),
# 200 and 100 rows both ~20 ms — mostly the batch's fixed cost (its statements' hand-offs, the fsync)
# — and 100 cost a third more CPU per row. Bind parameters stay far below PostgreSQL's 32,767.
IMPORT_BATCH = 200
# Rows the validation pass checks per look-up (reads only; one progress record each).
CHECK_BATCH = 1000
# Rows read from the file (csv's reader: a few microseconds a row) before the loop runs other work.
READ_SLICE = 100
# Rows sent to the worker process (:data:`PARSING`) at a time. Parsing a row takes 150-200 us of CPU
# (phonenumbers, email-validator, the API's checks), 0.3 ms a row for both passes: on the event loop,
# even in slices of 10 rows with the loop let run between them, every hop of a contact's way waited
# behind a slice (offer p99 59 ms while bench/import_job.py imported 100,000 rows on a quiet machine,
# against 22 ms without an import); on a thread it competes with the loop for the GIL. In a process of
# its own it takes the other core. A chunk is large enough that the pipe's cost (pickling the rows
# and the results) is small beside the parsing.
PARSE_CHUNK = 500
# After each write batch the import pauses as long as the batch took, so it uses at most half of the
# database's writer and of the disk's flushes: a contact committed just after a batch met fsyncs of
# 50-90 ms while the import wrote flat out (offer p99 100-119 ms in bench/import_job.py --quick); paced,
# 48-71 ms, at 70-85 % of the rows per second.
WRITE_PAUSE_RATIO = 1.0
EXPORT_BATCH = 500
# Values per IN list of a look-up (far below PostgreSQL's 32,767 bind parameters).
_IN_LIST = 500
# An import's report lists this many errors at most (a file of 100,000 bad rows would otherwise make
# a report of tens of megabytes); ``errors_total`` counts them all.
MAX_REPORTED_ERRORS = 1000
# A batch that met an identity taken meanwhile (its rows are checked again) is tried this many times.
BATCH_ATTEMPTS = 3
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "да", "vip"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "n", "нет"})


class ImportMode(StrEnum):
    """What a row does: make a card, change the card it names, or either."""

    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"


class OnErrors(StrEnum):
    """What a file with bad rows does: write nothing, or write its valid rows."""

    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ROWS = "valid_rows"


# ---------------------------------------------------------------------- reading the file
_decode = decode_text
_csv_reason = csv_error_reason


@dataclass(slots=True)
class CsvFile:
    """A decoded import file: its text, delimiter and header (checked)."""

    text: str
    delimiter: str
    header: list[str]
    rows: int

    def reader(self) -> csv.DictReader[str]:
        # strict: a quote that is never closed is an error (with its line), not a cell swallowing the
        # rest of the file into one "valid" row.
        reader = csv.DictReader(io.StringIO(self.text), delimiter=self.delimiter, strict=True)
        reader.fieldnames  # noqa: B018 - reads the header line
        return reader


def read_import_file(data: bytes, max_rows: int) -> CsvFile:
    """Decode and check an import file: encoding, delimiter, header and row count (CPU work: run it
    on a worker thread)."""
    text = _decode(data)
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    lines = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    row_start = 1  # the line the next row starts on: a quote opened there and never closed runs on
    try:
        header = next(lines, [])
        row_start = lines.line_num + 1
        rows = 0
        for _ in lines:
            rows += 1
            row_start = lines.line_num + 1
            if rows > max_rows:
                raise InvalidInput(
                    "The CSV file has too many rows", error_id="csv-too-large", max_rows=max_rows
                )
    except csv.Error as exc:
        raise InvalidInput(
            "Malformed CSV", error_id="csv-malformed", line=row_start, reason=_csv_reason(exc)
        ) from None
    header = [h.strip() for h in header]
    if not header or header == [""]:
        raise InvalidInput("The CSV file is empty", error_id="csv-empty")
    unknown = [h for h in header if h not in KNOWN and not h.startswith(CUSTOM_PREFIX)]
    if unknown:
        raise InvalidInput(
            "Unknown CSV columns", error_id="csv-unknown-columns", columns=unknown, expected=CSV_COLUMNS
        )
    return CsvFile(text=text, delimiter=delimiter, header=header, rows=rows)


# The beginning of an upload checked before its job is queued (the header is in it).
_HEAD_BYTES = 64 * 1024


def check_header(upload: BinaryIO) -> None:
    """Refuse an upload whose header line names unknown columns, or that is empty (the rest of the
    file is checked by the job)."""
    upload.seek(0)
    head = upload.read(_HEAD_BYTES)
    upload.seek(0)
    if not head.strip():
        raise InvalidInput("The CSV file is empty", error_id="csv-empty")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # Cut in the middle of a character at the end of the head: the part before it is UTF-8.
        cut = exc.start >= len(head) - 3
        text = head[: exc.start].decode("utf-8-sig") if cut else head.decode("cp1251", errors="replace")
    if "\n" not in text and len(head) == _HEAD_BYTES:
        return  # a header longer than the head: the job reads it whole
    first = text.splitlines()[0] if text.splitlines() else ""
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    try:
        header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])]
    except csv.Error as exc:
        raise InvalidInput("Malformed CSV", error_id="csv-malformed", line=1, reason=str(exc)) from None
    unknown = [h for h in header if h not in KNOWN and not h.startswith(CUSTOM_PREFIX)]
    if unknown:
        raise InvalidInput(
            "Unknown CSV columns", error_id="csv-unknown-columns", columns=unknown, expected=CSV_COLUMNS
        )


def split_items(cell: str, delimiter: str) -> list[tuple[str, str]]:
    """The items of a list cell as ``(value, label)``: ``a [home]; b`` → ``[("a", "home"), ("b", "")]``.
    Separators inside a label's brackets do not split; ``\\`` escapes ``]`` and ``\\`` in a label."""
    separator = next((s for s in LIST_SEPARATORS if s != delimiter and s in _outside_labels(cell)), None)
    items: list[tuple[str, str]] = []
    value: list[str] = []
    label: list[str] = []
    in_label = after_label = escaped = False

    def flush() -> None:
        text = "".join(value).strip()
        if text:
            items.append((text, "".join(label).strip()))

    for ch in cell:
        if in_label:
            if escaped:
                label.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "]":
                in_label, after_label = False, True
            else:
                label.append(ch)
        elif ch == separator:
            flush()
            value, label, after_label = [], [], False
        elif ch == "[" and not after_label:
            in_label = True
        elif not after_label:  # text after a label's bracket, up to the separator, is ignored
            value.append(ch)
    flush()
    return items


def _outside_labels(cell: str) -> str:
    out: list[str] = []
    depth = False
    escaped = False
    for ch in cell:
        if depth:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "]":
                depth = False
        elif ch == "[":
            depth = True
        else:
            out.append(ch)
    return "".join(out)


def join_items(items: Sequence[tuple[str, str]]) -> str:
    """The inverse of :func:`split_items` with ``;``: ``value [label]`` items."""
    parts = []
    for value, label in items:
        if label:
            escaped = label.replace("\\", "\\\\").replace("]", "\\]")
            parts.append(f"{value} [{escaped}]")
        else:
            parts.append(value)
    return ";".join(parts)


def _flag(cell: str) -> bool | None:
    word = cell.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


@dataclass(slots=True)
class ParsedRow:
    """One valid-looking row: what it says about the card. ``identities`` and the other optional
    parts hold only the columns the file has (an update changes only those)."""

    line: int
    customer_id: int | None
    values: dict[str, Any]  # customers columns (first_name, ..., vip, language)
    company: str | None  # "" clears, None: no column
    owner: str | None  # "" clears, None: no column
    identities: dict[str, list[tuple[str, str]]]  # kind -> [(value, label)] for the file's kinds
    tags: list[str] | None
    custom: dict[str, str | None]  # the file's custom columns: None removes the field


@dataclass(slots=True)
class ParsedLine:
    """One row parsed on its own (:func:`parse_lines`). What depends on the rows before it — an id or
    an identity an earlier line has — is settled by :meth:`Parser.settle`."""

    line: int
    row: ParsedRow | None  # None when the row has errors of its own
    errors: list[ImportRowError]
    # The row's ids and identities to look for in earlier lines: (where in ``errors`` a repeat is
    # reported, key, column, value as shown in the message).
    repeats: list[tuple[int, tuple[str, Any], str, str]]


def parse_line(line: int, row: dict[str | None, Any], delimiter: str, region: str) -> ParsedLine:
    """Parse one row by itself: pure CPU (phone numbers, email addresses, the API's checks)."""
    errors: list[ImportRowError] = []
    repeats: list[tuple[int, tuple[str, Any], str, str]] = []
    if None in row:
        too_many = ImportRowError(line=line, field="", message="more cells than columns")
        return ParsedLine(line, None, [too_many], [])
    cells = {k.strip(): unquote_cell(v or "") for k, v in row.items() if k is not None}
    customer_id: int | None = None
    raw_id = cells.get("id", "").strip()
    if raw_id:
        try:
            customer_id = int(raw_id)
            if not 0 < customer_id < 2**63:
                raise ValueError
        except ValueError:
            errors.append(ImportRowError(line=line, field="id", message=f"{raw_id}: not a customer id"))
        else:
            repeats.append((len(errors), ("#id", customer_id), "id", str(customer_id)))
    identities: dict[str, list[tuple[str, str]]] = {}
    for column, kind in IDENTITY_COLUMNS.items():
        if column not in cells:
            continue
        found: list[tuple[str, str]] = []
        for raw, label in split_items(cells[column], delimiter):
            try:
                value = normalize_identity(kind, raw, region)
            except InvalidInput as exc:
                errors.append(ImportRowError(line=line, field=column, message=f"{raw}: {exc.message}"))
                continue
            if len(label) > 64:
                message = f"{raw}: label over 64 characters"
                errors.append(ImportRowError(line=line, field=column, message=message))
                continue
            repeats.append((len(errors), (kind.value, value), column, value))
            if all(v != value for v, _ in found):
                found.append((value, label))
        identities[kind.value] = found
    values: dict[str, Any] = {}
    for name in ("first_name", "middle_name", "last_name"):
        if name in cells:
            values[name] = cells[name].strip()
    if "vip" in cells:
        flag = _flag(cells["vip"])
        if flag is None:
            message = f"{cells['vip']}: not true or false"
            errors.append(ImportRowError(line=line, field="vip", message=message))
        else:
            values["vip"] = flag
    if "language" in cells:
        values["language"] = cells["language"].strip().lower() or None
    tags = [v for v, _ in split_items(cells["tags"], delimiter)] if "tags" in cells else None
    custom: dict[str, str | None] = {
        k[len(CUSTOM_PREFIX) :]: (v if v != "" else None)
        for k, v in cells.items()
        if k.startswith(CUSTOM_PREFIX)
    }
    # The same checks as the API's (names, tags, language, custom fields).
    try:
        CustomerPatch(**values, tags=tags, custom={k: v for k, v in custom.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"][:1])
            errors.append(ImportRowError(line=line, field=name, message=err["msg"]))
    company = cells["company"].strip() if "company" in cells else None
    if company is not None and len(company) > 300:
        errors.append(ImportRowError(line=line, field="company", message="longer than 300 characters"))
    owner = cells["owner"].strip() if "owner" in cells else None
    if errors:
        return ParsedLine(line, None, errors, repeats)
    parsed = ParsedRow(
        line=line,
        customer_id=customer_id,
        values=values,
        company=company,
        owner=owner,
        identities=identities,
        tags=tags,
        custom=custom,
    )
    return ParsedLine(line, parsed, errors, repeats)


def parse_lines(
    rows: list[tuple[int, dict[str | None, Any]]], delimiter: str, region: str
) -> list[ParsedLine]:
    """:func:`parse_line` for each (line, row): what the import's worker process runs."""
    return [parse_line(line, row, delimiter, region) for line, row in rows]


# The import's parsing runs here (see PARSE_CHUNK).
PARSING = ProcessWorker()


@dataclass
class Parser:
    """Reads a file's rows and has them parsed off the event loop (see :meth:`batch`); remembers the
    ids and identities seen on earlier lines."""

    delimiter: str
    region: str
    seen: dict[tuple[str, Any], int] = field(default_factory=dict)

    def settle(self, parsed: ParsedLine) -> tuple[ParsedRow | None, list[ImportRowError]]:
        """The row, or its errors, once the ids and identities of the lines before it are known."""
        extra: dict[int, list[ImportRowError]] = {}
        for at, key, column, shown in parsed.repeats:
            first = self.seen.setdefault(key, parsed.line)
            if first != parsed.line:
                message = f"{shown} repeats line {first}"
                repeat = ImportRowError(line=parsed.line, field=column, message=message)
                extra.setdefault(at, []).append(repeat)
        if not extra:
            return parsed.row, parsed.errors
        errors: list[ImportRowError] = []
        for at, error in enumerate(parsed.errors):
            errors += extra.get(at, [])
            errors.append(error)
        errors += extra.get(len(parsed.errors), [])
        return None, errors

    def read(
        self, rows: Iterator[dict[str | None, Any]], reader: csv.DictReader[str], size: int
    ) -> list[tuple[int, dict[str | None, Any]]]:
        """Up to ``size`` rows with the line each ends on."""
        read: list[tuple[int, dict[str | None, Any]]] = []
        try:
            for row in rows:
                read.append((reader.line_num, row))
                if len(read) >= size:
                    break
        except csv.Error as exc:
            raise InvalidInput(
                "Malformed CSV", error_id="csv-malformed", line=reader.line_num, reason=_csv_reason(exc)
            ) from None
        return read

    async def _read_chunk(
        self, rows: Iterator[dict[str | None, Any]], reader: csv.DictReader[str], size: int
    ) -> list[tuple[int, dict[str | None, Any]]]:
        """Up to ``size`` rows, :data:`READ_SLICE` at a time with the event loop let run between."""
        lines: list[tuple[int, dict[str | None, Any]]] = []
        while len(lines) < size and (read := self.read(rows, reader, min(READ_SLICE, size - len(lines)))):
            lines += read
            await asyncio.sleep(0)
        return lines

    async def batch(
        self, rows: Iterator[dict[str | None, Any]], reader: csv.DictReader[str], size: int
    ) -> tuple[list[ParsedRow], list[ImportRowError], int, int]:
        """Read up to ``size`` rows and parse them: (valid rows, errors, rows read, last line).

        The rows are read on the event loop, :data:`READ_SLICE` at a time with the loop let run
        between slices, and parsed in the worker process :data:`PARSE_CHUNK` at a time (see there)."""
        parsed: list[ParsedRow] = []
        errors: list[ImportRowError] = []
        count = 0
        while count < size:
            lines = await self._read_chunk(rows, reader, min(PARSE_CHUNK, size - count))
            if not lines:
                break
            count += len(lines)
            for line in await PARSING.run(parse_lines, lines, self.delimiter, self.region):
                good, bad = self.settle(line)
                errors += bad
                if good is not None:
                    parsed.append(good)
        return parsed, errors, count, reader.line_num


# ---------------------------------------------------------------------- checking rows against the store
@dataclass(slots=True)
class Plan:
    """What a batch's valid rows do: cards to create, cards to change (row, card id)."""

    creates: list[ParsedRow] = field(default_factory=list)
    updates: list[tuple[ParsedRow, int]] = field(default_factory=list)
    errors: list[ImportRowError] = field(default_factory=list)


async def plan_batch(
    s: AsyncSession,
    actor: Actor,
    rows: Sequence[ParsedRow],
    mode: ImportMode,
    owners: dict[str, int],
) -> Plan:
    """Decide what each row does in the store as ``s`` sees it: which card it names (by id, else by
    its identities), and whether its identities belong to another card."""
    plan = Plan()
    pairs = {(kind, value) for r in rows for kind, items in r.identities.items() for value, _ in items}
    holder: dict[tuple[str, str], int] = {}
    values = sorted({v for _, v in pairs})
    for start in range(0, len(values), _IN_LIST):
        for kind, value, customer_id in await s.execute(
            select(Identity.kind, Identity.value, Identity.customer_id).where(
                Identity.value.in_(values[start : start + _IN_LIST])
            )
        ):
            if (kind, value) in pairs:
                holder[(kind, value)] = customer_id
    ids = sorted({r.customer_id for r in rows if r.customer_id is not None})
    live: set[int] = set()
    if ids:
        visible = customer_visible(actor, Customer.id, Customer.owner_id)
        live = set(
            await s.scalars(
                where(
                    select(Customer.id).where(Customer.id.in_(ids), Customer.merged_into_id.is_(None)),
                    visible,
                )
            )
        )
    for row in rows:
        problems: list[ImportRowError] = []
        held = {
            (kind, value): holder[(kind, value)]
            for kind, items in row.identities.items()
            for value, _ in items
            if (kind, value) in holder
        }
        target: int | None = None
        if row.customer_id is not None:
            if mode is ImportMode.CREATE:
                problems.append(
                    ImportRowError(
                        line=row.line,
                        field="id",
                        message="a row with an id changes that customer: import with mode update or upsert",
                    )
                )
            elif row.customer_id not in live:
                problems.append(
                    ImportRowError(line=row.line, field="id", message=f"no customer {row.customer_id}")
                )
            else:
                target = row.customer_id
        elif mode is not ImportMode.CREATE:
            cards = sorted(set(held.values()))
            if len(cards) > 1:
                problems.append(
                    ImportRowError(
                        line=row.line,
                        field="id",
                        message="the row's identities belong to different customers",
                    )
                )
            elif cards:
                target = cards[0]
            elif mode is ImportMode.UPDATE:
                problems.append(
                    ImportRowError(
                        line=row.line, field="id", message="no customer has this id or these identities"
                    )
                )
        for (kind, value), owner in held.items():
            if owner != target:
                problems.append(
                    ImportRowError(
                        line=row.line, field=f"{kind}s", message=f"{value} belongs to another customer"
                    )
                )
        if row.owner and row.owner not in owners:
            problems.append(
                ImportRowError(
                    line=row.line,
                    field="owner",
                    message=f"no user {row.owner!r} who may see the projects of this import",
                )
            )
        if target is None and not problems and mode is not ImportMode.UPDATE:
            named = any(row.values.get(n) for n in ("first_name", "middle_name", "last_name"))
            if not (named or row.company or any(row.identities.values())):
                problems.append(
                    ImportRowError(
                        line=row.line, field="", message="a row needs a name, a company, a phone or an email"
                    )
                )
        if problems:
            plan.errors.extend(problems)
        elif target is None:
            plan.creates.append(row)
        else:
            plan.updates.append((row, target))
    return plan


# ---------------------------------------------------------------------- writing a batch
_CUSTOMERS = cast(Table, Customer.__table__)
_IDENTITIES = cast(Table, Identity.__table__)
_TAGS = cast(Table, CustomerTag.__table__)
_PROJECTS = cast(Table, CustomerProject.__table__)


async def _company_ids(s: AsyncSession, names: set[str], now: Any) -> dict[str, int]:
    """Company ids by name key; companies not there yet are created."""
    keys = {n.strip().lower(): n.strip() for n in names if n.strip()}
    found: dict[str, int] = {}
    if keys:
        for company_id, key in await s.execute(
            select(func.min(Company.id), Company.name_key)
            .where(Company.name_key.in_(sorted(keys)))
            .group_by(Company.name_key)
        ):
            found[key] = company_id
        missing = [k for k in keys if k not in found]
        if missing:
            rows = [
                {"name": keys[k], "name_key": k, "custom": {}, "created_at": now, "updated_at": now}
                for k in missing
            ]
            result = await s.execute(
                insert(cast(Table, Company.__table__)).returning(
                    Company.__table__.c.id, Company.__table__.c.name_key
                ),
                rows,
            )
            for company_id, key in result:
                found[key] = company_id
    return found


async def apply_batch(
    s: AsyncSession,
    actor: Actor,
    plan: Plan,
    header: Sequence[str],
    owners: dict[str, int],
    projects: Sequence[int],
    now: Any,
) -> tuple[int, int]:
    """Write the plan's creations and changes in ``s``; returns (created, updated)."""
    companies = await _company_ids(
        s,
        {r.company for r in plan.creates if r.company} | {r.company for r, _ in plan.updates if r.company},
        now,
    )

    def company_of(row: ParsedRow) -> int | None:
        return companies.get(row.company.strip().lower()) if row.company else None

    def owner_of(row: ParsedRow) -> int | None:
        return owners[row.owner] if row.owner else None

    created_ids: list[int] = []
    if plan.creates:
        # One multi-row INSERT ... RETURNING per batch (SQLAlchemy's "insertmanyvalues"). The ids come
        # back in no promised order, but they are given in the order of the VALUES: SQLite gives each
        # new row max(rowid) + 1 while this transaction holds the write lock, PostgreSQL takes the
        # sequence's next value row by row. So the ids sorted are the rows' ids in order. (Asking
        # SQLAlchemy to sort them, ``sort_by_parameter_order``, made it insert one row per statement.)
        result = await s.execute(
            insert(_CUSTOMERS).returning(_CUSTOMERS.c.id),
            [
                {
                    "first_name": r.values.get("first_name", ""),
                    "middle_name": r.values.get("middle_name", ""),
                    "last_name": r.values.get("last_name", ""),
                    "search_key": search_key(
                        r.values.get("first_name", ""),
                        r.values.get("middle_name", ""),
                        r.values.get("last_name", ""),
                    ),
                    "company_id": company_of(r),
                    "owner_id": owner_of(r),
                    "language": r.values.get("language"),
                    "vip": bool(r.values.get("vip", False)),
                    "custom": {k: v for k, v in r.custom.items() if v is not None},
                    "merged_into_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in plan.creates
            ],
        )
        created_ids = sorted(row_id for (row_id,) in result)
        identities = [
            {"customer_id": cid, "kind": kind, "value": value, "label": label, "created_at": now}
            for r, cid in zip(plan.creates, created_ids, strict=True)
            for kind, items in r.identities.items()
            for value, label in items
        ]
        if identities:
            await s.execute(insert(_IDENTITIES), identities)
        tags = [
            {"customer_id": cid, "tag": tag}
            for r, cid in zip(plan.creates, created_ids, strict=True)
            for tag in sorted(set(r.tags or []))
        ]
        if tags:
            await s.execute(insert(_TAGS), tags)
        if projects:
            await s.execute(
                insert(_PROJECTS),
                [{"customer_id": cid, "project_id": p} for cid in created_ids for p in sorted(set(projects))],
            )
    if plan.updates:
        await _apply_updates(s, plan.updates, header, company_of, owner_of, now)
    return len(created_ids), len(plan.updates)


async def _apply_updates(
    s: AsyncSession,
    updates: list[tuple[ParsedRow, int]],
    header: Sequence[str],
    company_of: Any,
    owner_of: Any,
    now: Any,
) -> None:
    ids = [cid for _, cid in updates]
    current = {
        row.id: row
        for row in await s.execute(
            select(
                Customer.id, Customer.first_name, Customer.middle_name, Customer.last_name, Customer.custom
            ).where(Customer.id.in_(ids))
        )
    }
    columns = set(header)
    rows: list[dict[str, Any]] = []
    for r, cid in updates:
        was = current[cid]
        values: dict[str, Any] = {"b_id": cid, "updated_at": now}
        for name in ("first_name", "middle_name", "last_name", "vip", "language"):
            if name in columns:
                values[name] = r.values.get(name, "" if name.endswith("name") else None)
        if "vip" in columns:
            values["vip"] = bool(r.values.get("vip", False))
        names = [values.get(n, getattr(was, n)) for n in ("first_name", "middle_name", "last_name")]
        values["search_key"] = search_key(*names)
        if "company" in columns:
            values["company_id"] = company_of(r)
        if "owner" in columns:
            values["owner_id"] = owner_of(r)
        custom = dict(was.custom or {})
        for key, cell in r.custom.items():
            if cell is None:
                custom.pop(key, None)
            elif _exported(custom.get(key)) != cell:  # unchanged (a number stays a number)
                custom[key] = cell
        values["custom"] = custom
        rows.append(values)
    # Every row of a file has the same columns, so one statement with one shape serves the batch
    # (bound as v_<column>: SQLAlchemy keeps a column's own name for itself).
    shape = {k: bindparam(f"v_{k}", type_=_CUSTOMERS.c[k].type) for k in rows[0] if k != "b_id"}
    await s.execute(
        update(_CUSTOMERS).where(_CUSTOMERS.c.id == bindparam("b_id")).values(shape),
        [{("b_id" if k == "b_id" else f"v_{k}"): v for k, v in row.items()} for row in rows],
    )
    if "tags" in columns:
        await s.execute(delete(_TAGS).where(_TAGS.c.customer_id.in_(ids)))
        tags = [{"customer_id": cid, "tag": t} for r, cid in updates for t in sorted(set(r.tags or []))]
        if tags:
            await s.execute(insert(_TAGS), tags)
    kinds = [kind.value for column, kind in IDENTITY_COLUMNS.items() if column in columns]
    if kinds:
        existing: dict[tuple[int, str, str], tuple[int, str]] = {}
        for identity_id, customer_id, kind, value, label in await s.execute(
            select(Identity.id, Identity.customer_id, Identity.kind, Identity.value, Identity.label).where(
                Identity.customer_id.in_(ids), Identity.kind.in_(kinds)
            )
        ):
            existing[(customer_id, kind, value)] = (identity_id, label)
        wanted = {
            (cid, kind, value): label
            for r, cid in updates
            for kind, items in r.identities.items()
            for value, label in items
        }
        gone = [iid for key, (iid, _) in existing.items() if key not in wanted]
        if gone:
            await s.execute(delete(_IDENTITIES).where(_IDENTITIES.c.id.in_(gone)))
        relabel = [
            {"b_id": existing[key][0], "v_label": label}
            for key, label in wanted.items()
            if key in existing and existing[key][1] != label
        ]
        if relabel:
            await s.execute(
                update(_IDENTITIES)
                .where(_IDENTITIES.c.id == bindparam("b_id"))
                .values(label=bindparam("v_label")),
                relabel,
            )
        new = [
            {"customer_id": cid, "kind": kind, "value": value, "label": label, "created_at": now}
            for (cid, kind, value), label in wanted.items()
            if (cid, kind, value) not in existing
        ]
        if new:
            await s.execute(insert(_IDENTITIES), new)


def _exported(value: Any) -> str | None:
    """A custom field's value as the export writes it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------- the import job
def _report(
    *,
    dry_run: bool,
    mode: ImportMode,
    on_errors: OnErrors,
    rows: int,
    valid: int,
    created: int,
    updated: int,
    errors: list[ImportRowError],
    errors_total: int,
    applied: bool,
) -> ImportReport:
    return ImportReport(
        dry_run=dry_run,
        mode=mode.value,
        on_errors=on_errors.value,
        rows=rows,
        valid=valid,
        created=created,
        updated=updated,
        errors=sorted(errors, key=lambda e: e.line)[:MAX_REPORTED_ERRORS],
        errors_total=errors_total,
        applied=applied,
    )


class CustomerImportJob:
    """The ``customers.import`` job: validates the uploaded file, then (unless a dry run) writes it in
    batches (see the module docstring). Parameters: ``file`` (the upload, under the jobs directory),
    ``dry_run``, ``mode``, ``on_errors``, ``project_id``."""

    kind = IMPORT_JOB

    def __init__(self, crm: CrmService, uploads: Path, *, max_rows: int) -> None:
        self.crm = crm
        self.uploads = uploads
        self.max_rows = max_rows

    async def run(self, job: JobContext) -> JobOutcome:
        actor = job.actor
        actor.require("customers.import")
        p = job.params
        dry_run = bool(p.get("dry_run", True))
        mode = ImportMode(p.get("mode", ImportMode.CREATE.value))
        on_errors = OnErrors(p.get("on_errors", OnErrors.ALL_OR_NOTHING.value))
        path = self.uploads / str(p["file"])
        data = await asyncio.to_thread(path.read_bytes)
        file = await asyncio.to_thread(read_import_file, data, self.max_rows)
        del data
        total = file.rows * (1 if dry_run else 2)
        async with job.begin() as s:
            projects = list(await creation_projects(s, actor, p.get("project_id")))
            # An owner sees the card: only users who work in one of the import's projects (the
            # unrestricted staff; of an import of no project, only they) may be named.
            owners = {u.username: u.id for u in await s.scalars(where(select(User), card_owners(projects)))}
        checkpoint = job.checkpoint
        if checkpoint.get("phase") != "apply":
            report = await self._validate(
                job, file, mode, owners, total, dry_run=dry_run, on_errors=on_errors
            )
            if dry_run or not report.valid or (on_errors is OnErrors.ALL_OR_NOTHING and report.errors_total):
                await asyncio.to_thread(path.unlink, True)
                return JobOutcome(report.model_dump())
            checkpoint = {
                "phase": "apply",
                "line": 0,
                "created": 0,
                "updated": 0,
                "late": [],
                "validated": report.model_dump(),
            }
            async with job.begin() as s:
                await job.record(s, file.rows, checkpoint=checkpoint)
        report = await self._apply(job, file, mode, owners, projects, checkpoint, total)
        await asyncio.to_thread(path.unlink, True)
        return JobOutcome(report.model_dump())

    async def _validate(
        self,
        job: JobContext,
        file: CsvFile,
        mode: ImportMode,
        owners: dict[str, int],
        total: int,
        *,
        dry_run: bool,
        on_errors: OnErrors,
    ) -> ImportReport:
        parser = Parser(file.delimiter, self.crm.region)
        reader = file.reader()
        rows_iter = iter(reader)
        errors: list[ImportRowError] = []
        errors_total = 0
        valid = 0
        done = 0
        while True:
            parsed, bad, count, _ = await parser.batch(rows_iter, reader, CHECK_BATCH)
            if count == 0:
                break
            done += count
            async with job.session() as s:
                plan = await plan_batch(s, job.actor, parsed, mode, owners)
            found = bad + plan.errors
            errors_total += len(found)
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.extend(found[: MAX_REPORTED_ERRORS - len(errors)])
            valid += len(plan.creates) + len(plan.updates)
            await job.report(done, total=total)
        return _report(
            dry_run=dry_run,
            mode=mode,
            on_errors=on_errors,
            rows=file.rows,
            valid=valid,
            created=0,
            updated=0,
            errors=errors,
            errors_total=errors_total,
            applied=False,
        )

    async def _write_batch(
        self,
        job: JobContext,
        file: CsvFile,
        pending: list[ParsedRow],
        last_line: int,
        mode: ImportMode,
        owners: dict[str, int],
        projects: list[int],
        bad_lines: set[int],
        checkpoint: dict[str, Any],
        done: int,
    ) -> tuple[int, int, list[ImportRowError]]:
        """Check and write one batch in one transaction, with the job's progress and checkpoint."""
        now = self.crm.clock()
        async with job.begin() as s:
            plan = await plan_batch(s, job.actor, pending, mode, owners)
            n_created, n_updated = await apply_batch(s, job.actor, plan, file.header, owners, projects, now)
            fresh = [e for e in plan.errors if e.line not in bad_lines]
            if n_created or n_updated:
                audit(
                    s,
                    job.actor,
                    "customer.import",
                    "customer",
                    None,
                    now,
                    project_id=job.project_id,
                    job_id=job.id,
                    lines=[pending[0].line, last_line] if pending else [],
                    created=n_created,
                    updated=n_updated,
                    project_ids=projects,
                )
            late = checkpoint.get("late", [])
            room = max(0, MAX_REPORTED_ERRORS - len(late))
            await job.record(
                s,
                file.rows + done,
                checkpoint={
                    **checkpoint,
                    "line": last_line,
                    "created": int(checkpoint.get("created", 0)) + n_created,
                    "updated": int(checkpoint.get("updated", 0)) + n_updated,
                    "late": late + [e.model_dump() for e in fresh[:room]],
                },
            )
        return n_created, n_updated, fresh

    async def _apply(
        self,
        job: JobContext,
        file: CsvFile,
        mode: ImportMode,
        owners: dict[str, int],
        projects: list[int],
        checkpoint: dict[str, Any],
        total: int,
    ) -> ImportReport:
        validated = ImportReport.model_validate(checkpoint["validated"])
        parser = Parser(file.delimiter, self.crm.region)
        reader = file.reader()
        rows_iter = iter(reader)
        done_line = int(checkpoint.get("line", 0))
        created = int(checkpoint.get("created", 0))
        updated = int(checkpoint.get("updated", 0))
        late = [ImportRowError.model_validate(e) for e in checkpoint.get("late", [])]
        bad_lines = {e.line for e in validated.errors}
        done = 0
        while True:
            parsed, _, count, last_line = await parser.batch(rows_iter, reader, IMPORT_BATCH)
            if count == 0:
                break
            done += count
            pending = [r for r in parsed if r.line > done_line]
            if not pending and last_line <= done_line:
                continue  # committed before the restart (the parser still saw it: repeats are found)
            started = time.monotonic()
            for attempt in range(1, BATCH_ATTEMPTS + 1):
                try:
                    n_created, n_updated, fresh = await self._write_batch(
                        job, file, pending, last_line, mode, owners, projects, bad_lines, checkpoint, done
                    )
                    break
                except IntegrityError:
                    # A contact gave one of the batch's identities to a card between the batch's
                    # check and its write: the batch rolled back; checked again, that row is reported.
                    if attempt == BATCH_ATTEMPTS:
                        raise
            created += n_created
            updated += n_updated
            if len(late) < MAX_REPORTED_ERRORS:
                late.extend(fresh[: MAX_REPORTED_ERRORS - len(late)])
            checkpoint = job.checkpoint
            # The loop runs between batches, and the writer is left to others (WRITE_PAUSE_RATIO).
            await asyncio.sleep((time.monotonic() - started) * WRITE_PAUSE_RATIO)
        return _report(
            dry_run=False,
            mode=mode,
            on_errors=OnErrors(validated.on_errors),
            rows=file.rows,
            valid=validated.valid,
            created=created,
            updated=updated,
            errors=validated.errors + late,
            errors_total=validated.errors_total + len(late),
            applied=True,
        )


# ---------------------------------------------------------------------- starting the jobs
class CustomerCsv:
    """The request side: an upload saved to a file and its import queued; an export queued."""

    def __init__(self, crm: CrmService, jobs: JobRunner, uploads: Path) -> None:
        self.crm = crm
        self.jobs = jobs
        self.uploads = uploads

    async def start_import(
        self,
        actor: Actor,
        upload: BinaryIO,
        *,
        dry_run: bool = True,
        mode: ImportMode = ImportMode.CREATE,
        on_errors: OnErrors = OnErrors.ALL_OR_NOTHING,
        project_id: int | None = None,
        idempotency_key: str | None = None,
    ) -> JobOut:
        """Save the uploaded file (on a worker thread) and queue its import; the answer is the job.
        The same user's repeat with the same ``idempotency_key`` answers the first job."""
        actor.require("customers.import")
        if idempotency_key is not None:
            existing = await self.jobs.find_by_key(actor.user_id, idempotency_key)
            if existing is not None:
                return job_out(existing)
        async with self.crm.sessions() as s:
            await creation_projects(s, actor, project_id)  # an unknown or foreign project: 4xx now
        # A file whose header is wrong is refused now, not by a job later.
        await asyncio.to_thread(check_header, upload)
        name = f"{uuid.uuid4().hex}.csv"
        await asyncio.to_thread(_save, upload, self.uploads / name)
        return await self.jobs.submit(
            actor,
            IMPORT_JOB,
            {
                "file": name,
                "dry_run": dry_run,
                "mode": mode.value,
                "on_errors": on_errors.value,
                "project_id": project_id,
            },
            idempotency_key=idempotency_key,
            project_id=project_id,
        )

    async def start_export(self, actor: Actor, idempotency_key: str | None = None) -> JobOut:
        """Queue the export of every customer the actor may see to a CSV file."""
        actor.require("customers.export")
        return await self.jobs.submit(actor, EXPORT_JOB, {}, idempotency_key=idempotency_key)


def _save(upload: BinaryIO, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    upload.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(upload, out, 1024 * 1024)


# ---------------------------------------------------------------------- export
def _header(custom_names: Sequence[str]) -> list[str]:
    return CSV_COLUMNS + [CUSTOM_PREFIX + n for n in custom_names]


def _row(c: Customer, usernames: dict[int, str], custom_names: Sequence[str]) -> list[Any]:
    by_kind: dict[str, list[tuple[str, str]]] = {k.value: [] for k in IDENTITY_COLUMNS.values()}
    for i in c.identities:
        by_kind.setdefault(i.kind, []).append((i.value, i.label))
    return [
        c.id,
        c.first_name,
        c.middle_name,
        c.last_name,
        c.company.name if c.company else "",
        *(join_items(by_kind[kind.value]) for kind in IDENTITY_COLUMNS.values()),
        ";".join(t.tag for t in c.tags),
        c.vip,
        c.language or "",
        usernames.get(c.owner_id, "") if c.owner_id else "",
        *(_exported((c.custom or {}).get(n)) for n in custom_names),
    ]


async def _custom_names(s: AsyncSession, actor: Actor) -> list[str]:
    visible = customer_visible(actor, Customer.id, Customer.owner_id)
    names: set[str] = set()
    last = 0
    while True:
        batch = list(
            await s.execute(
                where(
                    select(Customer.id, Customer.custom).where(
                        Customer.merged_into_id.is_(None), Customer.id > last
                    ),
                    visible,
                )
                .order_by(Customer.id)
                .limit(EXPORT_BATCH * 10)
            )
        )
        if not batch:
            return sorted(names)
        for _, custom in batch:
            names.update(custom or {})
        last = batch[-1][0]


async def _customer_batches(
    open_session: Any, actor: Actor
) -> AsyncIterator[tuple[list[Any], dict[int, str], list[str]]]:
    visible = customer_visible(actor, Customer.id, Customer.owner_id)
    async with open_session() as s:
        custom_names = await _custom_names(s, actor)
        usernames = {u.id: u.username for u in await s.scalars(select(User))}
    last_id = 0
    while True:
        async with open_session() as s:
            batch = list(
                await s.scalars(
                    where(
                        select(Customer).where(Customer.merged_into_id.is_(None), Customer.id > last_id),
                        visible,
                    )
                    .order_by(Customer.id)
                    .limit(EXPORT_BATCH)
                    .options(
                        selectinload(Customer.identities),
                        selectinload(Customer.tags),
                        selectinload(Customer.company),
                    )
                )
            )
        if not batch:
            return
        last_id = batch[-1].id
        yield [_row(c, usernames, custom_names) for c in batch], usernames, custom_names


async def export_customers_csv(crm: CrmService, actor: Actor) -> AsyncIterator[str]:
    """Stream every customer the actor may see as CSV in the import format (``GET
    /customers/export``; the export job writes the same to a file)."""
    actor.require("customers.export")
    header_sent = False
    async for rows, _, custom_names in _customer_batches(crm.sessions, actor):
        if not header_sent:
            yield csv_lines([_header(custom_names)])
            header_sent = True
        yield csv_lines(rows)
    if not header_sent:
        yield csv_lines([_header([])])


class CustomerExportJob:
    """The ``customers.export`` job: every customer the requester may see, to ``customers.csv``."""

    kind = EXPORT_JOB
    file_name = "customers.csv"

    def __init__(self, crm: CrmService) -> None:
        self.crm = crm

    async def run(self, job: JobContext) -> JobOutcome:
        actor = job.actor
        actor.require("customers.export")
        visible = customer_visible(actor, Customer.id, Customer.owner_id)
        async with job.session() as s:
            total = await s.scalar(
                where(
                    select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None)),
                    visible,
                )
            )
        await job.report(0, total=int(total or 0))
        target = job.directory / self.file_name
        partial = target.with_suffix(".part")
        done = 0
        handle = await asyncio.to_thread(partial.open, "w", encoding="utf-8", newline="")
        try:
            header_sent = False
            async for rows, _, custom_names in _customer_batches(job.session, actor):
                lines = ("" if header_sent else csv_lines([_header(custom_names)])) + csv_lines(rows)
                header_sent = True
                await asyncio.to_thread(handle.write, lines)
                done += len(rows)
                await job.report(done)
            if not header_sent:
                await asyncio.to_thread(handle.write, csv_lines([_header([])]))
        finally:
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(partial.replace, target)
        async with job.begin() as s:
            audit(
                s,
                actor,
                "customer.export",
                "customer",
                None,
                project_id=job.project_id,
                job_id=job.id,
                rows=done,
            )
        return JobOutcome({"rows": done}, file_name=self.file_name, media_type="text/csv; charset=utf-8")
