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

from sqlalchemy import Executable, Result, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from frontoffice.domain.contact_log import ContactLog, RoutedContact, event_row
from frontoffice.domain.model import InteractionEventType
from frontoffice.domain.model import InteractionState as St

from .append_log import append_row
from .tables import AgentEvent, AgentProfile, Interaction, InteractionEvent

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
# Statements built once (building one costs more than SQLite takes to run it).
_SELECT = select(*(_INTERACTIONS.c[name] for name in _COLUMNS))
_LOAD_MANY = _SELECT.where(_INTERACTIONS.c.id.in_(bindparam("ids", expanding=True)))
_LOAD_IN_WRAP_UP = _SELECT.where(
    _INTERACTIONS.c.agent_id.in_(bindparam("agents", expanding=True)),
    _INTERACTIONS.c.state == St.WRAP_UP.value,
)
_LOAD_FULL = select(_INTERACTIONS).where(_INTERACTIONS.c.id == bindparam("id"))
_WRITE = (
    update(_INTERACTIONS)
    .where(_INTERACTIONS.c.id == bindparam("_id"))
    .values({name: bindparam(name) for name in _WRITTEN})
)
_REQUEUE_OFFERED = (
    update(_INTERACTIONS).where(_INTERACTIONS.c.state == St.OFFERED.value).values(state=St.QUEUED.value)
)
_SET_AGENT_STATE = (
    update(_PROFILES)
    .where(_PROFILES.c.user_id == bindparam("agent"))
    .values(
        state=bindparam("state"),
        state_reason=bindparam("reason"),
        state_since=bindparam("since"),
        updated_at=bindparam("at"),
    )
)
_SET_WRAP_UP_UNTIL = (
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

    async def _execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        """Run a Core statement on the transaction's connection.

        Not through ``session.execute``: these statements read and write no ORM object and no log
        table, so the session's part (its execution events, the ORM execution state) was pure cost —
        about a third of each statement's overhead. The connection is the session's, taken once per
        command."""
        if self._connection is None:
            self._connection = await self.session.connection()
        return await self._connection.execute(statement, params)

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
            result = await self._execute(_LOAD_MANY, {"ids": missing})
            for values in result.mappings():
                self._rows[values["id"]] = RoutedContact(**values)
        return {key: self._rows[key] for key in wanted if key in self._rows}

    async def in_wrap_up(self, agent_ids: Iterable[int]) -> dict[int, RoutedContact]:
        """The interactions in wrap-up with these agents."""
        agents = sorted(set(agent_ids))
        if not agents:
            return {}
        result = await self._execute(_LOAD_IN_WRAP_UP, {"agents": agents})
        found: dict[int, RoutedContact] = {}
        for values in result.mappings():
            found[values["id"]] = self._rows.setdefault(values["id"], RoutedContact(**values))
        return found

    async def record(self, log: ContactLog, at: datetime) -> None:
        """Write what :func:`~frontoffice.domain.contact_log.record_outputs` computed: changed
        interactions (one ``UPDATE`` statement for all), their log events, agents' states (profile and
        agent event log) and wrap-up deadlines. ``at``: the command's time."""
        if log.contacts:
            self._rows.update(log.contacts)
            await self._execute(_WRITE, _batch([_params(c) for c in log.contacts.values()]))
        for row in log.events:
            append_row(self.session, _EVENTS, row)
        if log.agent_states:
            await self._execute(
                _SET_AGENT_STATE,
                _batch(
                    [
                        {
                            "agent": a.agent_id,
                            "state": a.state,
                            "reason": a.reason,
                            "since": a.since,
                            "at": at,
                        }
                        for a in log.agent_states
                    ]
                ),
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
                _batch([{"agent": agent, "until": until} for agent, until in log.wrap_up_until]),
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
            result = await self._execute(_LOAD_FULL, {"id": interaction_id})
            values = result.mappings().one_or_none()
            if values is None:
                return None
            self._whole[interaction_id] = dict(values)
            self._rows[interaction_id] = RoutedContact(**{name: values[name] for name in _COLUMNS})
        return self._rows[interaction_id]

    async def snapshot(self, interaction_id: int) -> dict[str, Any]:
        """Every column of the interaction as the command leaves it (for the caller's answer)."""
        whole = self._whole.get(interaction_id)
        if whole is None:
            result = await self._execute(_LOAD_FULL, {"id": interaction_id})
            whole = dict(result.mappings().one())
        row = self._rows.get(interaction_id)
        if row is None:
            return whole
        return {**whole, **{name: getattr(row, name) for name in _WRITTEN}}


def _params(row: RoutedContact) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in _WRITTEN}
    values["_id"] = row.id
    return values


def _batch(params: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    """One row's parameters as a plain execution, several as one ``executemany`` (SQLAlchemy's
    executemany path costs more than a single execution, and one row is the common case)."""
    return params[0] if len(params) == 1 else params
