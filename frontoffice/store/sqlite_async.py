"""An asyncio SQLite connection for SQLAlchemy's ``sqlite+aiosqlite`` dialect, without a thread hop
per statement.

aiosqlite runs every call — creating a cursor, executing, fetching, closing — on the connection's own
thread and wakes the event loop for each result. A contact's life cycle in the ACD issues about thirty
short statements, so it paid about a hundred thread round trips (queue put, thread wake-up, GIL
hand-over, self-pipe write, loop wake-up) for work that takes SQLite microseconds.

This connection keeps the same interface (it is passed to ``create_async_engine`` as
``async_creator``) but decides per statement where it runs:

* **on the event loop, inline**: writes, and every statement inside a write transaction. These are the
  short OLTP statements of the use cases; SQLite answers them in microseconds.
* **inline within a budget**: ``SELECT`` outside a write transaction runs inline under a SQLite
  progress handler; one that takes more than about a millisecond of VM steps (a report scanning the
  event log) is interrupted — a read changes nothing — and run again, executed and fetched together,
  on a worker thread, so the loop stays free;
* **on a worker thread**: ``COMMIT`` (it waits for the disk: ``synchronous=FULL`` fsyncs the WAL).

SQLite's own busy handler would block the event loop while another connection holds the write lock,
so the connection's ``busy_timeout`` is 0 and a statement that meets the lock (``SQLITE_BUSY``) is
retried with back-off, sleeping with ``asyncio.sleep`` between attempts, until :data:`BUSY_TIMEOUT_S`
— the same wait the busy handler gave, without blocking the loop or a thread. A statement that failed
with ``SQLITE_BUSY`` did nothing, so running it again is what the busy handler would have done.
Commits have their own threads: they must never queue behind reads, or the writer everybody waits for
could not finish.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

__all__ = ["BUSY_TIMEOUT_S", "InlineConnection", "connect"]

T = TypeVar("T")

# How long a statement waits for another connection's write lock before "database is locked".
BUSY_TIMEOUT_S = 10.0

# A connection is used by one session at a time (SQLAlchemy's pool), so it is never on two threads at
# once. Commits (and opening/closing) have their own threads so that they never wait behind reads.
_commits = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-commit")
_reads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sqlite-read")

_READS = ("SELECT", "WITH")

# An inline read may run INLINE_READ_CHECKS * _STEPS_PER_CHECK SQLite VM instructions (about a
# millisecond) before it is moved to a worker thread; a look-up by key takes a few hundred.
_STEPS_PER_CHECK = 2_000
INLINE_READ_CHECKS = 10


class _Budget:
    """SQLite progress handler: interrupts the statement once its inline budget is spent."""

    __slots__ = ("calls", "spent")

    def __init__(self) -> None:
        self.calls = 0
        self.spent = False

    def __call__(self) -> int:
        self.calls += 1
        if self.calls >= INLINE_READ_CHECKS:
            self.spent = True
            return 1
        return 0


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code == sqlite3.SQLITE_BUSY)
    return str(exc).startswith("database is locked")


def _retry_busy(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` (on a worker thread), retrying while SQLite says another writer holds the lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.001
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _retry_busy_async(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` inline, sleeping on the event loop while another connection holds the write lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.0005
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


def _execute_and_fetch(cursor: sqlite3.Cursor, sql: str, parameters: Any) -> list[Any]:
    cursor.execute(sql, parameters)
    return cursor.fetchall() if cursor.description else []


class _InlineQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy's dialect uses to set the isolation
    level: runs the function at once and resolves its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineCursor:
    """The cursor SQLAlchemy's adapter awaits; see the module docstring for where statements run."""

    def __init__(self, owner: InlineConnection) -> None:
        self._owner = owner
        self._cursor = owner._conn.cursor()
        self._rows: deque[Any] | None = None

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None
    ) -> InlineCursor:
        params: Any = () if parameters is None else parameters
        self._rows = None
        if self._owner._conn.in_transaction or not sql.lstrip()[:6].upper().startswith(_READS):
            await _retry_busy_async(self._cursor.execute, sql, params)
            return self
        # A read outside a transaction: try it inline within a budget of SQLite VM steps; a read that
        # runs longer (a report scanning the log) is interrupted — it changed nothing — and run again
        # on a worker thread.
        conn = self._owner._conn
        budget = _Budget()
        conn.set_progress_handler(budget, _STEPS_PER_CHECK)
        try:
            self._rows = deque(_execute_and_fetch(self._cursor, sql, params))
            return self
        except sqlite3.OperationalError as exc:
            if not (budget.spent or _is_busy(exc)):
                raise
        finally:
            conn.set_progress_handler(None, 0)
        rows = await self._owner._in_thread(
            _reads, partial(_retry_busy, _execute_and_fetch, self._cursor, sql, params)
        )
        self._rows = deque(rows)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        self._rows = None
        await _retry_busy_async(self._cursor.executemany, sql, list(seq_of_parameters))
        return self

    async def fetchone(self) -> Any:
        if self._rows is not None:
            return self._rows.popleft() if self._rows else None
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if self._rows is not None:
            n = len(self._rows) if size is None else min(size, len(self._rows))
            return [self._rows.popleft() for _ in range(n)]
        return self._cursor.fetchmany() if size is None else self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        if self._rows is not None:
            rows = list(self._rows)
            self._rows.clear()
            return rows
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._rows = None
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """A ``sqlite3`` connection with the awaitable interface SQLAlchemy's aiosqlite dialect expects."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = conn
        self._tx = _InlineQueue()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def _in_thread(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cursor = InlineCursor(self)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        conn = self._conn
        if conn.in_transaction:
            await self._in_thread(_commits, partial(_retry_busy, conn.commit))

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            await self._in_thread(_commits, conn.close)

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate, e.g. when the pool is disposed during shutdown)."""
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.close()

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], **kw: Any) -> None:
        self._conn.create_function(name, num_params, func, **kw)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]


async def connect(database: str, **kwargs: Any) -> InlineConnection:
    """Open ``database`` (on a worker thread: opening may wait for the disk)."""
    kwargs.setdefault("check_same_thread", False)
    conn = await asyncio.get_running_loop().run_in_executor(
        _commits, partial(sqlite3.connect, database, **kwargs)
    )
    return InlineConnection(conn)
