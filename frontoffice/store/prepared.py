"""Statements of the contact path, compiled once and run on the driver's cursor.

Running a prebuilt Core statement through SQLAlchemy costs about 170 µs of CPU on the development
machine (the execution context, the compiled cache's look-up, parameter and result processing, a
greenlet hop); SQLite takes about 25 µs to run it. A contact's life cycle runs about twenty such
statements, so that machinery was a fifth of the server's CPU per contact (``bench/offer_latency.py``).

A :class:`Prepared` statement is compiled once per dialect with the same compiler, and the same type
processors convert its parameters and results, so what reaches the database is what SQLAlchemy would
have sent. On the project's SQLite connection (:mod:`frontoffice.store.sqlite_async`) it runs on that
connection's cursor, inline or waiting for the write lock as any statement there does. Elsewhere
(PostgreSQL), or for a statement this cannot run as is (an expanding ``IN``, an ``INSERT`` whose
columns have defaults computed in Python), it runs through SQLAlchemy: the answer is the same.

Only statements that read and write plain rows belong here: no ORM entity, nothing the session's
events must see (its ``do_orm_execute`` hooks do not run; :mod:`frontoffice.store.append_log` writes its
rows with :meth:`Prepared.run_sync` itself). The engine's ``before_cursor_execute`` and
``after_cursor_execute`` listeners still hear each statement, with ``context=None``. A driver error is
raised as SQLAlchemy raises it (``sqlalchemy.exc.IntegrityError``, ...).
Tests: ``tests/integration/test_prepared.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Executable, Insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util.concurrency import await_

from .sqlite_async import InlineConnection

__all__ = ["Params", "Prepared", "connection_of", "forget_connection", "keep_connection"]

# One statement's parameters, or a list of them for one ``executemany``.
Params = Mapping[str, Any] | list[dict[str, Any]] | None
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a statement runs on one dialect: its SQL, its parameters in order with their processors,
    and the names and processors of the columns it returns (empty: it returns no rows)."""

    sql: str
    # (name, processor, whether the caller must give it, the value when not given)
    params: tuple[tuple[str, _Processor, bool, Any], ...]
    columns: tuple[tuple[str, _Processor], ...]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        args = []
        for name, process, required, default in self.params:
            value = values[name] if required else values.get(name, default)
            args.append(value if process is None else process(value))
        return tuple(args)

    def rows(self, raw: list[Any]) -> list[dict[str, Any]]:
        columns = self.columns
        return [
            {
                name: value if process is None else process(value)
                for (name, process), value in zip(columns, row, strict=True)
            }
            for row in raw
        ]


class Prepared:
    """A Core statement compiled once per dialect (and, for an ``INSERT``, per set of columns given),
    run with :meth:`run` (async code) or :meth:`run_sync` (inside SQLAlchemy's greenlet: a session
    event). Both return the rows as dictionaries keyed by column name (empty for a write)."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # (dialect name, columns of an INSERT) -> plan; None: run through SQLAlchemy.
        self._plans: dict[tuple[str, frozenset[str] | None], _Plan | None] = {}

    async def run(self, connection: AsyncConnection, params: Params = None) -> list[dict[str, Any]]:
        """Run on ``connection`` (a transaction's) with ``params``: one mapping, or several for one
        ``executemany`` (a list of one runs as a single statement)."""
        params = _one_or_many(params)
        found = self._on_sqlite(connection, params)
        if found is None:
            result = await connection.execute(self.statement, params)
            return [dict(row) for row in result.mappings()] if result.returns_rows else []
        rows, _ = await _on_driver(connection, *found, params)
        return rows

    async def insert(self, connection: AsyncConnection, params: Mapping[str, Any]) -> int:
        """Run a single-row ``INSERT`` and return the new row's integer primary key."""
        found = self._on_sqlite(connection, params)
        if found is None:
            result = await connection.execute(self.statement, params)
            key = cast("CursorResult[Any]", result).inserted_primary_key
            assert key is not None  # a single-row insert
            return int(key[0])
        _, new_id = await _on_driver(connection, *found, params)
        assert new_id is not None
        return new_id

    def _on_sqlite(
        self, connection: AsyncConnection, params: Params
    ) -> tuple[InlineConnection, _Plan] | None:
        """The project's SQLite connection and this statement's plan, or ``None``: SQLAlchemy runs it."""
        sync = connection.sync_connection
        inline = None if sync is None else _inline(sync)
        plan = None if inline is None else self._plan(connection.dialect, params)
        return None if inline is None or plan is None else (inline, plan)

    def run_sync(self, connection: Connection, params: Params = None) -> list[dict[str, Any]]:
        """:meth:`run` for synchronous code running in SQLAlchemy's greenlet (a session event)."""
        params = _one_or_many(params)
        inline = _inline(connection)
        plan = self._plan(connection.dialect, params) if inline is not None else None
        if inline is None or plan is None:
            result = connection.execute(self.statement, params)
            return [dict(row) for row in result.mappings()] if result.returns_rows else []
        cursor = inline.cursor()
        many, args = _args(plan, params)
        _before(connection, cursor, plan.sql, args, many)
        try:
            if many:
                if not cursor.run_many_inline(plan.sql, args):
                    await_(cursor.executemany(plan.sql, args))
                rows = []
            else:
                if not cursor.run_inline(plan.sql, args):
                    await_(cursor.run_waiting(plan.sql, args))
                rows = plan.rows(cursor.rows_now()) if plan.columns else []
        except sqlite3.Error as exc:
            raise _wrapped(exc, plan, params, connection.dialect) from exc
        finally:
            cursor.close_now()
        _after(connection, cursor, plan.sql, args, many)
        return rows

    def _plan(self, dialect: Dialect, params: Params) -> _Plan | None:
        keys: frozenset[str] | None = None
        if isinstance(self.statement, Insert):
            first = params[0] if isinstance(params, list) and params else params
            keys = frozenset(first or ()) if isinstance(first, Mapping) else frozenset()
        key = (dialect.name, keys)
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plans[key] = _compile(self.statement, dialect, keys)
            return plan


_CONNECTION = "frontoffice.transaction_connection"


async def keep_connection(session: AsyncSession) -> AsyncConnection:
    """The connection of ``session``'s transaction, noted in the session for :func:`connection_of`
    (a group-commit batch notes it once; :func:`forget_connection` before its commit)."""
    connection = await session.connection()
    session.info[_CONNECTION] = connection
    return connection


def forget_connection(session: AsyncSession) -> None:
    session.info.pop(_CONNECTION, None)


async def connection_of(session: AsyncSession) -> AsyncConnection:
    """The connection of ``session``'s transaction for prepared statements: the one noted by
    :func:`keep_connection`, else asked of the session (a round trip through its greenlet)."""
    connection: AsyncConnection | None = session.info.get(_CONNECTION)
    return connection if connection is not None else await session.connection()


def _one_or_many(params: Params) -> Params:
    """A list of one row's parameters runs as a single statement (SQLAlchemy's ``executemany`` path
    costs more than a single execution, and one row is the common case)."""
    return params[0] if isinstance(params, list) and len(params) == 1 else params


def _args(plan: _Plan, params: Params) -> tuple[bool, Any]:
    """Whether the statement runs once per row (``executemany``), and its driver arguments."""
    if isinstance(params, list):
        return True, [plan.args(p) for p in params]
    return False, plan.args(params or {})


def _compile(statement: Executable, dialect: Dialect, keys: frozenset[str] | None) -> _Plan | None:
    """The plan of ``statement`` on ``dialect``, or ``None`` where only SQLAlchemy can run it."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=None if keys is None else sorted(keys))
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    if compiled.post_compile_params:
        return None  # an expanding IN: its SQL depends on the parameters
    sql = compiled.string
    literal = compiled.literal_execute_params
    if any(bind.required or bind.callable is not None for bind in literal):
        return None  # a value the caller gives rendered into the SQL: it changes per execution
    if compiled.insert_prefetch or compiled.update_prefetch:
        return None  # defaults computed in Python for columns the parameters leave out
    binds = compiled.binds
    params = []
    for name in compiled.positiontup:
        bind = binds[name]
        if bind.callable is not None:
            return None  # a value computed at execution
        if any(bind is fixed for fixed in literal):  # (== on a bind builds an SQL expression)
            # A fixed value rendered into the SQL (group_concat's separator on SQLite), once, here.
            token = f"__[POSTCOMPILE_{name}]"
            if token not in sql:
                return None
            sql = sql.replace(token, compiled.render_literal_value(bind.value, bind.type))
            continue
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        params.append((name, process, bind.required, bind.value))
    columns = tuple(
        (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
        for column in getattr(statement, "selected_columns", ())
    )
    if "__[POSTCOMPILE_" in sql:
        return None
    return _Plan(sql, tuple(params), columns)


async def _on_driver(
    connection: AsyncConnection, inline: InlineConnection, plan: _Plan, params: Params
) -> tuple[list[dict[str, Any]], int | None]:
    """Run ``plan`` on the SQLite driver's connection: its rows, and the new row's id (an INSERT)."""
    sync = connection.sync_connection
    assert sync is not None  # a connection of a transaction is connected
    cursor = inline.cursor()
    many, args = _args(plan, params)
    _before(sync, cursor, plan.sql, args, many)
    try:
        if many:
            await cursor.executemany(plan.sql, args)
            rows = []
        else:
            await cursor.execute(plan.sql, args)
            rows = plan.rows(cursor.rows_now()) if plan.columns else []
        new_id = cursor.lastrowid
    except sqlite3.Error as exc:
        raise _wrapped(exc, plan, params, connection.dialect) from exc
    finally:
        cursor.close_now()
    _after(sync, cursor, plan.sql, args, many)
    return rows, new_id


def _heard(connection: Connection) -> bool:
    """Whether the connection or its engine has event listeners at all: the check SQLAlchemy's own
    ``Connection.execute`` makes first (its attributes; if they are ever gone, every statement asks
    the dispatcher, as below)."""
    return bool(getattr(connection, "_has_events", True) or getattr(connection.engine, "_has_events", True))


def _before(connection: Connection, cursor: Any, sql: str, args: Any, many: bool) -> None:
    """The engine's ``before_cursor_execute`` listeners hear the statement as SQLAlchemy would tell
    it (without an execution context: ``context`` is ``None``); nothing is done when there are none."""
    if _heard(connection) and connection.dispatch.before_cursor_execute:
        connection.dispatch.before_cursor_execute(connection, cursor, sql, args, None, many)


def _after(connection: Connection, cursor: Any, sql: str, args: Any, many: bool) -> None:
    if _heard(connection) and connection.dispatch.after_cursor_execute:
        connection.dispatch.after_cursor_execute(connection, cursor, sql, args, None, many)


def _wrapped(exc: sqlite3.Error, plan: _Plan, params: Params, dialect: Dialect) -> BaseException:
    """The driver's error as SQLAlchemy raises it (``sqlalchemy.exc.IntegrityError`` for a unique
    key, ``OperationalError`` for a lock never released), so callers catch the same exceptions."""
    return DBAPIError.instance(
        plan.sql, params, exc, sqlite3.Error, dialect=dialect, ismulti=isinstance(params, list)
    )


def _inline(connection: Connection) -> InlineConnection | None:
    """The project's SQLite connection under ``connection``, or ``None`` (another driver)."""
    driver = connection.connection.driver_connection
    return driver if isinstance(driver, InlineConnection) else None
