"""Change feeds for sync: what changed in customers, companies, interactions, tickets and deals.

``GET /api/v1/{resource}/changes?cursor=…&limit=…`` (or ``updated_since=<time>`` to start) answers
the records changed after the cursor, oldest first, in the order ``(updated_at, id)``: many records
can share a timestamp (an import, a merge), and the id breaks the tie, so a page boundary between
them skips none. A deleted record (or a customer merged into another) comes as a *tombstone*
(``deleted: true``, and ``merged_into_id`` for a merge) from ``deleted_records``, written in the
same transaction as the deletion (:func:`record_deletions`), merged into the same order.

**At least once.** A change is stamped when its statement runs, but becomes visible when its
transaction commits: a transaction that stamped a row at 10:00:00.100 may commit after another
that stamped 10:00:00.200 was read. So that no change is skipped, the cursor handed out at the end of
the feed never points later than :data:`OVERLAP_S` before now: the next call reads those last
seconds again. A client applies changes by id (an upsert, a delete), which makes a repeat harmless.
While there are more pages (``has_more``) the cursor is the last record's place, so paging always
moves forward.

The cursor is opaque (base64 of the place); ``updated_since`` is the place just before that time.
Both reads use the ``(updated_at, id)`` index of each table and ``(resource, deleted_at,
record_id)`` of ``deleted_records``.

**Tombstones are kept for a while** (``change_feed_retention_days``, 90 days by default): the daily
retention job removes older ones (:func:`prune_tombstones`) and remembers the time it pruned up to
(``site_settings`` ``change_feeds.pruned_before``) *before* it removes any. A cursor (or an
``updated_since``) older than that could skip deletions it never saw, so it is answered ``410
cursor-expired``: the client reads the whole resource again (no cursor), replaces its copy, and goes
on from the new cursor. A feed read without a cursor never needs the tombstones: it lists what exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Table, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Gone, InvalidInput
from frontoffice.store.tables import (
    Company,
    Customer,
    CustomerTag,
    Deal,
    DeletedRecord,
    Identity,
    Interaction,
    SiteSetting,
    Ticket,
)

from .context import Actor, Clock, decode_cursor, encode_cursor, system_clock
from .schemas import ChangeItem, ChangePage
from .scope import company_visible, customer_visible, deal_visible, interaction_visible, ticket_visible

__all__ = [
    "DEFAULT_TOMBSTONE_DAYS",
    "OVERLAP_S",
    "PRUNED_KEY",
    "RESOURCES",
    "ChangeFeeds",
    "Resource",
    "prune_tombstones",
    "record_deletions",
]

Resource = Literal["customers", "companies", "interactions", "tickets", "deals"]
RESOURCES: tuple[Resource, ...] = ("customers", "companies", "interactions", "tickets", "deals")
# Longer than a write transaction lasts between stamping a row and committing it (a statement waits
# at most store.sqlite_async.BUSY_TIMEOUT_S = 10 s for the write lock), so no late commit is missed.
OVERLAP_S = 15.0
MAX_LIMIT = 500
# How long a deletion stays in the feeds: a sync client that runs at least monthly, or was down for
# a quarter's holidays and outages, still sees every deletion; older clients resync.
DEFAULT_TOMBSTONE_DAYS = 90
# Where the retention job notes the time tombstones were pruned up to (an ISO 8601 string).
PRUNED_KEY = "change_feeds.pruned_before"
# Tombstones removed per transaction: a first prune of years of deletions holds no lock for long.
PRUNE_BATCH = 5_000

_MODELS: dict[Resource, Any] = {
    "customers": Customer,
    "companies": Company,
    "interactions": Interaction,
    "tickets": Ticket,
    "deals": Deal,
}
# The permission each feed needs (the resource's read permission; a token's scopes apply).
_PERMISSIONS: dict[Resource, str] = {
    "customers": "customers.read",
    "companies": "companies.read",
    "interactions": "interactions.read",
    "tickets": "tickets.read",
    "deals": "deals.read",
}
# Columns that are the server's own bookkeeping, not the record's data.
_INTERNAL = frozenset(
    {"search_key", "name_key", "route_enqueued_at", "route_seq", "work_sync", "sla_check_at"}
)
_DELETED = cast(Table, DeletedRecord.__table__)
_INSERT_DELETED = insert(_DELETED)


async def record_deletions(
    s: AsyncSession,
    resource: Resource,
    record_ids: Iterable[int],
    *,
    at: datetime,
    projects: Iterable[int] = (),
    merged_into_id: int | None = None,
) -> None:
    """Write the tombstones of deleted (or merged-away) records in the caller's transaction — the
    deletion's own, so the feed can never show the deletion without the tombstone or the reverse.

    One row per record for unrestricted readers (``project_id`` NULL) and one per project in
    ``projects`` for users limited to projects (the projects the record belonged to: a deleted
    record's own rows can no longer say)."""
    rows: list[dict[str, Any]] = []
    for record_id in record_ids:
        for project_id in (None, *sorted(set(projects))):
            rows.append(
                {
                    "resource": resource,
                    "record_id": record_id,
                    "project_id": project_id,
                    "merged_into_id": merged_into_id,
                    "deleted_at": at,
                }
            )
    if rows:
        await s.execute(_INSERT_DELETED, rows)


async def prune_tombstones(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, *, now: datetime
) -> int:
    """Remove the tombstones of deletions before ``cutoff``, in batches; returns how many.

    The time pruned up to is written first (and only ever moves forward), in its own transaction:
    from then on a cursor older than it is refused, so no client reads the feed while its deletions
    are being removed without being told."""
    d = _DELETED.c
    async with sessions() as s:
        old = await s.scalar(select(d.id).where(d.resource.in_(RESOURCES), d.deleted_at < cutoff).limit(1))
    if old is None:
        return 0
    async with sessions.begin() as s:
        row = await s.get(SiteSetting, PRUNED_KEY, with_for_update=True)
        if row is None:
            s.add(SiteSetting(key=PRUNED_KEY, value={"before": cutoff.isoformat()}, updated_at=now))
        elif datetime.fromisoformat(row.value["before"]) < cutoff:
            row.value = {"before": cutoff.isoformat()}
            row.updated_at = now
    removed = 0
    for resource in RESOURCES:
        while True:
            async with sessions.begin() as s:
                batch = (
                    select(d.id)
                    .where(d.resource == resource, d.deleted_at < cutoff)
                    .order_by(d.deleted_at)
                    .limit(PRUNE_BATCH)
                    .scalar_subquery()
                )
                result = await s.execute(_DELETED.delete().where(d.id.in_(batch)))
            count = int(getattr(result, "rowcount", 0) or 0)
            removed += count
            if count < PRUNE_BATCH:
                break
    return removed


async def _pruned_before(s: AsyncSession) -> datetime | None:
    row = await s.get(SiteSetting, PRUNED_KEY)
    return None if row is None else datetime.fromisoformat(row.value["before"])


class ChangeFeeds:
    """Reads the change feeds (see the module's docstring)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def changes(
        self,
        actor: Actor,
        resource: Resource,
        *,
        cursor: str | None = None,
        updated_since: datetime | None = None,
        limit: int = 100,
    ) -> ChangePage:
        actor.require(_PERMISSIONS[resource])
        limit = max(1, min(limit, MAX_LIMIT))
        if cursor is not None and updated_since is not None:
            raise InvalidInput("Give a cursor or updated_since, not both", error_id="cursor-and-since")
        if cursor is not None:
            place = _decode(cursor)
        elif updated_since is not None:
            if updated_since.tzinfo is None:
                raise InvalidInput("updated_since needs a time zone", error_id="naive-datetime")
            place = (updated_since, 0, 0)
        else:
            place = None
        model = _MODELS[resource]
        async with self.sessions() as s:
            pruned = None if place is None else await _pruned_before(s)
            if place is not None and pruned is not None and place[0] < pruned:
                raise Gone(
                    "The cursor is older than the deletions kept: read everything again without a "
                    "cursor, replace your copy, and go on from the new cursor",
                    error_id="cursor-expired",
                    pruned_before=pruned.isoformat(),
                    resource=resource,
                )
            live = await self._live(s, actor, resource, model, place, limit)
            dead = await self._tombstones(s, actor, resource, place, limit)
            items = sorted(live + dead, key=_order)[:limit]
            more = len(live) + len(dead) > len(items)
            if resource == "customers":
                await _add_identities(s, [i for i in items if not i.deleted])
        horizon = self.clock() - timedelta(seconds=OVERLAP_S)
        if items:
            last = items[-1]
            next_place = (last.updated_at, last.id, 1 if last.deleted else 0)
        else:
            next_place = place or (horizon, 0, 0)
        if not more and next_place[0] > horizon:
            # The end of the feed: read the last seconds again next time (see the docstring).
            next_place = (horizon, 0, 0)
        return ChangePage(items=items, next_cursor=_encode(next_place), has_more=more)

    async def _live(
        self,
        s: AsyncSession,
        actor: Actor,
        resource: Resource,
        model: Any,
        place: tuple[datetime, int, int] | None,
        limit: int,
    ) -> list[ChangeItem]:
        table = cast(Table, model.__table__)
        stmt = select(table)
        if place is not None:
            at, last_id, _ = place
            # (updated_at, id) > (at, last_id), written out for the index on both databases.
            stmt = stmt.where(
                or_(table.c.updated_at > at, and_(table.c.updated_at == at, table.c.id > last_id))
            )
        condition: ColumnElement[bool] | None
        if resource == "customers":
            # A merged card is gone from the CRM: it comes as a tombstone (written by the merge).
            stmt = stmt.where(table.c.merged_into_id.is_(None))
            condition = customer_visible(actor, Customer.id, Customer.owner_id)
        elif resource == "companies":
            condition = company_visible(actor)
        elif resource == "interactions":
            condition = interaction_visible(actor)
        elif resource == "tickets":
            condition = ticket_visible(actor)
        else:
            condition = deal_visible(actor)
        if condition is not None:
            stmt = stmt.where(condition)
        stmt = stmt.order_by(table.c.updated_at, table.c.id).limit(limit + 1)
        rows = (await s.execute(stmt)).mappings().all()
        return [
            ChangeItem(
                id=row["id"],
                updated_at=row["updated_at"],
                deleted=False,
                record={k: v for k, v in row.items() if k not in _INTERNAL},
            )
            for row in rows
        ]

    async def _tombstones(
        self,
        s: AsyncSession,
        actor: Actor,
        resource: Resource,
        place: tuple[datetime, int, int] | None,
        limit: int,
    ) -> list[ChangeItem]:
        d = _DELETED.c
        stmt = select(d.record_id, d.deleted_at, d.merged_into_id).where(d.resource == resource)
        if actor.project_ids is None:
            stmt = stmt.where(d.project_id.is_(None))
        else:
            stmt = stmt.where(d.project_id.in_(sorted(actor.project_ids)))
        if place is not None:
            at, last_id, kind = place
            after = [d.deleted_at > at, and_(d.deleted_at == at, d.record_id > last_id)]
            if kind == 0:  # a live record at the same (time, id) comes first
                after.append(and_(d.deleted_at == at, d.record_id == last_id))
            stmt = stmt.where(or_(*after))
        stmt = stmt.order_by(d.deleted_at, d.record_id).limit(limit + 1)
        seen: set[tuple[int, datetime]] = set()
        items: list[ChangeItem] = []
        for record_id, deleted_at, merged_into_id in await s.execute(stmt):
            if (record_id, deleted_at) in seen:  # a limited user's two projects: one tombstone
                continue
            seen.add((record_id, deleted_at))
            items.append(
                ChangeItem(id=record_id, updated_at=deleted_at, deleted=True, merged_into_id=merged_into_id)
            )
        return items


def _order(item: ChangeItem) -> tuple[datetime, int, int]:
    return (item.updated_at, item.id, 1 if item.deleted else 0)


async def _add_identities(s: AsyncSession, items: Sequence[ChangeItem]) -> None:
    """A customer's identities and tags are part of the card: added to its record."""
    if not items:
        return
    ids = [item.id for item in items]
    identities: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for customer_id, kind, value, label in await s.execute(
        select(Identity.customer_id, Identity.kind, Identity.value, Identity.label)
        .where(Identity.customer_id.in_(ids))
        .order_by(Identity.id)
    ):
        identities[customer_id].append({"kind": kind, "value": value, "label": label})
    tags: dict[int, list[str]] = {i: [] for i in ids}
    for customer_id, tag in await s.execute(
        select(CustomerTag.customer_id, CustomerTag.tag)
        .where(CustomerTag.customer_id.in_(ids))
        .order_by(CustomerTag.tag)
    ):
        tags[customer_id].append(tag)
    for item in items:
        assert item.record is not None
        item.record["identities"] = identities[item.id]
        item.record["tags"] = tags[item.id]


def _encode(place: tuple[datetime, int, int]) -> str:
    at, record_id, kind = place
    return encode_cursor(at.isoformat(), record_id, kind)


def _decode(cursor: str) -> tuple[datetime, int, int]:
    at, record_id, kind = decode_cursor(cursor, 3)
    try:
        place = (datetime.fromisoformat(at), int(record_id), int(kind))
    except ValueError:
        raise InvalidInput("Invalid cursor", error_id="invalid-cursor") from None
    if place[0].tzinfo is None or place[2] not in (0, 1):
        raise InvalidInput("Invalid cursor", error_id="invalid-cursor")
    return place
