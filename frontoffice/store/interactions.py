"""The interactions repository of the contact path: one code path, prebuilt Core statements.

The ACD reads and writes the routing columns of interactions (:class:`RoutedContact`) on every
command. Each command gets its own :class:`InteractionRepository` (in its :class:`UnitOfWork`): rows it
inserted (:meth:`adopt`) or read are kept for the command, every change is written with one prebuilt
``UPDATE`` per batch of rows, and log rows go to the append-only log (``store/append_log.py``) in one
statement. No ORM object and no unit-of-work flush is involved: building a statement, loading an ORM
object or flushing one costs more than SQLite takes to run the statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from frontoffice.domain.contact_log import ContactLog, RoutedContact, event_row
from frontoffice.domain.model import InteractionEventType
from frontoffice.domain.model import InteractionState as St

from .append_log import append_row
from .prepared import Params, Prepared, connection_of
from .tables import AgentEvent, AgentProfile, Interaction, InteractionEvent, utcnow

__all__ = ["InteractionRepository"]

_INTERACTIONS = cast(Table, Interaction.__table__)
_EVENTS = cast(Table, InteractionEvent.__table__)
_PROFILES = cast(Table, AgentProfile.__table__)
_AGENT_EVENTS = cast(Table, AgentEvent.__table__)
# The columns of a RoutedContact: read only, then read and written.
_READ_ONLY = ("id", "channel", "project_id", "customer_id", "created_at")
_WRITTEN = (
    "queued_at",
    "state",
    "queue_id",
    "agent_id",
    "priority",
    "attributes",
    "route_enqueued_at",
    "route_seq",
    "offered_at",
    "connected_at",
    "ended_at",
    "closed_at",
    "disposition",
)
_COLUMNS = (*_READ_ONLY, *_WRITTEN)
# Statements built and compiled once (store/prepared.py: SQLAlchemy's execution of a statement costs
# several times what SQLite takes to run it).
_SELECT = select(*(_INTERACTIONS.c[name] for name in _COLUMNS))
_LOAD_ONE = Prepared(_SELECT.where(_INTERACTIONS.c.id == bindparam("id")))
_LOAD_MANY = Prepared(_SELECT.where(_INTERACTIONS.c.id.in_(bindparam("ids", expanding=True))))
_LOAD_IN_WRAP_UP = Prepared(
    _SELECT.where(
        _INTERACTIONS.c.agent_id.in_(bindparam("agents", expanding=True)),
        _INTERACTIONS.c.state == St.WRAP_UP.value,
    )
)
_LOAD_IN_WRAP_UP_ONE = Prepared(
    _SELECT.where(_INTERACTIONS.c.agent_id == bindparam("agent"), _INTERACTIONS.c.state == St.WRAP_UP.value)
)
_LOAD_FULL = Prepared(select(_INTERACTIONS).where(_INTERACTIONS.c.id == bindparam("id")))
# ``updated_at`` given (the wall clock, as the column's ``onupdate`` would set it): a column the
# statement leaves to a Python default would make SQLAlchemy compute it, so it could not be prepared.
_WRITE = Prepared(
    update(_INTERACTIONS)
    .where(_INTERACTIONS.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in (*_WRITTEN, "updated_at")})
)
_REQUEUE_OFFERED = (
    update(_INTERACTIONS).where(_INTERACTIONS.c.state == St.OFFERED.value).values(state=St.QUEUED.value)
)
_SET_AGENT_STATE = Prepared(
    update(_PROFILES)
    .where(_PROFILES.c.user_id == bindparam("agent"))
    .values(
        state=bindparam("state"),
        state_reason=bindparam("reason"),
        state_since=bindparam("since"),
        updated_at=bindparam("at"),
    )
)
_SET_WRAP_UP_UNTIL = Prepared(
    update(_PROFILES)
    .where(_PROFILES.c.user_id == bindparam("agent"))
    .values(wrap_up_until=bindparam("until"))
)


class InteractionRepository:
    """The interactions one ACD command reads and writes (see the module docstring)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[int, RoutedContact] = {}
        self._whole: dict[int, dict[str, Any]] = {}
        self._connection: AsyncConnection | None = None

    async def _execute(self, statement: Prepared, params: Params = None) -> list[dict[str, Any]]:
        """Run a prepared statement on the transaction's connection; its rows.

        Not through ``session.execute``: these statements read and write no ORM object and no log
        table, so the session's part (its execution events, the ORM execution state) was pure cost.
        The connection is the session's, taken once per command."""
        if self._connection is None:
            self._connection = await connection_of(self.session)
        return await statement.run(self._connection, params)

    def adopt(self, values: dict[str, Any]) -> RoutedContact:
        """Keep an interaction the command has just inserted (``values``: every column, id included),
        so that its routing columns are not read again (a ``row`` for ``InteractionService.record``)."""
        row = RoutedContact(**{name: values[name] for name in _COLUMNS})
        self._rows[row.id] = row
        self._whole[row.id] = values
        return row

    async def get(self, interaction_id: int) -> RoutedContact | None:
        """The routing columns of one interaction (``None``: there is none)."""
        return (await self.load((interaction_id,))).get(interaction_id)

    async def load(self, ids: Iterable[int]) -> dict[int, RoutedContact]:
        """The routing columns of these interactions (those that exist), read with one statement for
        the ones the command does not hold yet."""
        wanted = set(ids)
        missing = [key for key in wanted if key not in self._rows]
        if missing:
            # Reads interactions only: log rows appended so far wait and go out with the others.
            if len(missing) == 1:
                found = await self._execute(_LOAD_ONE, {"id": missing[0]})
            else:
                found = await self._execute(_LOAD_MANY, {"ids": missing})
            for values in found:
                self._rows[values["id"]] = RoutedContact(**values)
        return {key: self._rows[key] for key in wanted if key in self._rows}

    async def in_wrap_up(self, agent_ids: Iterable[int]) -> dict[int, RoutedContact]:
        """The interactions in wrap-up with these agents."""
        agents = sorted(set(agent_ids))
        if not agents:
            return {}
        if len(agents) == 1:
            rows = await self._execute(_LOAD_IN_WRAP_UP_ONE, {"agent": agents[0]})
        else:
            rows = await self._execute(_LOAD_IN_WRAP_UP, {"agents": agents})
        found: dict[int, RoutedContact] = {}
        for values in rows:
            found[values["id"]] = self._rows.setdefault(values["id"], RoutedContact(**values))
        return found

    async def record(self, log: ContactLog, at: datetime) -> None:
        """Write what :func:`~frontoffice.domain.contact_log.record_outputs` computed: changed
        interactions (one ``UPDATE`` statement for all), their log events, agents' states (profile and
        agent event log) and wrap-up deadlines. ``at``: the command's time."""
        if log.contacts:
            self._rows.update(log.contacts)
            await self._execute(_WRITE, [_params(c) for c in log.contacts.values()])
        for row in log.events:
            append_row(self.session, _EVENTS, row)
        if log.agent_states:
            await self._execute(
                _SET_AGENT_STATE,
                [
                    {"agent": a.agent_id, "state": a.state, "reason": a.reason, "since": a.since, "at": at}
                    for a in log.agent_states
                ],
            )
            for a in log.agent_states:
                append_row(
                    self.session,
                    _AGENT_EVENTS,
                    {
                        "agent_id": a.agent_id,
                        "at": datetime.fromtimestamp(a.since, UTC),
                        "state": a.state,
                        "reason": a.reason,
                    },
                )
        if log.wrap_up_until:
            await self._execute(
                _SET_WRAP_UP_UNTIL,
                [{"agent": agent, "until": until} for agent, until in log.wrap_up_until],
            )

    async def tracked(self, states: Iterable[str]) -> list[RoutedContact]:
        """Interactions in these states, in line order (their place in their queue, then id): what
        the engine is rebuilt from."""
        result = await self.session.execute(
            _SELECT.where(_INTERACTIONS.c.state.in_(list(states))).order_by(
                _INTERACTIONS.c.route_enqueued_at, _INTERACTIONS.c.route_seq, _INTERACTIONS.c.id
            )
        )
        rows = [RoutedContact(**values) for values in result.mappings()]
        self._rows.update((row.id, row) for row in rows)
        return rows

    async def requeue_offered(self) -> None:
        """Offers that were ringing when the node stopped are back in line (the rebuild's first step)."""
        await self.session.execute(_REQUEUE_OFFERED)

    async def update(self, row: RoutedContact) -> None:
        """Write one interaction's routing columns (a use case's own change, e.g. a disposition)."""
        self._rows[row.id] = row
        await self._execute(_WRITE, _params(row))

    def log(self, row: RoutedContact, type_: InteractionEventType, at: datetime, **data: Any) -> None:
        """Append one event of ``row`` to the interaction log."""
        append_row(self.session, _EVENTS, event_row(row, type_, at, data))

    async def get_whole(self, interaction_id: int) -> RoutedContact | None:
        """Like :meth:`get`, reading every column at once when the command will answer with the
        whole interaction (:meth:`snapshot` then reads nothing)."""
        if interaction_id not in self._rows:
            rows = await self._execute(_LOAD_FULL, {"id": interaction_id})
            if not rows:
                return None
            values = rows[0]
            self._whole[interaction_id] = values
            self._rows[interaction_id] = RoutedContact(**{name: values[name] for name in _COLUMNS})
        return self._rows[interaction_id]

    async def snapshot(self, interaction_id: int) -> dict[str, Any]:
        """Every column of the interaction as the command leaves it (for the caller's answer)."""
        whole = self._whole.get(interaction_id)
        if whole is None:
            rows = await self._execute(_LOAD_FULL, {"id": interaction_id})
            if len(rows) != 1:
                raise LookupError(f"interaction {interaction_id} not found")
            whole = rows[0]
        row = self._rows.get(interaction_id)
        if row is None:
            return whole
        return {**whole, **{name: getattr(row, name) for name in _WRITTEN}}


def _params(row: RoutedContact) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _WRITTEN}
    values["_id"] = row.id
    values["updated_at"] = utcnow()
    return values
