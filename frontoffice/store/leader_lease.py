"""The cluster's leases and their fencing tokens (several nodes on one PostgreSQL database).

One node at a time routes contacts, and one voice node at a time runs the campaign dialler
(docs/scaling.md): each holds a lease of a :class:`LeaseKind` (:data:`ROUTING`, :data:`DIALLING`),
with a lock key and a one-row epoch table of its own, so the two are held independently. A lease is
a PostgreSQL session-level advisory lock held on a connection of its own (not one of the pool's): the
server grants it to one session only and releases it when that session ends, so a killed node
(``kill -9``, a lost host) frees it as soon as the server sees its socket close.

A lock alone does not stop a leader that *lost* it from writing: a node paused or cut off may still
have a transaction in flight when another takes over. So each leader also takes a **fencing token**:
on winning the lock it increments the epoch in its kind's table (``cluster_leader``,
``cluster_dialler``) and keeps the value. Every transaction of its ACD (of the dialler: every claim of
campaign contacts) starts with :meth:`Fence.check`, ``SELECT epoch ... FOR SHARE``: the row lock
makes the next leader's increment wait until that transaction ends, and a transaction that starts
after the increment reads the new epoch and raises :class:`LeaseLost`. Either a late write commits
before the new leader rebuilds its engine from the store (which then includes it), or it is refused.

Usage::

    lease = LeaderLease(url, node="host-a:8080")
    epoch = await lease.try_acquire()   # None: another node leads
    if epoch is not None:
        fence = Fence(epoch)
        ...                              # route; every ACD transaction runs fence.check(session)
        await lease.wait_lost()          # returns when the session is gone or stops answering

    dialler = LeaderLease(url, node="host-a:8080", kind=DIALLING)   # the same, for the dialler

:func:`hold_when_free` is the loop of a node that wants a lease: ask, serve while it is held, stand
back after losing it, ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from .node_lock import NODE_LOCK_KEY

__all__ = [
    "DIALLER_LOCK_KEY",
    "DIALLING",
    "LEADER_LOCK_KEY",
    "LEASE_POLL_S",
    "ROUTING",
    "STAND_BACK_S",
    "Fence",
    "LeaderLease",
    "LeaseKind",
    "LeaseLost",
    "SingleNodeServes",
    "asyncpg_dsn",
    "hold_when_free",
]

log = logging.getLogger("frontoffice.cluster.lease")

# The advisory lock key of "routes contacts for this database" ("FrOnTLdR" in ASCII): recognisable in
# pg_locks and distinct from the single-node lock of store/node_lock.py.
LEADER_LOCK_KEY = 0x46724F6E544C6452
# The advisory lock key of "runs the campaign dialler for this database" ("FrOnTDiL"), distinct from
# routing's: the voice node that dials need not be the one that routes.
DIALLER_LOCK_KEY = 0x46724F6E5444694C


@dataclass(frozen=True, slots=True)
class LeaseKind:
    """What a lease grants (``name``, in log lines): its advisory lock ``key``, the one-row ``table``
    of its epoch (id 1: epoch, node, since) and the word its session shows in ``pg_stat_activity``
    (``application_name`` ``frontoffice <session> <node>``)."""

    name: str
    key: int
    table: str
    session: str


# Routing (services/cluster.py): the ACD, its timers and the scheduled work.
ROUTING = LeaseKind("routing", LEADER_LOCK_KEY, "cluster_leader", "lease")
# The campaign dialler (services/campaign_dialler.py): pacing and placing campaign calls.
DIALLING = LeaseKind("dialler", DIALLER_LOCK_KEY, "cluster_dialler", "dialler")

# How often the leader asks its lease session whether it still answers, and how long an answer may
# take. A session that does not answer within the timeout is taken as lost: the node stops routing
# before the server (TCP keepalives below) gives the lock to another node.
CHECK_INTERVAL_S = 0.5
CHECK_TIMEOUT_S = 1.0
# Server-side keepalives of the lease session: a leader whose host vanishes without closing its socket
# (power loss, a cut cable) loses the lock after about idle + interval x count = 4 s, not the kernel's
# default two hours.
KEEPALIVE_SETTINGS = {
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "2",
}

# A node that wants a lease asks for it this often: the bulk of a fail-over's time after the holder's
# session ends (a routing leader's rebuild is the rest). A poll is one cheap statement on the asking
# node's lease session.
LEASE_POLL_S = 0.2
# After losing a lease a node waits this long before asking again: another node (polling every
# LEASE_POLL_S) takes over first.
STAND_BACK_S = 1.0

# How long a new leader waits for a transaction of the previous leader that holds the epoch's row
# before the server ends it: a live batch commits in milliseconds; one still open after this belongs
# to a node that is paused or cut off mid-transaction (whose socket may stay open for hours).
FENCE_GRACE_S = 1.0

# The sessions holding the epoch's row for share (Fence.check takes a ROW SHARE lock on the table; each
# kind has a table of its own, so this ends only the transactions of that kind's leadership).
_END_FENCED_HOLDERS = (
    "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l "
    "JOIN pg_class c ON c.oid = l.relation "
    "WHERE c.relname = $1 AND l.mode = 'RowShareLock' AND l.granted "
    "AND l.pid <> pg_backend_pid() "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class LeaseLost(Exception):
    """This node no longer holds the lease (of routing: the command may run again on the new
    leader; of the dialler: the claim is the next holder's to make): a newer epoch exists, or its lease
    session is gone. Its transaction was refused."""


class SingleNodeServes(Exception):
    """A node without the cluster configuration serves this database (it holds the single-node lock
    of store/node_lock.py): a cluster node must not route beside it."""


def asyncpg_dsn(url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from the node's SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Fence:
    """The fencing token of one leadership: the epoch this node took when it won the lease of
    ``kind`` (routing by default)."""

    def __init__(self, epoch: int, kind: LeaseKind = ROUTING) -> None:
        self.epoch = epoch
        self.kind = kind
        self._statement = text(f"SELECT epoch FROM {kind.table} WHERE id = 1 FOR SHARE")

    async def check(self, session: AsyncSession) -> None:
        """Lock the epoch's row for the rest of ``session``'s transaction and refuse it (raise
        :class:`LeaseLost`) unless the epoch is still this leadership's."""
        current = (await session.execute(self._statement)).scalar_one()
        if current != self.epoch:
            raise LeaseLost(f"{self.kind.name} epoch {self.epoch} is over: the epoch is now {current}")


class LeaderLease:
    """The advisory lock of ``kind`` (routing by default), on a dedicated session (see the module
    docstring)."""

    def __init__(
        self,
        url: str,
        node: str,
        *,
        kind: LeaseKind = ROUTING,
        check_interval_s: float = CHECK_INTERVAL_S,
        check_timeout_s: float = CHECK_TIMEOUT_S,
        fence_grace_s: float = FENCE_GRACE_S,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.node = node
        self.kind = kind
        self.key = kind.key
        self.check_interval_s = check_interval_s
        self.check_timeout_s = check_timeout_s
        self.fence_grace_s = fence_grace_s
        self.epoch: int | None = None
        self._connection: Any = None  # asyncpg.Connection
        self._lost = asyncio.Event()

    @property
    def held(self) -> bool:
        return self.epoch is not None and not self._lost.is_set()

    async def _connect(self) -> Any:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self.dsn,
                server_settings={
                    "application_name": f"frontoffice {self.kind.session} {self.node}"[:63],
                    **KEEPALIVE_SETTINGS,
                },
                timeout=self.check_timeout_s * 5,
            )
            self._connection.add_termination_listener(lambda _: self._lost.set())
            # Cluster nodes share the single-node lock (store/node_lock.py): a node started without
            # the cluster configuration then refuses this database, and this one refuses to run
            # beside such a node.
            if not await self._connection.fetchval("SELECT pg_try_advisory_lock_shared($1)", NODE_LOCK_KEY):
                self._connection.terminate()
                self._connection = None
                raise SingleNodeServes(
                    "A Frontoffice node without the cluster configuration (FRONTOFFICE_NATS_URL) serves "
                    "this database: stop it before starting cluster nodes"
                )
        return self._connection

    async def join(self) -> None:
        """Open the lease session (taking the cluster's share of the single-node lock) without asking
        for the lease; raises :class:`SingleNodeServes`."""
        await self._connect()

    async def try_acquire(self) -> int | None:
        """Take the lock if no other session holds it, then start a new epoch and return it; None
        when another node leads. Raises the connection's error when the database is unreachable."""
        connection = await self._connect()
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
            return None
        self._lost.clear()
        try:
            epoch = await self._next_epoch(connection)
        except BaseException:
            await self.release()
            raise
        self.epoch = int(epoch)
        log.info("%s lease taken", self.kind.name, extra={"epoch": self.epoch, "node": self.node})
        return self.epoch

    async def _next_epoch(self, connection: Any) -> int:
        """Increment the epoch. The update waits for transactions of the previous leader that hold
        the row (Fence.check): each either commits first or, when it is still open after
        ``fence_grace_s`` (its node paused or cut off in the middle of it), is ended by the server,
        which rolls it back. Either way none commits after the new epoch."""
        while True:
            try:
                async with connection.transaction():
                    await connection.execute(f"SET LOCAL lock_timeout = {int(self.fence_grace_s * 1000)}")
                    epoch = await connection.fetchval(
                        f"UPDATE {self.kind.table} SET epoch = epoch + 1, node = $1, "
                        "since = now() AT TIME ZONE 'UTC' WHERE id = 1 RETURNING epoch",
                        self.node,
                    )
                    return int(epoch)
            except asyncpg.exceptions.LockNotAvailableError:
                # Only a leader's fenced transaction holds this row, and the leader is now us: the
                # holders belong to a leadership that is over.
                ended = await connection.fetchval(_END_FENCED_HOLDERS, self.kind.table)
                log.warning("ended transactions of the previous leader", extra={"sessions": ended})

    async def wait_lost(self) -> None:
        """Return when the lease is lost: the session closed, or it did not answer a check within
        ``check_timeout_s``. The caller stops routing at once."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=self.check_interval_s)
                break
            try:
                await asyncio.wait_for(self._connection.fetchval("SELECT 1"), timeout=self.check_timeout_s)
            except (Exception, TimeoutError) as exc:  # any failure of the session
                log.warning("%s lease session lost", self.kind.name, extra={"error": str(exc)})
                self._lost.set()
        self.epoch = None
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()  # never reuse a session whose lock may be gone

    def lose(self) -> None:
        """Give the lease up at once without a round trip (a fenced write found a newer epoch)."""
        self._lost.set()

    async def release(self) -> None:
        """Unlock and close the session (safe when nothing is held)."""
        self.epoch = None
        self._lost.set()
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), timeout=self.check_timeout_s)
            except (Exception, TimeoutError):  # closing ends the session anyway
                connection.terminate()


async def hold_when_free(
    lease: LeaderLease,
    serve: Callable[[int], Awaitable[None]],
    *,
    poll_s: float = LEASE_POLL_S,
    stand_back_s: float = STAND_BACK_S,
    may_hold: Callable[[], bool] = lambda: True,
) -> NoReturn:
    """Ask for ``lease`` every ``poll_s`` while ``may_hold()`` (a node that cannot serve the lease's
    work now does not ask), and each time it is won run ``serve(epoch)``: it returns once the lease is
    lost, having given it up. Then wait ``stand_back_s`` before asking again: a node that lost its
    lease probably has trouble with the database or the network, so a healthy one takes over first.
    Runs until cancelled."""
    while True:
        if not may_hold():
            await asyncio.sleep(poll_s)
            continue
        try:
            epoch = await lease.try_acquire()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is away: try again
            log.warning("the %s lease could not be asked for", lease.kind.name, extra={"error": str(exc)})
            await lease.release()
            await asyncio.sleep(poll_s * 5)
            continue
        if epoch is None:
            await asyncio.sleep(poll_s)
            continue
        await serve(epoch)
        await asyncio.sleep(stand_back_s)
