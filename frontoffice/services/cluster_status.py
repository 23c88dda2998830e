"""What ``frontoffice cluster status`` shows: the nodes' heartbeats, the leader and its lease, the
voice node that runs the campaign dialler and its lease, the bus.

Read from the store (``cluster_leader``, ``cluster_dialler``, ``cluster_nodes``: store/leader_lease.py
and services/cluster.py write them) and by a round trip to NATS from the machine that asks; it needs no
running node.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.store.leader_lease import DIALLING, ROUTING, LeaseKind
from frontoffice.store.tables import ClusterDialler, ClusterLeader, ClusterNode

__all__ = [
    "ClusterStatus",
    "Heard",
    "LeaderStatus",
    "NodeStatus",
    "bus_health",
    "last_heard",
    "read_cluster_status",
]

# A node whose last heartbeat is older than this is shown as silent (it beats every second).
SILENT_AFTER_S = 5.0
BUS_PROBE_TIMEOUT_S = 2


_HELD = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
    "WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted "
    "AND l.classid = :high AND l.objid = :low AND l.objsubid = 1"
)


@dataclass(frozen=True, slots=True)
class LeaderStatus:
    """The last leadership of a lease begun (``held``: the lease is held now): of routing, or of the
    campaign dialler."""

    held: bool
    node: str
    epoch: int
    since: datetime | None
    age_s: float


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node: str
    role: str
    epoch: int | None
    bus: str
    http_url: str
    version: str
    heartbeat_age_s: float
    alive: bool


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    leader: LeaderStatus
    nodes: list[NodeStatus]
    bus: str
    dialler: LeaderStatus

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def bus_health(nats_url: str) -> str:
    """``ok, rtt N ms`` after a round trip to the NATS server, or why it failed."""
    if not nats_url:
        return "not configured (one node, in-process bus)"
    import nats

    started = time.monotonic()
    try:
        client = await nats.connect(
            servers=[u.strip() for u in nats_url.split(",") if u.strip()],
            connect_timeout=BUS_PROBE_TIMEOUT_S,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
    except Exception as exc:  # the answer is the failure
        return f"unreachable: {exc!r}"
    try:
        await client.flush(timeout=BUS_PROBE_TIMEOUT_S)
        return f"ok, rtt {1000 * (time.monotonic() - started):.1f} ms (connect and ping)"
    except Exception as exc:
        return f"unhealthy: {exc!r}"
    finally:
        await client.close()


@dataclass(frozen=True, slots=True)
class Heard:
    """When a node of the cluster was last heard of (its heartbeat) and whether it said it stopped:
    the one rule for whether work a node kept in the store (its calls, its campaign calls) died with
    it. Work it started is gone when the node has been silent since before ``cutoff``, or when it
    stopped and the work is from before it stopped (a node restarted under its name keeps its own)."""

    at: datetime
    stopped: bool

    def silent(self, cutoff: datetime) -> bool:
        return self.at < cutoff

    def lost(self, started_at: datetime, cutoff: datetime) -> bool:
        """Whether work the node started at ``started_at`` died with it."""
        return self.silent(cutoff) or (self.stopped and started_at <= self.at)


async def last_heard(s: AsyncSession, nodes: set[str]) -> dict[str, Heard]:
    """When each of ``nodes`` that has a row in the node table was last heard of."""
    if not nodes:
        return {}
    rows = await s.execute(
        select(ClusterNode.node, ClusterNode.heartbeat_at, ClusterNode.role).where(
            ClusterNode.node.in_(nodes)
        )
    )
    return {node: Heard(at, role == "stopped") for node, at, role in rows.all()}


async def read_cluster_status(sessions: async_sessionmaker[AsyncSession], nats_url: str) -> ClusterStatus:
    now = datetime.now(UTC)
    async with sessions() as s:
        leader = await _lease_status(s, await s.get(ClusterLeader, 1), ROUTING, now)
        dialler = await _lease_status(s, await s.get(ClusterDialler, 1), DIALLING, now)
        rows = list(await s.scalars(select(ClusterNode).order_by(ClusterNode.node)))
    nodes = [
        NodeStatus(
            node=row.node,
            role=row.role,
            epoch=row.epoch,
            bus=row.bus,
            http_url=row.http_url,
            version=row.version,
            heartbeat_age_s=(now - row.heartbeat_at).total_seconds(),
            alive=row.role != "stopped" and (now - row.heartbeat_at).total_seconds() < SILENT_AFTER_S,
        )
        for row in rows
    ]
    return ClusterStatus(leader=leader, nodes=nodes, bus=await bus_health(nats_url), dialler=dialler)


async def _lease_status(
    s: AsyncSession, row: ClusterLeader | ClusterDialler | None, kind: LeaseKind, now: datetime
) -> LeaderStatus:
    """The last leadership of ``kind`` (``row``: its epoch's) and whether its lock is held now."""
    held = False
    if s.get_bind().dialect.name == "postgresql":
        params = {"high": (kind.key >> 32) & 0xFFFFFFFF, "low": kind.key & 0xFFFFFFFF}
        held = bool(await s.scalar(_HELD, params))
    since = row.since if row is not None else None
    return LeaderStatus(
        held=held,
        node=row.node if row is not None else "",
        epoch=row.epoch if row is not None else 0,
        since=since,
        age_s=(now - since).total_seconds() if since is not None else 0.0,
    )
