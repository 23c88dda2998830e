"""Several nodes on one PostgreSQL database, joined by NATS: one routes, every node serves.

Every node serves the web UI, the API, WebSockets and the text channels. One node at a time, the
*leader*, runs the routing engine and the scheduled work (the ACD's timers, callbacks, SLA timers,
calendars, the outbox): it holds the lease of :mod:`frontoffice.store.leader_lease` (a PostgreSQL
advisory lock on a session of its own) and every transaction of its ACD checks its fencing epoch.
The others are *standbys*:

- **Commands** (:mod:`frontoffice.services.acd_commands` and the use cases' own: a new contact, an
  agent's state, accept, reject, complete ...) that a standby's ``AcdService.execute`` receives go to
  the leader over NATS request/reply (:meth:`ClusterNode.forward`); the leader runs them in its group
  commit and answers after the commit, so the standby answers its HTTP client only once the command
  is committed. No leader answering within :data:`FORWARD_WAIT_S` (a fail-over takes about a second)
  is a 503 ``leader-unavailable``, never a silent loss; a leader that answers nothing within
  :data:`COMMAND_TIMEOUT_S` is the same 503 (the client repeats the request with its Idempotency-Key,
  which a contact's dedupe key makes safe).
- **Events** go to every node's sockets over NATS (:class:`frontoffice.bus.nats.NatsBus`).
- **The engine's state** that is read outside commands (the desk's checks, the wallboard, metrics,
  the chat's position in line) is mirrored: after each committed batch the leader publishes what it
  changed (:class:`EngineState`: the statuses of the agents, contacts and queues it touched, numbered
  by epoch and sequence); each standby applies them in order to its :class:`EngineMirror`, which
  ``AcdService.view`` answers from. The answer to a forwarded command names the sequence that
  includes it, and the standby waits until its mirror has it, so an agent who accepted through a
  standby can end the contact there at once. A gap (a node cut off from NATS, a new leader) is
  filled with a full snapshot asked of the leader: a node that was cut off catches up.
- **Fail-over**: a standby polls the lease; when the leader dies its session ends, the lock is free,
  the standby takes it, increments the epoch, and rebuilds the engine from the store as a restart
  does (waiting contacts keep their order and waits, ringing offers go back in line, agents keep
  their states). A leader whose lease session is lost (closed, or silent for a check's timeout) stops
  routing at once: it forwards its commands like any standby.

Commands and answers travel pickled and signed with an HMAC of the node secret (every node of a
cluster shares ``FRONTOFFICE_SECRET_KEY``): a message without a valid signature is dropped before it is
unpickled, and the unpickler admits only the project's own classes and a few plain types. NATS itself
should still be private to the cluster (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import logging
import pickle
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice import __version__
from frontoffice.bus.nats import NatsBus, NatsLink
from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import DomainError, Unavailable
from frontoffice.store.committed import Committed
from frontoffice.store.leader_lease import Fence, LeaderLease, LeaseLost, hold_when_free
from frontoffice.store.tables import ClusterLeader as LeaderRow
from frontoffice.store.tables import ClusterNode as NodeRow

from .acd import AcdService, QueueInfo
from .acd_commands import AcdCommand

__all__ = [
    "ClusterNode",
    "EngineMirror",
    "EngineState",
    "LeaderWork",
    "QueueView",
    "RemoteError",
    "cluster_subjects",
    "seal",
    "unseal",
]

log = logging.getLogger("frontoffice.cluster")

# How long a forwarded command may wait for a leader to answer at all (no leader during a fail-over:
# NATS says "no responders" at once, and the command is sent again until one subscribes).
FORWARD_WAIT_S = 10.0
NO_LEADER_RETRY_S = 0.05
# How long the leader may take to answer a forwarded command once it received it: a batch of the
# group commit takes milliseconds; this bounds a leader that died or hung holding the command.
COMMAND_TIMEOUT_S = 5.0
# How long a standby waits for its mirror to include a forwarded command's changes before it asks for
# a snapshot (the changes are published before the answer: normally they are already there).
MIRROR_WAIT_S = 1.0
SNAPSHOT_TIMEOUT_S = 3.0
# Between two heartbeats of a node in the cluster_nodes table (``frontoffice cluster status``).
HEARTBEAT_S = 1.0
_MAC_BYTES = hashlib.sha256().digest_size


# ---------------------------------------------------------------------------------------- codec
_PLAIN_TYPES = {
    ("builtins", name)
    for name in ("object", "set", "frozenset", "tuple", "list", "dict", "complex", "bytearray", "slice")
} | {
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("uuid", "UUID"),
    ("zoneinfo", "ZoneInfo"),
    ("copyreg", "_reconstructor"),
    ("collections", "OrderedDict"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
}
_OWN_MODULES = ("frontoffice.", "pydantic.", "pydantic_core.")


class _Unpickler(pickle.Unpickler):
    """Admits the project's own classes (commands, answers, domain errors, schemas) and plain types."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN_TYPES or module.startswith(_OWN_MODULES) or module == "pydantic":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed between nodes")


def seal(key: bytes, value: Any) -> bytes:
    """``value`` pickled, behind an HMAC-SHA256 of ``key`` (the node secret)."""
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return hmac.new(key, body, hashlib.sha256).digest() + body


def unseal(key: bytes, data: bytes) -> Any:
    """The value :func:`seal` sealed; ``ValueError`` when the signature does not match."""
    mac, body = data[:_MAC_BYTES], data[_MAC_BYTES:]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise ValueError("bad signature: not from a node of this cluster")
    return _Unpickler(io.BytesIO(body)).load()


@dataclass(frozen=True, slots=True)
class RemoteError:
    """A domain error of the leader, as the standby raises it again."""

    error_type: type[DomainError]
    message: str
    state: dict[str, Any]

    @classmethod
    def of(cls, exc: DomainError) -> RemoteError:
        return cls(type(exc), exc.message, dict(exc.__dict__))

    def exception(self) -> DomainError:
        exc = self.error_type.__new__(self.error_type)
        Exception.__init__(exc, self.message)
        exc.__dict__.update(self.state)
        return exc


def cluster_subjects(name: str) -> dict[str, str]:
    """The NATS subjects of the cluster called ``name`` (several clusters may share a NATS)."""
    prefix = "frontoffice." + re.sub(r"[^A-Za-z0-9_-]", "_", name or "default")
    return {
        "events": f"{prefix}.events",
        "commands": f"{prefix}.acd.commands",
        "engine": f"{prefix}.acd.engine",
        "snapshot": f"{prefix}.acd.snapshot",
    }


# ---------------------------------------------------------------------------------------- mirror
@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue as the leader saw it at ``EngineState.at``."""

    status: r.QueueStatus
    turn_away_reason: str | None
    # Waiting contacts best first, and the expected wait per place in line (None: unknown); only in
    # a state whose batch touched the queue (``None``: unchanged).
    waiting: tuple[str, ...] | None = None
    wait_per_place_s: float | None = None


@dataclass(frozen=True, slots=True)
class EngineState:
    """What the leader's engine changed in one committed batch (``full``: all of it)."""

    epoch: int
    seq: int
    full: bool
    at: float
    queue_ids: tuple[str, ...]
    agent_ids: tuple[str, ...]
    agents: dict[str, r.AgentStatus]
    contacts: dict[str, r.ContactStatus | None]  # None: no longer tracked
    queues: dict[str, QueueView]
    queue_info: dict[int, QueueInfo]
    engine_config: r.EngineConfig
    committed: tuple[Committed, ...] = ()


@dataclass(eq=False)
class EngineMirror:
    """A standby's copy of the leader's engine state, for reading (``AcdService.view``)."""

    epoch: int = 0
    seq: int = 0
    at: float = 0.0
    _queue_ids: tuple[str, ...] = ()
    _agent_ids: tuple[str, ...] = ()
    agents: dict[str, r.AgentStatus] = field(default_factory=dict)
    contacts: dict[str, r.ContactStatus] = field(default_factory=dict)
    queues: dict[str, QueueView] = field(default_factory=dict)
    waiting: dict[str, tuple[str, ...]] = field(default_factory=dict)
    wait_per_place: dict[str, float | None] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def follows(self, state: EngineState) -> bool:
        """Whether ``state`` is the next one of the leadership this mirror follows (or a full state
        newer than the mirror's: a snapshot, a new leader's first state)."""
        if state.full:
            return (state.epoch, state.seq) > (self.epoch, self.seq)
        return state.epoch == self.epoch and state.seq == self.seq + 1

    def apply(self, state: EngineState) -> None:
        if state.full:
            self.agents.clear()
            self.contacts.clear()
            self.waiting.clear()
            self.wait_per_place.clear()
        self.epoch, self.seq, self.at = state.epoch, state.seq, state.at
        self._queue_ids, self._agent_ids = state.queue_ids, state.agent_ids
        self.agents.update(state.agents)
        for contact_id, status in state.contacts.items():
            if status is None:
                self.contacts.pop(contact_id, None)
            else:
                self.contacts[contact_id] = status
        self.queues = dict(state.queues)
        for queue_id, view in state.queues.items():
            if view.waiting is not None:
                self.waiting[queue_id] = view.waiting
                self.wait_per_place[queue_id] = view.wait_per_place_s
        self.changed.set()
        self.changed = asyncio.Event()

    def has(self, epoch: int, seq: int) -> bool:
        return self.epoch > epoch or (self.epoch == epoch and self.seq >= seq)

    # The read side of the engine (acd.EngineView); unknown ids raise as the engine does.
    def queue_ids(self) -> tuple[str, ...]:
        return self._queue_ids

    def agent_ids(self) -> tuple[str, ...]:
        return self._agent_ids

    def contact_ids(self) -> tuple[str, ...]:
        return tuple(self.contacts)

    def queue_status(self, queue_id: str, now: float) -> r.QueueStatus:
        view = self.queues.get(queue_id)
        if view is None:
            raise r.UnknownQueue(queue_id)
        status = view.status
        if status.waiting and now > self.at:  # the longest wait has grown since the leader's view
            return r.QueueStatus(
                **{**_fields(status), "longest_wait_s": status.longest_wait_s + now - self.at}
            )
        return status

    def agent_status(self, agent_id: str) -> r.AgentStatus:
        status = self.agents.get(agent_id)
        if status is None:
            raise r.UnknownAgent(agent_id)
        return status

    def contact_status(self, contact_id: str) -> r.ContactStatus:
        status = self.contacts.get(contact_id)
        if status is None:
            raise r.UnknownContact(contact_id)
        return status

    def position(self, contact_id: str) -> int | None:
        status = self.contact_status(contact_id)
        if status.state != "waiting":
            return None
        line = self.waiting_contacts(status.queue_id)
        return line.index(contact_id) + 1 if contact_id in line else None

    def expected_wait(self, contact_id: str, now: float) -> float | None:
        position = self.position(contact_id)
        per_place = self.wait_per_place.get(self.contact_status(contact_id).queue_id)
        return None if position is None or per_place is None else position * per_place

    def waiting_contacts(self, queue_id: str) -> tuple[str, ...]:
        if queue_id not in self.queues:
            raise r.UnknownQueue(queue_id)
        # A contact that left since the line was published is gone from ``contacts`` already.
        return tuple(c for c in self.waiting.get(queue_id, ()) if c in self.contacts)

    def turn_away_reason(self, queue_id: str) -> str | None:
        view = self.queues.get(queue_id)
        if view is None:
            raise r.UnknownQueue(queue_id)
        return view.turn_away_reason


def _fields(status: r.QueueStatus) -> dict[str, Any]:
    return {name: getattr(status, name) for name in status.__slots__}


# ---------------------------------------------------------------------------------------- the node
class LeaderWork(Protocol):
    """What only the leader runs (the container: the ACD and the scheduled work)."""

    async def start_routing(self) -> None:
        """Rebuild the engine from the store, start its timers and the scheduled work."""

    async def stop_routing(self) -> None:
        """Stop the timers and the scheduled work (the leadership is over)."""


@dataclass(frozen=True, slots=True)
class _Touched:
    contacts: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    committed: list[Committed] = field(default_factory=list)


def node_name(http_port: int) -> str:
    return f"{socket.gethostname()}:{http_port}"


class ClusterNode:
    """This node's part in a cluster (see the module docstring). Start with :meth:`start` once the
    node's own services run; :meth:`stop` gives the lease up so a standby takes over at once."""

    def __init__(
        self,
        *,
        database_url: str,
        link: NatsLink,
        bus: NatsBus,
        acd: AcdService,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        subjects: dict[str, str],
        node: str,
        http_url: str,
        commit_followers: tuple[Callable[[Committed], None], ...] = (),
    ) -> None:
        self.link = link
        self.bus = bus
        self.acd = acd
        self.sessions = sessions
        self.key = hashlib.sha256(b"frontoffice-cluster:" + secret).digest()
        self.subjects = subjects
        self.node = node
        self.http_url = http_url
        self.lease = LeaderLease(database_url, node)
        self.work: LeaderWork | None = None
        # Live statistics of a standby follow the leader's commits (the leader's own outlet feeds its).
        self.commit_followers = commit_followers
        self.mirror = EngineMirror()
        self.epoch: int | None = None  # this node's leadership, while it leads
        self.seq = 0
        self.forwarded = 0
        self.served = 0
        self.started_at = datetime.now(UTC)
        self._leading = False
        self._touched = _Touched()
        self._known_agents: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._serving: set[asyncio.Task[None]] = set()
        self._leader_subs: list[NatsSubscription] = []
        self._catching_up = False
        self._held: list[EngineState] = []
        self._became_leader = asyncio.Event()
        self._stopping = False
        acd.engine_listeners.append(self._engine_changed)

    # ------------------------------------------------------------------ life cycle
    @property
    def leading(self) -> bool:
        return self._leading

    def leads(self, epoch: int | None) -> bool:
        """Whether this node still holds the leadership ``epoch`` (a command's, taken when it began)."""
        return self._leading and epoch is not None and self.epoch == epoch

    @property
    def bus_connected(self) -> bool:
        return self.link.connected

    @property
    def ready(self) -> bool:
        """Whether this node can serve: on the bus, and leading or following a leader's state."""
        return self.link.connected and (self._leading or self.mirror.epoch > 0)

    @property
    def leader_epoch(self) -> int:
        """The epoch of the leadership this node last heard of (its own while it leads)."""
        return self.epoch if self.epoch is not None else self.mirror.epoch

    async def start(self, work: LeaderWork) -> None:
        self.work = work
        # From now on this node's ACD commands go to the leader, and its reads come from the mirror
        # (a container that is never started, as the one-shot commands build, routes as one node).
        await self.lease.join()  # refuses a database a single node serves
        self.acd.remote = self
        self.acd.mirror = self.mirror
        await self.link.connect()
        self.link.on_reconnected.append(self._reconnected)
        await self.bus.start()
        await self.link.subscribe(self.subjects["engine"], self._engine_state)
        await self._catch_up()
        self._tasks = [
            asyncio.create_task(self._leadership(), name="cluster-leadership"),
            asyncio.create_task(self._heartbeats(), name="cluster-heartbeats"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()  # a leadership ends in _lead's clean-up: lease given up, work stopped
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.lease.release()
        with contextlib.suppress(Exception):
            await self._heartbeat("stopped")
        await self.link.close()

    async def _leadership(self) -> None:
        await hold_when_free(self.lease, self._lead)

    async def _lead(self, epoch: int) -> None:
        """Route until the lease is lost (or this node stops), then step down."""
        assert self.work is not None
        log.warning("this node leads", extra={"epoch": epoch, "node": self.node})
        self.epoch, self.seq = epoch, 0
        self.acd.fence = Fence(epoch)
        # Reads stay on the mirror until the rebuild from the store has filled the engine (the
        # rebuild drops the mirror): an agent's status must not answer 404 in between.
        self._touched = _Touched()
        self._leading = True
        self._became_leader.set()
        try:
            await self.work.start_routing()  # the rebuild publishes a full state (engine_listeners)
            self._leader_subs = [
                await self.link.subscribe(self.subjects["commands"], self._command),
                await self.link.subscribe(self.subjects["snapshot"], self._snapshot_asked),
            ]
            async with self.acd.lock:  # standbys that missed the rebuild's state get one now
                self._engine_changed(True)
            with contextlib.suppress(Exception):
                await self._heartbeat("leader")
            await self.lease.wait_lost()
        except LeaseLost:
            log.warning("the leadership was over before it began", extra={"epoch": epoch})
        finally:
            self._stop_routing_now()  # commands sent from now on go to the next leader
            await self.lease.release()  # free the lock at once (it may still be held): a standby leads
            await self._step_down()

    def lease_lost(self) -> None:
        """A fenced transaction found a newer epoch: stop routing now (the leadership task cleans up)."""
        if self._leading:
            self._stop_routing_now()
            self.lease.lose()

    def _stop_routing_now(self) -> None:
        if not self._leading:
            return
        self._leading = False
        self._became_leader.clear()
        self.acd.fence = None
        self.mirror = EngineMirror()
        self.acd.mirror = self.mirror

    async def _step_down(self) -> None:
        log.warning("this node no longer leads", extra={"epoch": self.epoch, "node": self.node})
        self.epoch = None
        for sub in self._leader_subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._leader_subs = []
        if self.work is not None:
            await self.work.stop_routing()
        self.acd.engine = r.RoutingEngine(self.acd.engine_config)  # nothing routes here any more
        if not self._stopping:
            with contextlib.suppress(Exception):
                await self._catch_up()

    async def _heartbeats(self) -> None:
        while True:
            try:
                epoch = await self._heartbeat("leader" if self._leading else "standby")
                if not self._leading and epoch > self.mirror.epoch:
                    await self._catch_up()  # a leadership this node has not heard from yet
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away; the lease says the rest
                log.warning("heartbeat failed", extra={"error": str(exc)})
            await asyncio.sleep(HEARTBEAT_S)

    async def _heartbeat(self, role: str) -> int:
        """Write this node's heartbeat row; returns the leadership's current epoch."""
        now = datetime.now(UTC)
        values = {
            "http_url": self.http_url,
            "version": __version__,
            "role": role,
            "epoch": self.epoch,
            "bus": "connected" if self.link.connected else "disconnected",
            "heartbeat_at": now,
        }
        stmt = insert(NodeRow).values(node=self.node, started_at=self.started_at, **values)
        async with self.sessions.begin() as s:
            await s.execute(stmt.on_conflict_do_update(index_elements=[NodeRow.node], set_=values))
            leader = await s.get(LeaderRow, 1)
        return 0 if leader is None else leader.epoch

    # ------------------------------------------------------------------ commands
    async def forward(self, command: AcdCommand[Any]) -> Any:
        """Run ``command`` on the leader and return its answer once committed there."""
        payload = seal(self.key, command)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FORWARD_WAIT_S
        while True:
            if self._leading:
                return await self.acd.execute(command)
            try:
                msg = await self.link.client.request(
                    self.subjects["commands"], payload, timeout=COMMAND_TIMEOUT_S
                )
            except NoRespondersError:
                if loop.time() > deadline:
                    raise _no_leader() from None
                # No leader yet (a fail-over): wait a little, or until this node becomes it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._became_leader.wait(), timeout=NO_LEADER_RETRY_S)
                continue
            except (NatsError, TimeoutError) as exc:
                # Sent, but no answer: the leader may or may not have committed it. Not acknowledged.
                log.warning("forwarded command unanswered", extra={"error": repr(exc)})
                raise _no_leader() from None
            self.forwarded += 1
            reply = unseal(self.key, msg.data)
            kind = reply[0]
            if kind == "ok":
                _, epoch, seq, result = reply
                await self._mirror_has(epoch, seq)
                return result
            if kind == "error":
                raise reply[1].exception()
            if kind == "integrity":
                raise IntegrityError("(on the leader)", None, Exception(reply[1]))
            if kind == "not-leader" and loop.time() < deadline:
                await asyncio.sleep(NO_LEADER_RETRY_S)
                continue
            if kind == "not-leader":
                raise _no_leader()
            raise RuntimeError(f"the leader failed the command: {reply[1]}")

    async def _command(self, msg: Msg) -> None:
        # One task per command, so that commands of several nodes share the group commit's batches.
        task = asyncio.create_task(self._serve(msg))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, msg: Msg) -> None:
        try:
            command = unseal(self.key, msg.data)
        except Exception as exc:  # not ours, or damaged: never run it
            log.warning("a command was refused", extra={"error": str(exc)})
            return
        reply: tuple[Any, ...]
        epoch = self.epoch  # the leadership that runs it (this node may step down before it answers)
        try:
            if not self._leading or epoch is None:
                raise LeaseLost("not the leader")
            result = await self.acd.execute_here(command)
            reply = ("ok", epoch, self.seq, result)
        except LeaseLost:
            self.lease_lost()
            reply = ("not-leader",)
        except DomainError as exc:
            # A refusal met after this leadership ended may come from the step-down (the engine is
            # emptied, so a queue is "not found"): the command committed nothing, the next leader
            # runs it (the sender asks again). While this node still leads, the refusal stands.
            reply = ("error", RemoteError.of(exc)) if self.leads(epoch) else ("not-leader",)
        except IntegrityError as exc:
            # Two requests with one key met at a unique key: the caller looks the first one up.
            reply = ("integrity", str(exc.orig)[:500])
        except Exception as exc:
            log.exception("a forwarded command failed")
            reply = ("failed", repr(exc)[:500])
        self.served += 1
        try:
            data = seal(self.key, reply)
        except Exception as exc:  # an answer that cannot travel
            log.exception("a command's answer could not be sent")
            data = seal(self.key, ("failed", repr(exc)[:500]))
        if msg.reply:
            # In order after the engine states published before it: the standby's mirror has the
            # command's changes when the answer arrives (it waits for them anyway).
            self.link.publish_soon(msg.reply, data)

    # ------------------------------------------------------------------ the engine's state
    def committed(self, committed: Committed) -> None:
        """Subscriber of committed events: what the leader's batch touched, for its next state."""
        if not self._leading or not (committed.outputs or committed.interaction_events):
            return
        touched = self._touched
        touched.committed.append(committed)
        for o in committed.outputs:
            contact = getattr(o, "contact_id", None)
            if contact is not None:
                touched.contacts.add(contact)
            agent = getattr(o, "agent_id", None)
            if agent is not None:
                touched.agents.add(agent)
            touched.agents.update(getattr(o, "agent_ids", ()) or ())
            for name in ("queue_id", "to_queue", "from_queue"):
                queue = getattr(o, name, None)
                if isinstance(queue, str):
                    touched.queues.add(queue)

    def _engine_changed(self, full: bool) -> None:
        if not self._leading or self.epoch is None:
            return
        touched, self._touched = self._touched, _Touched()
        self.seq += 1
        state = self._state(full, touched)
        self.link.publish_soon(self.subjects["engine"], seal(self.key, state))

    def _state(self, full: bool, touched: _Touched) -> EngineState:
        assert self.epoch is not None
        engine, now = self.acd.engine, self.acd.now()
        agent_ids = engine.agent_ids()
        known = set(agent_ids)
        agents_named = known if full else (touched.agents & known) | (known - self._known_agents)
        self._known_agents = known
        contacts: dict[str, r.ContactStatus | None] = {}
        for contact_id in engine.contact_ids() if full else touched.contacts:
            try:
                status = engine.contact_status(contact_id)
            except r.UnknownContact:
                contacts[contact_id] = None
                continue
            contacts[contact_id] = status
            touched.queues.add(status.queue_id)
        queues = {}
        for queue_id in engine.queue_ids():
            waiting: tuple[str, ...] | None = None
            per_place = None
            if full or queue_id in touched.queues:
                waiting = engine.waiting_contacts(queue_id)
                if waiting:
                    expected = engine.expected_wait(waiting[0], now)
                    position = engine.position(waiting[0])
                    per_place = None if expected is None or not position else expected / position
            queues[queue_id] = QueueView(
                engine.queue_status(queue_id, now), engine.turn_away_reason(queue_id), waiting, per_place
            )
        return EngineState(
            epoch=self.epoch,
            seq=self.seq,
            full=full,
            at=now,
            queue_ids=engine.queue_ids(),
            agent_ids=agent_ids,
            agents={a: engine.agent_status(a) for a in agents_named},
            contacts=contacts,
            queues=queues,
            queue_info=dict(self.acd.queue_info),
            engine_config=self.acd.engine_config,
            committed=() if full else tuple(touched.committed),
        )

    async def _engine_state(self, msg: Msg) -> None:
        if self._leading:
            return
        try:
            state: EngineState = unseal(self.key, msg.data)
        except Exception as exc:
            log.warning("an engine state was refused", extra={"error": str(exc)})
            return
        if self._catching_up:
            self._held.append(state)
            return
        if self.mirror.has(state.epoch, state.seq):
            return  # already in the mirror (a snapshot had it), or an older leadership's
        if not self.mirror.follows(state):
            await self._catch_up()  # a gap: missed states, or a new leader's first ones
            return
        self._apply(state)

    def _apply(self, state: EngineState) -> None:
        self.mirror.apply(state)
        self.acd.queue_info = dict(state.queue_info)
        self.acd.engine_config = state.engine_config
        for committed in state.committed:
            for follower in (*self.commit_followers, *self.acd.follower_listeners):
                try:
                    follower(committed)
                except Exception:
                    log.exception("a follower of the leader's commits failed")

    async def _catch_up(self) -> None:
        """Ask the leader for its whole state (a node that was cut off, or a new leader)."""
        if self._catching_up or self._leading:
            return
        self._catching_up = True
        try:
            try:
                msg = await self.link.client.request(
                    self.subjects["snapshot"], b"", timeout=SNAPSHOT_TIMEOUT_S
                )
                state: EngineState = unseal(self.key, msg.data)
            except (NatsError, TimeoutError, ValueError) as exc:
                log.info("no engine snapshot from a leader yet", extra={"error": repr(exc)})
                return
            if not self._leading and (state.epoch, state.seq) >= (self.mirror.epoch, self.mirror.seq):
                self._apply(state)
        finally:
            self._catching_up = False
            held, self._held = self._held, []
            for later in held:
                if self._leading:
                    break
                if self.mirror.follows(later) and not self.mirror.has(later.epoch, later.seq):
                    self._apply(later)

    async def _snapshot_asked(self, msg: Msg) -> None:
        if not self._leading or self.epoch is None:
            return
        async with self.acd.lock:  # between batches: the snapshot is of committed state
            state = self._state(True, _Touched())
        if msg.reply:
            self.link.publish_soon(msg.reply, seal(self.key, state))

    async def _mirror_has(self, epoch: int, seq: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MIRROR_WAIT_S
        while not self._leading and not self.mirror.has(epoch, seq):
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._catch_up()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.mirror.changed.wait(), timeout=remaining)

    async def _reconnected(self) -> None:
        await self._catch_up()


def _no_leader() -> Unavailable:
    return Unavailable(
        "No routing node answered; try again in a moment",
        error_id="leader-unavailable",
    )
