"""One serving node per database, unless the nodes run as a cluster (services/cluster.py).

Each ``frontoffice serve`` routes contacts with an engine in its own memory: a second node on the same
database would offer contacts the first one knows nothing about (an offer accepted on the other node is
a 404 and the contact stays ``offered``). So the node that serves a database holds a lock on it for the
life of its process, and a second one refuses to start (:class:`DatabaseInUse`). Nodes of a cluster
(``FRONTOFFICE_NATS_URL``) hold the same key *shared* (store/leader_lease.py): a single node refuses a
database a cluster serves, and a cluster node refuses one a single node serves.

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its own,
  opened for this and kept for the life of the process. The server releases it when that session ends,
  so a killed node (``kill -9``, a lost host) leaves no stale lock once its connection is gone.
- **SQLite**: an OS file lock (``flock``) on ``<database file>.node-lock`` next to the database file. The
  kernel releases it when the process exits, however it exits. A lock file is never deleted: deleting
  it would let a second node lock a new file while the first still holds the old one.
- An in-memory SQLite database belongs to one process anyway: :class:`NoNodeLock`.

Only serving takes the lock: the commands that migrate or read (``init``, ``db``, ``user``, ``plan``)
run beside a serving node. Usage::

    lock = node_lock(settings.database_url)
    await lock.acquire()  # raises DatabaseInUse
    try:
        ...  # serve
    finally:
        await lock.release()
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from .database import create_engine, database_label, sqlite_file

__all__ = [
    "NODE_LOCK_KEY",
    "DatabaseInUse",
    "FileNodeLock",
    "NoNodeLock",
    "NodeLock",
    "PostgresNodeLock",
    "node_lock",
]

# The advisory lock key of "this database is served" (a bigint; advisory locks are per database, so
# one constant serves every database of a cluster). "FrOnTOfC" in ASCII, so it is recognisable in
# pg_locks (classid 0x46724f6e, objid 0x544f6643) and unlikely to meet another application's key.
NODE_LOCK_KEY = 0x46724F6E544F6643
LOCK_FILE_SUFFIX = ".node-lock"
# A node restarted right after a crash (systemd's Restart=) may ask before the server has noticed that
# the dead node's session is gone (it notices when the socket closes: milliseconds, more over a
# network): ask again for this long before refusing. A live holder is refused after it.
DEAD_SESSION_GRACE_S = 3.0
RETRY_INTERVAL_S = 0.25


def _this_node() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class DatabaseInUse(Exception):
    """Another node serves this database. The message names the database, the holder when known, and
    what to do."""

    def __init__(self, database: str, holder: str | None) -> None:
        self.database = database
        self.holder = holder
        held_by = f" (held by {holder})" if holder else ""
        super().__init__(
            f"The database {database} is already served by another Frontoffice node{held_by}. "
            "Several nodes on one PostgreSQL database run as a cluster (FRONTOFFICE_NATS_URL on every "
            "node, docs/scaling.md); otherwise stop the other 'frontoffice serve' first, or give this "
            "one a database of its own (FRONTOFFICE_DATABASE_URL, or FRONTOFFICE_DATA_DIR for SQLite). "
            "Commands that migrate or read (init, db, user, plan) may run beside it."
        )


class NodeLock(Protocol):
    """The lock a serving node holds on its database for the life of its process."""

    async def acquire(self) -> None:
        """Take the lock, or raise :class:`DatabaseInUse` at once (never waits for the other node)."""

    async def release(self) -> None:
        """Give the lock up (also safe when it was never taken)."""


class NoNodeLock:
    """For an in-memory SQLite database, which no other process can open."""

    async def acquire(self) -> None:
        return None

    async def release(self) -> None:
        return None


class FileNodeLock:
    """``flock`` on a lock file next to the SQLite database file."""

    def __init__(self, database_file: Path) -> None:
        self.database_file = database_file
        self.path = database_file.with_name(database_file.name + LOCK_FILE_SUFFIX)
        self._fd: int | None = None

    async def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or None
            os.close(fd)
            raise DatabaseInUse(str(self.database_file), holder) from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message of the node that is refused (read only, never trusted).
        os.ftruncate(fd, 0)
        os.pwrite(fd, _this_node().encode(), 0)
        self._fd = fd

    async def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class PostgresNodeLock:
    """A session-level advisory lock on a dedicated connection (not one of the pool's, so neither a
    pool recycle nor a transaction's end lets it go)."""

    def __init__(self, url: str, key: int = NODE_LOCK_KEY) -> None:
        self.url = url
        self.key = key
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None

    async def acquire(self) -> None:
        if self._connection is not None:
            return
        # AUTOCOMMIT: the connection sits idle for the life of the process, never inside a transaction.
        engine = create_engine(
            self.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": {"application_name": f"frontoffice node {_this_node()}"}},
        )
        try:
            connection = await engine.connect()
            try:
                deadline = time.monotonic() + DEAD_SESSION_GRACE_S
                while not await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                ):
                    if time.monotonic() >= deadline:
                        raise DatabaseInUse(database_label(self.url), await self._holder(connection))
                    await asyncio.sleep(RETRY_INTERVAL_S)
            except BaseException:
                await connection.close()
                raise
        except BaseException:
            await engine.dispose()
            raise
        self._engine, self._connection = engine, connection

    async def _holder(self, connection: AsyncConnection) -> str | None:
        """The application name and address of the session holding the lock, when visible to us."""
        row = (
            await connection.execute(
                text(
                    "SELECT a.application_name, a.client_addr FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "JOIN pg_database d ON d.oid = l.database AND d.datname = current_database() "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
                ),
                {"high": (self.key >> 32) & 0xFFFFFFFF, "low": self.key & 0xFFFFFFFF},
            )
        ).first()
        if row is None or not row.application_name:
            return None
        return f"{row.application_name}" + (f" from {row.client_addr}" if row.client_addr else "")

    async def release(self) -> None:
        connection, engine = self._connection, self._engine
        self._connection = self._engine = None
        if connection is not None:
            try:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            finally:
                # Closing the session releases the lock too, should the unlock itself fail.
                await connection.close()
        if engine is not None:
            await engine.dispose()


def node_lock(url: str) -> NodeLock:
    """The lock of a serving node on the database at ``url``."""
    if make_url(url).get_backend_name() == "postgresql":
        return PostgresNodeLock(url)
    path = sqlite_file(url)
    return NoNodeLock() if path is None else FileNodeLock(path)
