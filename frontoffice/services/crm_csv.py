"""CSV import (with dry run and line-numbered errors) and export of customers.

An import never half-applies: in ``all_or_nothing`` mode one bad row means nothing is written; in
``valid_rows`` mode every valid row is written in a single transaction and the bad rows are reported.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from enum import StrEnum

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import IdentityKind
from frontoffice.store.tables import Customer, Identity, User

from .context import Actor, audit
from .crm import CrmService, customer_out
from .identities import normalize_identity
from .schemas import CustomerIn, IdentityIn, ImportReport, ImportRowError
from .scope import creation_projects, customer_visible, where

__all__ = ["CSV_COLUMNS", "ImportMode", "export_customers_csv", "import_customers_csv"]

CSV_COLUMNS = [
    "first_name",
    "middle_name",
    "last_name",
    "company",
    "phones",
    "emails",
    "tags",
    "vip",
    "language",
    "owner",
]
KNOWN = set(CSV_COLUMNS)
CUSTOM_PREFIX = "custom:"
# Several phones, emails or tags in one cell are separated by ';' or ',' (whichever the file does not use).
LIST_SEPARATORS = (";", ",", "|")
EXPORT_BATCH = 500


class ImportMode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ROWS = "valid_rows"


# Control characters no text file holds (C0 but tab, line feed and carriage return; DEL): Windows-1251
# maps almost every byte to some character, so a binary file (an image, a spreadsheet's .xlsx, a
# zip) decodes "successfully"; these characters, frequent in binary data, tell it apart.
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _decode(data: bytes) -> str:
    # Excel in Russian locales still writes Windows-1251 CSV; UTF-8 (with or without BOM) first.
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


def _csv_reason(exc: csv.Error) -> str:
    reason = str(exc)
    if "unexpected end of data" in reason:
        return 'a quoted cell is not closed: a quote (") is missing'
    return reason


def _split(cell: str, delimiter: str) -> list[str]:
    for sep in LIST_SEPARATORS:
        if sep != delimiter and sep in cell:
            return [p.strip() for p in cell.split(sep) if p.strip()]
    return [cell.strip()] if cell.strip() else []


def _truthy(cell: str) -> bool:
    return cell.strip().lower() in {"1", "true", "yes", "y", "да", "vip"}


async def import_customers_csv(
    crm: CrmService,
    actor: Actor,
    data: bytes,
    *,
    dry_run: bool = True,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    max_rows: int = 100_000,
    project_id: int | None = None,
) -> ImportReport:
    """Validate every row, then (unless ``dry_run``) create the customers in one transaction.

    The cards belong to ``project_id`` (a client's customer base imported for that client's team);
    imported by a user limited to projects without one, to all of that user's projects."""
    actor.require("customers.import")
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    # strict: a quote that is never closed is an error (with its line), not a cell swallowing the
    # rest of the file into one "valid" row.
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise InvalidInput("Malformed CSV", error_id="csv-malformed", line=1, reason=str(exc)) from None
    unknown = [h for h in header if h not in KNOWN and not h.startswith(CUSTOM_PREFIX)]
    if not header:
        raise InvalidInput("The CSV file is empty", error_id="csv-empty")
    if unknown:
        raise InvalidInput(
            "Unknown CSV columns", error_id="csv-unknown-columns", columns=unknown, expected=CSV_COLUMNS
        )
    errors: list[ImportRowError] = []
    parsed: list[tuple[int, CustomerIn, str | None]] = []
    seen: dict[tuple[str, str], int] = {}
    rows = 0
    row_start = 2  # the line the next row starts on (the header is line 1)
    try:
        for row in reader:
            row_start = reader.line_num + 1
            rows += 1
            if rows > max_rows:
                raise InvalidInput(
                    "The CSV file has too many rows", error_id="csv-too-large", max_rows=max_rows
                )
            line = reader.line_num
            if None in row:
                errors.append(ImportRowError(line=line, field="", message="more cells than columns"))
                continue
            row_errors, customer = _parse_row(crm, row, line, delimiter, seen)
            errors.extend(row_errors)
            if customer is not None and not row_errors:
                parsed.append((line, customer, (row.get("owner") or "").strip() or None))
    except csv.Error as exc:
        # The row that could not be read starts after the last one read (a quote opened there and
        # never closed runs to the end of the file).
        raise InvalidInput(
            "Malformed CSV", error_id="csv-malformed", line=row_start, reason=_csv_reason(exc)
        ) from None

    async with crm.sessions.begin() as s:
        projects = await creation_projects(s, actor, project_id)
        # Identities already owned by existing customers: one query for the whole file.
        wanted = {(i.kind.value, i.value) for _, c, _ in parsed for i in c.identities}
        taken: set[tuple[str, str]] = set()
        if wanted:
            values = {v for _, v in wanted}
            for kind, value in await s.execute(
                select(Identity.kind, Identity.value).where(Identity.value.in_(values))
            ):
                if (kind, value) in wanted:
                    taken.add((kind, value))
        owners = {u.username: u.id for u in await s.scalars(select(User))}
        valid: list[CustomerIn] = []
        for line, customer, owner in parsed:
            problems = [
                ImportRowError(
                    line=line, field=f"{i.kind.value}s", message=f"{i.value} belongs to another customer"
                )
                for i in customer.identities
                if (i.kind.value, i.value) in taken
            ]
            if owner is not None:
                if owner not in owners:
                    problems.append(ImportRowError(line=line, field="owner", message=f"no user {owner!r}"))
                else:
                    customer.owner_id = owners[owner]
            errors.extend(problems)
            if not problems:
                valid.append(customer)
        errors.sort(key=lambda e: e.line)
        apply = not dry_run and (mode is ImportMode.VALID_ROWS or not errors) and bool(valid)
        created = 0
        if apply:
            for customer in valid:
                await crm.create_in_session(s, actor, customer, projects=projects)
                created += 1
            audit(
                s,
                actor,
                "customer.import",
                "customer",
                None,
                rows=rows,
                created=created,
                errors=len(errors),
                project_ids=list(projects),
            )
        else:
            await s.rollback()
    return ImportReport(
        dry_run=dry_run,
        mode=mode.value,
        rows=rows,
        valid=len(valid),
        created=created,
        errors=errors,
        applied=apply,
    )


def _parse_row(
    crm: CrmService, row: dict[str, str], line: int, delimiter: str, seen: dict[tuple[str, str], int]
) -> tuple[list[ImportRowError], CustomerIn | None]:
    errors: list[ImportRowError] = []
    identities: list[IdentityIn] = []
    for column, kind in (("phones", IdentityKind.PHONE), ("emails", IdentityKind.EMAIL)):
        for raw in _split(row.get(column) or "", delimiter):
            try:
                value = normalize_identity(kind, raw, crm.region)
            except InvalidInput as exc:
                errors.append(ImportRowError(line=line, field=column, message=f"{raw}: {exc.message}"))
                continue
            first = seen.setdefault((kind.value, value), line)
            if first != line:
                errors.append(
                    ImportRowError(line=line, field=column, message=f"{value} repeats line {first}")
                )
            identities.append(IdentityIn(kind=kind, value=value))
    custom = {k[len(CUSTOM_PREFIX) :]: v for k, v in row.items() if k.startswith(CUSTOM_PREFIX) and v != ""}
    try:
        customer = CustomerIn(
            first_name=row.get("first_name") or "",
            middle_name=row.get("middle_name") or "",
            last_name=row.get("last_name") or "",
            company_name=(row.get("company") or "").strip() or None,
            tags=_split(row.get("tags") or "", delimiter),
            vip=_truthy(row.get("vip") or ""),
            language=(row.get("language") or "").strip().lower() or None,
            custom=custom,
            identities=identities,
        )
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"][:1])
            errors.append(ImportRowError(line=line, field=field, message=err["msg"]))
        return errors, None
    if not (customer.first_name or customer.last_name or customer.identities):
        errors.append(ImportRowError(line=line, field="", message="a row needs a name, a phone or an email"))
    return errors, customer


async def export_customers_csv(crm: CrmService, actor: Actor) -> AsyncIterator[str]:
    """Stream every customer as CSV in the import format (so an export re-imports cleanly); a user
    limited to projects gets the customers they may see."""
    actor.require("customers.export")
    visible = customer_visible(actor, Customer.id, Customer.owner_id)
    custom_names: set[str] = set()
    async with crm.sessions() as s:
        for custom in await s.scalars(
            where(select(Customer.custom).where(Customer.merged_into_id.is_(None)), visible)
        ):
            custom_names.update(custom)
        usernames = {u.id: u.username for u in await s.scalars(select(User))}
    columns = CSV_COLUMNS + [CUSTOM_PREFIX + n for n in sorted(custom_names)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield buffer.getvalue()
    last_id = 0
    while True:
        async with crm.sessions() as s:
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
            break
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for c in batch:
            card = customer_out(c)
            writer.writerow(
                [
                    card.first_name,
                    card.middle_name,
                    card.last_name,
                    card.company.name if card.company else "",
                    ";".join(i.value for i in card.identities if i.kind == IdentityKind.PHONE),
                    ";".join(i.value for i in card.identities if i.kind == IdentityKind.EMAIL),
                    ";".join(card.tags),
                    "yes" if card.vip else "",
                    card.language or "",
                    usernames.get(card.owner_id, "") if card.owner_id else "",
                ]
                + [str(card.custom.get(n, "")) for n in sorted(custom_names)]
            )
        last_id = batch[-1].id
        yield buffer.getvalue()
