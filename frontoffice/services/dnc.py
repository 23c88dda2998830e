"""Do-not-call lists: a global one and one per project. A number lands there from an import, from an
agent (the customer asked on the call: the desk's button) or from the customer's opt-out on another
channel: an SMS ``STOP`` (:mod:`frontoffice.services.messaging`) records it on the customer card and
puts the number on the list of the SMS entry point's project (the global list for an entry point of
no project), source ``opt_out``, in the same transaction (:func:`add_opt_out`); ``START`` takes that
entry off again (:func:`remove_opt_out`; an entry an agent or an import added stays). The dialler
asks :func:`dnc_check` before every dial, in the transaction that claims the contact, and logs the
answer on the dial attempt."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import IdentityKind
from frontoffice.store.tables import Customer, DoNotCallEntry, Identity, Interaction, Project

from .campaign_schemas import DncIn, DncOut
from .context import Actor, Clock, audit, system_clock
from .csv_files import read_rows
from .identities import normalize_identity
from .schemas import ImportReport, ImportRowError, Page

__all__ = [
    "DNC_CLEAR",
    "DNC_CSV_COLUMNS",
    "DncSource",
    "DoNotCall",
    "add_opt_out",
    "dnc_check",
    "dnc_scope",
    "remove_opt_out",
]

log = logging.getLogger("frontoffice.dnc")

# What dnc_check answers for a number that may be called.
DNC_CLEAR = "clear"
DNC_CSV_COLUMNS = ("phone", "project_id", "reason", "source", "added_at")
# Rows of an import; a bigger list is split by the operator (an import is one transaction).
MAX_IMPORT_ROWS = 200_000
PAGE_MAX = 500


class DncSource:
    AGENT = "agent"
    IMPORT = "import"
    OPT_OUT = "opt_out"


def dnc_scope(project_id: int | None) -> str:
    return "global" if project_id is None else f"project:{project_id}"


async def dnc_check(s: AsyncSession, phone: str, project_id: int | None) -> str:
    """Whether ``phone`` (E.164) may be called for a campaign of ``project_id``: ``"clear"``, or why
    not: ``"global"`` / ``"project:<id>"`` (on that list), ``"opt_out"`` (its customer opted out of
    messages on another channel)."""
    scopes = [dnc_scope(None)] if project_id is None else [dnc_scope(None), dnc_scope(project_id)]
    found = await s.scalar(
        select(DoNotCallEntry.scope)
        .where(DoNotCallEntry.phone == phone, DoNotCallEntry.scope.in_(scopes))
        .order_by(DoNotCallEntry.scope)
        .limit(1)
    )
    if found is not None:
        return found
    custom = await s.scalar(
        select(Customer.custom)
        .join(Identity, Identity.customer_id == Customer.id)
        .where(Identity.kind == IdentityKind.PHONE.value, Identity.value == phone)
    )
    if custom and (custom.get("sms_opt_out") or custom.get("do_not_call")):
        return "opt_out"
    return DNC_CLEAR


async def add_opt_out(
    s: AsyncSession, phone: str, project_id: int | None, *, reason: str, now: datetime
) -> DoNotCallEntry | None:
    """Put ``phone`` (E.164) on the list of ``project_id`` (None: global) because its owner opted out
    on another channel, in the caller's transaction; audited. None when it is on that list already."""
    scope = dnc_scope(project_id)
    found = await s.scalar(
        select(DoNotCallEntry).where(DoNotCallEntry.phone == phone, DoNotCallEntry.scope == scope)
    )
    if found is not None:
        return None
    entry = DoNotCallEntry(
        phone=phone,
        scope=scope,
        project_id=project_id,
        reason=reason[:200],
        source=DncSource.OPT_OUT,
        added_by=None,
        added_at=now,
    )
    try:
        async with s.begin_nested():  # another opt-out of the same number may have just added it
            s.add(entry)
            await s.flush()
    except IntegrityError:
        return None
    source = DncSource.OPT_OUT
    audit(s, Actor.system(), "dnc.add", "dnc", entry.id, now, phone=phone, scope=scope, source=source)
    log.info("%s added to the do-not-call list %s: %s", phone, scope, reason)
    return entry


async def remove_opt_out(s: AsyncSession, phone: str, project_id: int | None, *, now: datetime) -> bool:
    """Take ``phone`` off the list of ``project_id`` if an opt-out put it there (the owner opted in
    again); an entry an agent or an import added stays. Whether one was removed."""
    scope = dnc_scope(project_id)
    entry = await s.scalar(
        select(DoNotCallEntry).where(
            DoNotCallEntry.phone == phone,
            DoNotCallEntry.scope == scope,
            DoNotCallEntry.source == DncSource.OPT_OUT,
        )
    )
    if entry is None:
        return False
    await s.execute(delete(DoNotCallEntry).where(DoNotCallEntry.id == entry.id))
    audit(s, Actor.system(), "dnc.remove", "dnc", entry.id, now, phone=phone, scope=scope, source="opt_in")
    log.info("%s taken off the do-not-call list %s: opted in again", phone, scope)
    return True


class DoNotCall:
    """The lists' use cases (administrators import and export; agents add on a customer's request)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, region: str, clock: Clock = system_clock
    ) -> None:
        self.sessions = sessions
        self.region = region
        self.clock = clock

    def _phone(self, raw: str) -> str:
        try:
            return normalize_identity(IdentityKind.PHONE, raw, self.region)
        except InvalidInput:
            raise InvalidInput("Not a phone number", error_id="invalid-phone", phone=raw[:40]) from None

    async def add(self, actor: Actor, data: DncIn, *, source: str = DncSource.AGENT) -> DncOut:
        """Put a number on a list (again: the existing entry answers)."""
        actor.require("interactions.write" if source == DncSource.AGENT else "routing.write")
        phone = self._phone(data.phone)
        async with self.sessions.begin() as s:
            if data.project_id is not None and await s.get(Project, data.project_id) is None:
                raise NotFound("No such project", error_id="no-such-project", project_id=data.project_id)
            if not actor.sees_project(data.project_id):
                raise NotFound("No such project", error_id="no-such-project", project_id=data.project_id)
            entry = await s.scalar(
                select(DoNotCallEntry).where(
                    DoNotCallEntry.phone == phone, DoNotCallEntry.scope == dnc_scope(data.project_id)
                )
            )
            if entry is None:
                entry = DoNotCallEntry(
                    phone=phone,
                    scope=dnc_scope(data.project_id),
                    project_id=data.project_id,
                    reason=data.reason,
                    source=source,
                    added_by=actor.user_id,
                    added_at=self.clock(),
                )
                s.add(entry)
                try:
                    await s.flush()
                except IntegrityError:
                    raise Conflict("The number was just added", error_id="dnc-race") from None
                audit(s, actor, "dnc.add", "dnc", entry.id, phone=phone, scope=entry.scope, source=source)
            return DncOut.model_validate(entry)

    async def add_from_interaction(self, actor: Actor, interaction_id: int, reason: str) -> DncOut:
        """The desk's button: the customer on this call asked not to be called again. The number goes
        on the list of the call's project (the global list for a call of no project)."""
        actor.require("interactions.write")
        async with self.sessions() as s:
            row = await s.get(Interaction, interaction_id)
            if row is None or not actor.sees_project(row.project_id):
                raise NotFound("No such interaction", error_id="no-such-interaction")
            number = row.to_address if row.direction == "outbound" else row.from_address
        if not number:
            raise Conflict("This contact has no phone number", error_id="no-phone-number")
        return await self.add(actor, DncIn(phone=number, project_id=row.project_id, reason=reason))

    async def remove(self, actor: Actor, entry_id: int) -> None:
        actor.require("routing.write")
        async with self.sessions.begin() as s:
            entry = await s.get(DoNotCallEntry, entry_id)
            if entry is None:
                raise NotFound("No such entry", error_id="no-such-dnc-entry", entry_id=entry_id)
            await s.execute(delete(DoNotCallEntry).where(DoNotCallEntry.id == entry_id))
            audit(s, actor, "dnc.remove", "dnc", entry_id, phone=entry.phone, scope=entry.scope)

    async def search(
        self, actor: Actor, *, q: str = "", project_id: int | None = None, limit: int = 50, offset: int = 0
    ) -> Page[DncOut]:
        actor.require("routing.read")
        limit = max(1, min(limit, PAGE_MAX))
        stmt = select(DoNotCallEntry).order_by(DoNotCallEntry.id.desc())
        if project_id is not None:
            stmt = stmt.where(DoNotCallEntry.project_id == project_id)
        if q.strip():
            digits = "".join(ch for ch in q if ch.isdigit())
            stmt = stmt.where(or_(DoNotCallEntry.phone.like(f"%{digits}%"), DoNotCallEntry.reason == q))
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.offset(offset).limit(limit + 1)))
        more = len(rows) > limit
        return Page(
            items=[DncOut.model_validate(r) for r in rows[:limit]],
            next_cursor=str(offset + limit) if more else None,
        )

    async def check(self, actor: Actor, phone: str, project_id: int | None) -> str:
        actor.require("interactions.read")
        async with self.sessions() as s:
            return await dnc_check(s, self._phone(phone), project_id)

    async def import_csv(
        self, actor: Actor, data: bytes, *, project_id: int | None, dry_run: bool = False
    ) -> ImportReport:
        """Numbers from a CSV with a ``phone`` column (``reason`` optional), all or nothing: a bad
        row is reported with its line number and nothing is written."""
        actor.require("routing.write")
        errors: list[ImportRowError] = []
        numbers: dict[str, str] = {}
        table = read_rows(data, required="phone", max_rows=MAX_IMPORT_ROWS)
        rows = len(table)
        for line, row in table:
            raw = (row.get("phone") or "").strip()
            try:
                phone = self._phone(raw)
            except InvalidInput:
                errors.append(
                    ImportRowError(line=line, field="phone", message=f"not a phone number: {raw!r}")
                )
                continue
            numbers.setdefault(phone, (row.get("reason") or "").strip()[:200])
        applied = False
        created = 0
        if not errors and not dry_run:
            async with self.sessions.begin() as s:
                if project_id is not None and await s.get(Project, project_id) is None:
                    raise NotFound("No such project", error_id="no-such-project", project_id=project_id)
                scope = dnc_scope(project_id)
                known = set(
                    await s.scalars(
                        select(DoNotCallEntry.phone).where(
                            DoNotCallEntry.scope == scope, DoNotCallEntry.phone.in_(list(numbers))
                        )
                    )
                )
                now = self.clock()
                for phone, reason in numbers.items():
                    if phone in known:
                        continue
                    s.add(
                        DoNotCallEntry(
                            phone=phone,
                            scope=scope,
                            project_id=project_id,
                            reason=reason,
                            source=DncSource.IMPORT,
                            added_by=actor.user_id,
                            added_at=now,
                        )
                    )
                    created += 1
                audit(s, actor, "dnc.import", "dnc", None, scope=scope, created=created)
            applied = True
        return ImportReport(
            dry_run=dry_run,
            mode="all_or_nothing",
            rows=rows,
            valid=rows - len(errors),
            created=created,
            errors=errors,
            applied=applied,
        )

    async def export_csv(self, actor: Actor, *, project_id: int | None = None) -> AsyncIterator[str]:
        """Every entry (of one project's list, or all lists) as CSV, in batches."""
        actor.require("routing.read")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(DNC_CSV_COLUMNS)
        yield out.getvalue()
        last = 0
        while True:
            stmt = (
                select(DoNotCallEntry).where(DoNotCallEntry.id > last).order_by(DoNotCallEntry.id).limit(500)
            )
            if project_id is not None:
                stmt = stmt.where(DoNotCallEntry.project_id == project_id)
            async with self.sessions() as s:
                batch = list(await s.scalars(stmt))
            if not batch:
                return
            out = io.StringIO()
            writer = csv.writer(out)
            for entry in batch:
                writer.writerow(
                    [
                        entry.phone,
                        "" if entry.project_id is None else entry.project_id,
                        entry.reason,
                        entry.source,
                        entry.added_at.isoformat(),
                    ]
                )
            last = batch[-1].id
            yield out.getvalue()
