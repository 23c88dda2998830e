"""The SQL of the ticket and deal work lists: filters, orders and keyset pages.

Each built-in view filters on one indexed column and one status and reads its page in the order of an
index ending in ``(updated_at, id)`` (docs/helpdesk.md, "Indexes"), so a page costs the same on a
million tickets as on a hundred. The cursor is the last row's sort value and id; a page never skips or
repeats a row that did not change between pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select

from frontoffice.domain.cases import TicketStatus
from frontoffice.domain.exceptions import InvalidInput
from frontoffice.store.tables import Deal, Ticket, TicketTag

from .case_schemas import BuiltinTicketView, DealFilters, DealSort, TicketFilters, TicketSort
from .context import Actor, decode_cursor, encode_cursor

__all__ = [
    "BUILTIN_VIEW_NAMES",
    "COUNT_CAP",
    "Keyset",
    "builtin_filters",
    "capped_count",
    "deal_conditions",
    "deal_keyset",
    "ticket_conditions",
    "ticket_keyset",
]

# Counting stops here: a work list's badge says "10000+" rather than scanning a million index
# entries on every refresh (Zendesk and Freshdesk cap their view counts the same way).
COUNT_CAP = 10_000

BUILTIN_VIEW_NAMES: dict[BuiltinTicketView, str] = {
    BuiltinTicketView.MINE: "My open tickets",
    BuiltinTicketView.TEAM: "My team's open tickets",
    BuiltinTicketView.UNASSIGNED: "Unassigned",
    BuiltinTicketView.OPEN: "All open",
    BuiltinTicketView.PENDING: "Pending on the customer",
    BuiltinTicketView.OVERDUE: "Overdue",
    BuiltinTicketView.SOLVED: "Solved",
}

_OPEN = [TicketStatus.OPEN]


def builtin_filters(view: BuiltinTicketView) -> dict[str, Any]:
    """What a built-in view keeps (``overdue`` adds ``due_before=now`` at query time)."""
    views: dict[BuiltinTicketView, dict[str, Any]] = {
        BuiltinTicketView.MINE: {"assignee": "me", "status": [TicketStatus.OPEN, TicketStatus.PENDING]},
        BuiltinTicketView.TEAM: {"team": True, "status": _OPEN},
        BuiltinTicketView.UNASSIGNED: {"assignee": "none", "status": _OPEN},
        BuiltinTicketView.OPEN: {"status": _OPEN},
        BuiltinTicketView.PENDING: {"status": [TicketStatus.PENDING]},
        BuiltinTicketView.OVERDUE: {"status": _OPEN},
        BuiltinTicketView.SOLVED: {"status": [TicketStatus.SOLVED]},
    }
    return views[view]


def _person(column: Any, value: str | None, actor: Actor) -> Any:
    if value is None:
        return None
    if value == "none":
        return column.is_(None)
    if value == "me":
        # The system (no user) has no tickets of its own.
        return column == actor.user_id if actor.user_id is not None else false()
    return column == int(value)


def ticket_conditions(
    actor: Actor, filters: TicketFilters, *, team_queue_ids: list[int], now: datetime
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``filters`` (a built-in ``view`` first, the other filters narrowing it)."""
    if filters.view is not None:
        given = filters.model_dump(exclude_unset=True, exclude={"view"})
        base = TicketFilters.model_validate(builtin_filters(filters.view))
        if filters.view is BuiltinTicketView.OVERDUE:
            base = base.model_copy(update={"due_before": now})
        filters = base.model_copy(update={name: getattr(filters, name) for name in given})
    conditions: list[ColumnElement[bool]] = []
    assignee = _person(Ticket.assignee_id, filters.assignee, actor)
    if assignee is not None:
        conditions.append(assignee)
    if filters.team:
        conditions.append(Ticket.queue_id.in_(sorted(team_queue_ids)) if team_queue_ids else false())
    if filters.status:
        statuses = sorted({st.value for st in filters.status})
        conditions.append(Ticket.status == statuses[0] if len(statuses) == 1 else Ticket.status.in_(statuses))
    if filters.priority:
        conditions.append(Ticket.priority.in_(sorted({p.value for p in filters.priority})))
    if filters.queue_id:
        conditions.append(Ticket.queue_id.in_(sorted(set(filters.queue_id))))
    if filters.project_id:
        conditions.append(Ticket.project_id.in_(sorted(set(filters.project_id))))
    if filters.tag:
        tags = sorted(set(filters.tag))
        conditions.append(exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag.in_(tags)))
    if filters.due_before is not None:
        conditions.append(Ticket.due_at < filters.due_before)
    if filters.due_after is not None:
        conditions.append(Ticket.due_at >= filters.due_after)
    return conditions


@dataclass(frozen=True, slots=True)
class Keyset:
    """An order over (column, id) with its cursor: ``where`` keeps the rows after the cursor."""

    column: Any
    descending: bool
    nullable: bool
    kind: type[date] | type[datetime]

    def order_by(self) -> list[Any]:
        if self.descending:
            return [self.column.desc(), _id(self).desc()]
        first = self.column.asc().nulls_last() if self.nullable else self.column.asc()
        return [first, _id(self).asc()]

    def cursor(self, row: Any) -> str:
        value = getattr(row, self.column.key)
        return encode_cursor("" if value is None else value.isoformat(), row.id)

    def after(self, cursor: str) -> ColumnElement[bool]:
        raw_value, raw_id = decode_cursor(cursor, 2)
        try:
            row_id = int(raw_id)
            value: Any = None if raw_value == "" else self.kind.fromisoformat(raw_value)
        except ValueError:
            raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor") from None
        if value is None and not self.nullable:
            raise InvalidInput("Invalid pagination cursor", error_id="invalid-cursor")
        row = _id(self)
        if value is None:  # among the rows without a value (last in ascending order)
            return and_(self.column.is_(None), row > row_id)
        if self.descending:
            return or_(self.column < value, and_(self.column == value, row < row_id))
        later = or_(self.column > value, and_(self.column == value, row > row_id))
        return or_(later, self.column.is_(None)) if self.nullable else later


def _id(keyset: Keyset) -> Any:
    return keyset.column.table.c.id


def ticket_keyset(sort: TicketSort) -> Keyset:
    return {
        TicketSort.UPDATED_DESC: Keyset(Ticket.updated_at, True, False, datetime),
        TicketSort.UPDATED: Keyset(Ticket.updated_at, False, False, datetime),
        TicketSort.CREATED_DESC: Keyset(Ticket.created_at, True, False, datetime),
        TicketSort.CREATED: Keyset(Ticket.created_at, False, False, datetime),
        TicketSort.DUE: Keyset(Ticket.due_at, False, True, datetime),
        TicketSort.SLA_DUE: Keyset(Ticket.sla_due_at, False, True, datetime),
    }[sort]


def deal_keyset(sort: DealSort) -> Keyset:
    return {
        DealSort.UPDATED_DESC: Keyset(Deal.updated_at, True, False, datetime),
        DealSort.CREATED_DESC: Keyset(Deal.created_at, True, False, datetime),
        DealSort.EXPECTED_CLOSE: Keyset(Deal.expected_close_on, False, True, date),
    }[sort]


def deal_conditions(actor: Actor, filters: DealFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    owner = _person(Deal.owner_id, filters.owner, actor)
    if owner is not None:
        conditions.append(owner)
    if filters.stage:
        conditions.append(Deal.stage.in_(sorted(set(filters.stage))))
    if filters.open:  # whatever the pipeline: a won or lost deal has its close time
        conditions.append(Deal.closed_at.is_(None))
    if filters.pipeline_id is not None:
        conditions.append(Deal.pipeline_id == filters.pipeline_id)
    if filters.project_id:
        conditions.append(Deal.project_id.in_(sorted(set(filters.project_id))))
    if filters.close_month is not None:
        year, month = (int(part) for part in filters.close_month.split("-"))
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        conditions.append(and_(Deal.expected_close_on >= start, Deal.expected_close_on < end))
    return conditions


def capped_count(stmt: Select[Any], id_column: Any) -> Select[Any]:
    """``SELECT count(*)`` of at most ``COUNT_CAP + 1`` rows of ``stmt`` (whose columns are ignored)."""
    limited = stmt.with_only_columns(id_column).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(limited)
