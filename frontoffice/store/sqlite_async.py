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
with ``SQLITE_BUSY`` did nothing, so running it again is what the busy handler would have done. When
the lock's holder is a connection of this process (a background job's batch), its commit or rollback
wakes the waiting statements at once: a contact's commit never sleeps through the back-off while an
import takes the lock for its next batch.
Commits have their own threads: they must never queue behind reads, or the writer everybody waits for
could not finish.

**Offloaded connections** (``connect(..., offloaded=True)``, the engine of background jobs:
:func:`frontoffice.store.database.create_job_engine`) run *every* statement — writes, reads inside a
transaction, ``executemany`` — executed and fetched together on a worker thread, with the busy
retries there too. A job writes a batch of hundreds of rows per transaction; inline, its statements
would hold the event loop (a 10,000-row import stopped ``/healthz``, the ACD and WebSockets for 27 s).
On its own connections the loop only hands statements over and keeps serving while SQLite works.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from greenlet import getcurrent
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

__all__ = ["BUSY_TIMEOUT_S", "InlineConnection", "connect", "dbapi", "waiting_writers"]

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


# Per event loop, what its inline writers waiting for the write lock wait on: set (and dropped) when
# a connection of this process releases the lock, so they retry at once, not at their next back-off.
_released: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()
# The first and the longest back-off between two attempts of a waiting inline writer. A lock held by
# a connection of this process wakes it when released (:func:`_lock_released`); the back-off is for
# other processes (a ``frontoffice`` command on the same file).
BUSY_RETRY_FIRST_S = 0.0005
BUSY_RETRY_MAX_S = 0.02


_waiting = 0


def waiting_writers() -> int:
    """How many inline statements are waiting for another connection's write lock just now."""
    return _waiting


def _lock_released() -> None:
    """A connection of this process committed or rolled back: wake the inline writers waiting for the
    write lock. Without it, a writer that found the lock taken slept its back-off (up to 20 ms) and
    could wake while the holder — a background job writing batch after batch — held the lock again:
    an offer waited through several of an import's batches (200 ms, ``bench/import_job.py``)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    event = _released.pop(loop, None)
    if event is not None:
        event.set()


async def _retry_busy_async(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` inline, waiting on the event loop while another connection holds the write lock:
    until a connection of this process releases it (:func:`_lock_released`), or the back-off."""
    global _waiting
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = BUSY_RETRY_FIRST_S
    loop = asyncio.get_running_loop()
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        released = _released.get(loop)
        if released is None:
            released = _released[loop] = asyncio.Event()
        _waiting += 1
        try:
            async with asyncio.timeout(delay):
                await released.wait()
        except TimeoutError:
            pass
        finally:
            _waiting -= 1
        delay = min(delay * 2, BUSY_RETRY_MAX_S)


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

    def run_inline(self, sql: str, parameters: Any) -> bool:
        """Run the statement here and now if it can (see the module docstring); ``False``: it met
        another writer's lock or ran past the inline budget of a read, changed nothing, and must be
        run by :meth:`run_waiting` (always, on an offloaded connection)."""
        self._rows = None
        if self._owner.offloaded:
            return False
        conn = self._owner._conn
        if conn.in_transaction or not sql.lstrip()[:6].upper().startswith(_READS):
            try:
                self._cursor.execute(sql, parameters)
            except sqlite3.OperationalError as exc:
                if _is_busy(exc):
                    return False
                raise
            return True
        # A read outside a transaction: try it inline within a budget of SQLite VM steps; a read that
        # runs longer (a report scanning the log) is interrupted — it changed nothing — and run again
        # on a worker thread.
        budget = _Budget()
        conn.set_progress_handler(budget, _STEPS_PER_CHECK)
        try:
            self._rows = deque(_execute_and_fetch(self._cursor, sql, parameters))
            return True
        except sqlite3.OperationalError as exc:
            if not (budget.spent or _is_busy(exc)):
                raise
            return False
        finally:
            conn.set_progress_handler(None, 0)

    async def run_waiting(self, sql: str, parameters: Any) -> None:
        """Run a statement :meth:`run_inline` could not: a write waits for the lock on the event loop
        (sleeping between attempts), a read runs on a worker thread."""
        self._rows = None
        if self._owner.offloaded:
            rows = await self._owner._in_thread(
                _reads, partial(_retry_busy, _execute_and_fetch, self._cursor, sql, parameters)
            )
            self._rows = deque(rows)
            return
        if self._owner._conn.in_transaction or not sql.lstrip()[:6].upper().startswith(_READS):
            await _retry_busy_async(self._cursor.execute, sql, parameters)
            return
        rows = await self._owner._in_thread(
            _reads, partial(_retry_busy, _execute_and_fetch, self._cursor, sql, parameters)
        )
        self._rows = deque(rows)

    async def execute(
        self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None
    ) -> InlineCursor:
        params: Any = () if parameters is None else parameters
        if not self.run_inline(sql, params):
            await self.run_waiting(sql, params)
        return self

    def run_many_inline(self, sql: str, seq_of_parameters: list[Any]) -> bool:
        """``executemany`` here and now; ``False``: it met another writer's lock (nothing changed), or
        the connection is offloaded."""
        self._rows = None
        if self._owner.offloaded:
            return False
        try:
            self._cursor.executemany(sql, seq_of_parameters)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                return False
            raise
        return True

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        self._rows = None
        rows = list(seq_of_parameters)
        if self._owner.offloaded:
            await self._owner._in_thread(_reads, partial(_retry_busy, self._cursor.executemany, sql, rows))
        else:
            await _retry_busy_async(self._cursor.executemany, sql, rows)
        return self

    def rows_now(self) -> list[Any]:
        """Every row of the statement just run (the synchronous ``fetchall``)."""
        if self._rows is not None:
            rows = list(self._rows)
            self._rows.clear()
            return rows
        return self._cursor.fetchall()

    def close_now(self) -> None:
        """Close the cursor (the synchronous ``close``)."""
        self._rows = None
        self._cursor.close()

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
        return self.rows_now()

    async def close(self) -> None:
        self.close_now()

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

    def __init__(self, conn: sqlite3.Connection, *, offloaded: bool = False) -> None:
        self._connection: sqlite3.Connection | None = conn
        self._tx = _InlineQueue()
        # Every statement on a worker thread (a background job's connection; module docstring).
        self.offloaded = offloaded

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    async def _in_thread(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        future = asyncio.get_running_loop().run_in_executor(executor, fn)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # Cancelled (the node stops while a job's batch runs) while the statement goes on in its
            # thread: the connection is not free until it returns. A rollback or close meanwhile would
            # use one sqlite3 connection from two threads at once (a crash, not an error).
            await asyncio.wait([future])
            raise

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cursor = InlineCursor(self)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        conn = self._conn
        if conn.in_transaction:
            try:
                await self._in_thread(_commits, partial(_retry_busy, conn.commit))
            finally:
                _lock_released()

    async def rollback(self) -> None:
        self._conn.rollback()
        _lock_released()

    async def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                await self._in_thread(_commits, conn.close)
            finally:
                _lock_released()

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


async def connect(database: str, *, offloaded: bool = False, **kwargs: Any) -> InlineConnection:
    """Open ``database`` (on a worker thread: opening may wait for the disk). ``offloaded``: every
    statement of the connection runs on a worker thread (see the module docstring)."""
    kwargs.setdefault("check_same_thread", False)
    conn = await asyncio.get_running_loop().run_in_executor(
        _commits, partial(sqlite3.connect, database, **kwargs)
    )
    return InlineConnection(conn, offloaded=offloaded)


# ---------------------------------------------------------------------- SQLAlchemy's side
# SQLAlchemy runs a session's statements in a greenlet and reaches an asyncio driver through
# ``await_``: each call (entering a cursor, executing, fetching, closing) hands the awaitable to the
# event loop's greenlet and switches back with its result. For statements that run inline that
# round trip is all overhead — three per statement, a greenlet switch each way, and an asyncio lock —
# and it cost more than SQLite took to run them. The adapted cursor below runs such a statement (and
# fetches its rows) in place; a statement that must wait (another writer's lock, a long read) still
# takes the awaitable path. The module is given to the engine as its DBAPI (``dbapi()``).
#
# SQLAlchemy's ``AsyncConnection.execute`` insists that the driver awaited at least once in the
# greenlet it runs a statement in (``AwaitRequired`` otherwise: the guard against a blocking driver),
# so the first inline statement of each greenlet makes one round trip that does nothing; a session's
# flush or commit runs all its statements in one greenlet.
_awaited: weakref.WeakSet[Any] = weakref.WeakSet()


async def _nothing() -> None:
    return None


def _await_once() -> None:
    current = getcurrent()
    if current not in _awaited:
        _awaited.add(current)
        await_(_nothing())


class _AdaptedCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's cursor over an :class:`InlineCursor`, without ``await_`` for inline statements."""

    __slots__ = ()

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # an InlineCursor needs no entering

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cursor: InlineCursor = self._cursor  # type: ignore[assignment]
        params: Any = () if parameters is None else parameters
        try:
            if cursor.run_inline(operation, params):
                _await_once()
            else:
                await_(self._run_waiting(cursor, operation, params))
            if cursor.description:
                self._rows = deque(cursor.rows_now())
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return None

    async def _run_waiting(self, cursor: InlineCursor, operation: str, params: Any) -> None:
        async with self._adapt_connection._execute_mutex:
            await cursor.run_waiting(operation, params)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        cursor: InlineCursor = self._cursor  # type: ignore[assignment]
        rows = list(seq_of_parameters)
        try:
            if cursor.run_many_inline(operation, rows):
                _await_once()
            else:
                await_(self._executemany_async(operation, rows))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return None

    def close(self) -> None:
        self._rows.clear()
        if self._cursor is None or self._soft_closed_memoized:
            return
        cursor: InlineCursor = self._cursor  # type: ignore[assignment]
        cursor.close_now()


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's connection over an :class:`InlineConnection`: inline cursors, and a rollback in
    place (it never waits: SQLite drops the transaction's pages from memory)."""

    __slots__ = ()

    _cursor_cls = _AdaptedCursor

    def rollback(self) -> None:
        connection: InlineConnection = self._connection  # type: ignore[assignment]
        if connection._connection is None:
            return
        try:
            connection._connection.rollback()
        except Exception as error:
            self._handle_exception(error)
        finally:
            _lock_released()


class _InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI SQLAlchemy's aiosqlite dialect sees: connections made by ``async_creator``
    (:func:`connect`) are adapted by :class:`_AdaptedConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> Any:
        creator_fn = kw.pop("async_creator_fn", None)
        if creator_fn is None:
            return super().connect(*arg, **kw)
        return _AdaptedConnection(self, await_(creator_fn(*arg, **kw)))


def dbapi() -> Any:
    """The DBAPI module to give ``create_async_engine`` (``module=``) together with
    ``async_creator=`` :func:`connect`."""
    import aiosqlite

    return _InlineDBAPI(aiosqlite, sqlite3)
