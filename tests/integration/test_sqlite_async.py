"""The SQLite connection of the store (store/sqlite_async.py) as SQLAlchemy uses it: statements run
in place, and the ones that must wait (another writer's lock, a long read) still wait and answer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from frontoffice.store import sqlite_async
from frontoffice.store.database import create_engine, create_job_engine

from ..conftest import eventually

# Rows a read scans: enough VM steps to run past the inline budget of a read (about 20,000 steps).
LONG_READ_ROWS = 300


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


async def test_statements_run_through_a_connection_and_a_session(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO items (name) VALUES ('a'), ('b')"))
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar() == 2
        await conn.exec_driver_sql("INSERT INTO items (name) VALUES ('c')")
    sessions = async_sessionmaker(engine)
    async with sessions.begin() as s:
        await s.execute(text("INSERT INTO items (name) VALUES (:n)"), [{"n": "d"}, {"n": "e"}])
        names = list(await s.scalars(text("SELECT name FROM items ORDER BY id")))
    assert names == ["a", "b", "c", "d", "e"]


async def test_a_failed_statement_raises_and_rolls_back(engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(engine)
    with pytest.raises(IntegrityError):
        async with sessions.begin() as s:
            await s.execute(text("INSERT INTO items (name) VALUES ('same')"))
            await s.execute(text("INSERT INTO items (name) VALUES ('same')"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar() == 0


async def test_a_write_waits_for_another_writers_lock(engine: AsyncEngine, tmp_path: Path) -> None:
    async with engine.connect() as conn:  # the pool's connection is open before the lock is taken
        await conn.execute(text("SELECT 1"))
    holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO items (name) VALUES ('first')")

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('second')"))

    writer = asyncio.create_task(write())
    await asyncio.sleep(0)  # the writer runs up to its first wait: the lock is held
    assert not writer.done()
    holder.execute("COMMIT")
    holder.close()
    await writer
    async with engine.connect() as conn:
        names = [row[0] for row in await conn.execute(text("SELECT name FROM items ORDER BY id"))]
    assert names == ["first", "second"]


async def test_a_write_waiting_for_the_lock_retries_as_soon_as_a_connection_of_the_process_releases_it(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A contact's commit waiting behind an import's batch must not sleep through its back-off while
    # the job takes the lock again: it is woken when the batch commits. With back-offs of an hour, the
    # writer finishes only if it is woken.
    monkeypatch.setattr(sqlite_async, "BUSY_RETRY_FIRST_S", 3600.0)
    monkeypatch.setattr(sqlite_async, "BUSY_RETRY_MAX_S", 3600.0)
    jobs = create_job_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    assert jobs is not None
    async with engine.connect() as conn:  # the pool's connection is open before the lock is taken
        await conn.execute(text("SELECT 1"))

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('contact')"))

    try:
        async with jobs.connect() as batch:
            await batch.execute(text("INSERT INTO items (name) VALUES ('batch')"))  # holds the lock
            writer = asyncio.create_task(write())
            await eventually(sqlite_async.waiting_writers, "the writer finds the lock taken and waits")
            assert not writer.done()
            await batch.commit()
            async with asyncio.timeout(30):  # far shorter than the back-off
                await writer
    finally:
        await jobs.dispose()
    async with engine.connect() as conn:
        names = [row[0] for row in await conn.execute(text("SELECT name FROM items ORDER BY id"))]
    assert names == ["batch", "contact"]


async def test_a_long_read_answers_in_full(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
                "INSERT INTO items (name) SELECT 'item' || i FROM n"
            ),
            {"rows": LONG_READ_ROWS},
        )
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT count(*) FROM items a, items b WHERE a.id <= b.id"))
        pairs = result.scalar()
    assert pairs == LONG_READ_ROWS * (LONG_READ_ROWS + 1) // 2


async def _threads_of_statements(engine: AsyncEngine, tag: str) -> set[str]:
    """The threads a write transaction's statements (an insert, a read, an executemany) ran on."""
    seen: set[str] = set()

    def where(_: object) -> int:
        seen.add(threading.current_thread().name)
        return 1

    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.create_function("where_am_i", 1, where)  # type: ignore[union-attr]
        await conn.execute(text("INSERT INTO items (name) VALUES (:n || where_am_i(1))"), {"n": f"{tag}x"})
        await conn.execute(text("SELECT where_am_i(id) FROM items"))
        await conn.execute(
            text("INSERT INTO items (name) VALUES (:n || where_am_i(1))"),
            [{"n": f"{tag}y"}, {"n": f"{tag}z"}],
        )
    return seen


async def test_the_job_engine_runs_every_statement_of_a_write_transaction_off_the_event_loop(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    loop_thread = threading.current_thread().name
    # The node's engine runs a write transaction's statements in place, on the event loop ...
    assert await _threads_of_statements(engine, "node") == {loop_thread}
    # ... the job engine (imports, exports) on worker threads, so a batch of hundreds of rows never
    # holds the loop.
    jobs = create_job_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    assert jobs is not None
    try:
        threads = await _threads_of_statements(jobs, "job")
    finally:
        await jobs.dispose()
    assert threads and loop_thread not in threads
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar() == 6


def test_postgresql_jobs_share_the_nodes_engine() -> None:
    assert create_job_engine("postgresql+asyncpg://u@localhost/db") is None


async def test_a_cancelled_statement_on_a_worker_thread_finishes_before_the_connection_is_used_again(
    tmp_path: Path,
) -> None:
    """A job cancelled mid-statement (the node stops) must not leave its thread on the connection
    while the session rolls back and the engine closes it: one sqlite3 connection used from two
    threads at once crashes the process."""
    jobs = create_job_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    assert jobs is not None
    rows = 200_000
    started = threading.Event()
    reached: list[int] = []

    def mark(n: int) -> int:
        started.set()
        reached.append(n)
        return n

    async def long_statement() -> None:
        async with jobs.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.create_function("mark", 1, mark)  # type: ignore[union-attr]
            await conn.execute(
                text(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :rows) "
                    "SELECT max(mark(x)) FROM n"
                ),
                {"rows": rows},
            )

    task = asyncio.create_task(long_statement())
    await eventually(started.is_set, "the statement runs on its thread", timeout_s=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached[-1] == rows  # the statement had finished when the cancellation went on
    await jobs.dispose()
