"""Engine and session factory.

SQLite runs through :mod:`frontoffice.store.sqlite_async` (short statements on the event loop, reads
outside transactions and commits on a worker thread) with WAL, ``synchronous=FULL`` and foreign keys on
every connection; waiting for another writer's lock is done by that module, not by SQLite's busy
handler (which would block the event loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from . import append_log, sqlite_async
from .committed import CommitOutlet

__all__ = [
    "create_engine",
    "create_job_engine",
    "database_label",
    "session_factory",
    "sqlite_file",
    "sync_session_class",
]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable in WAL mode across application crashes (kill -9); only an OS crash may
    # lose the last transactions — FULL closes that too, at a fsync per commit.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 0: a statement that meets another writer's lock fails at once and sqlite_async retries it on a
    # worker thread for up to BUSY_TIMEOUT_S (SQLite's busy handler would block the event loop).
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; ``None`` for an in-memory database or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.query.get("uri") in ("true", "1"):
        # file:path?mode=... — the path part is the file (a "file::memory:" URI has none).
        path = parsed.database.removeprefix("file:").split("?", 1)[0]
        return (
            None
            if not path or path.startswith(":memory:") or "mode=memory" in parsed.database
            else Path(path)
        )
    return Path(parsed.database)


def database_label(url: str) -> str:
    """The database as a person names it in a message: the SQLite file, or the URL without password."""
    path = sqlite_file(url)
    if path is not None:
        return str(path.resolve())
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        database = parsed.database or ":memory:"
        if database != ":memory:" and parsed.query.get("uri") not in ("true", "1"):
            kwargs.setdefault("async_creator", lambda: sqlite_async.connect(database))
            kwargs.setdefault("module", sqlite_async.dbapi())
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def create_job_engine(url: str) -> AsyncEngine | None:
    """The engine background jobs (imports, exports) use on a SQLite file: its connections run every
    statement on a worker thread (``sqlite_async``'s offloaded connections), so a job's batches never
    hold the event loop. ``None`` for PostgreSQL (asyncpg never blocks the loop: the jobs share the
    node's engine) and for in-memory SQLite (one database per connection)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ":memory:"
    if database == ":memory:" or parsed.query.get("uri") in ("true", "1"):
        return None
    engine = create_async_engine(
        url,
        async_creator=lambda: sqlite_async.connect(database, offloaded=True),
        module=sqlite_async.dbapi(),
        pool_size=2,
    )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A session factory with its own ``Session`` subclass, so event hooks attach to this container's
    sessions only (see :func:`sync_session_class`), and its own outlet of committed events
    (:func:`commit_outlet`)."""

    class ContainerSession(Session):
        outlet = CommitOutlet()

    append_log.install(ContainerSession, ContainerSession.outlet)
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=ContainerSession)


def commit_outlet(sessions: async_sessionmaker[AsyncSession]) -> CommitOutlet:
    """Where the committed transactions of these sessions go out (subscribers: ``bootstrap.py``)."""
    outlet: CommitOutlet = sync_session_class(sessions).outlet  # type: ignore[attr-defined]
    return outlet


def sync_session_class(sessions: async_sessionmaker[AsyncSession]) -> type[Session]:
    cls: type[Session] = sessions.kw["sync_session_class"]
    return cls
