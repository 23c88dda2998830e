"""The NATS bus: committed events of every node reach every node's listeners (several nodes).

A node's :class:`NatsBus` is its in-process bus (:mod:`frontoffice.bus.memory`) plus NATS: a message
published on a node goes to that node's own sockets at once and to the cluster's events subject; each
node hands what the others published to its own subscribers. Messages are published after their
commit (as on one node), so they describe committed facts; they are *live notifications*, not the
record. Core NATS (at most once) is enough for them: the store is the record, and a node whose NATS
connection dropped marks every subscriber ``overflowed`` when it reconnects, so each socket re-reads a
snapshot from the store (web/stream.py closes it with "too slow"; the desk reconnects and gets a
fresh ``hello``). JetStream would replay events a socket's snapshot already contains.

:class:`NatsLink` is the node's one NATS connection, shared with the cluster's commands
(services/cluster.py). Its outgoing messages leave in the order they were published.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from .memory import BusMessage, InProcessBus

__all__ = ["NatsBus", "NatsLink"]

log = logging.getLogger("frontoffice.bus.nats")

# Between two attempts to reach a NATS server that went away (nats-py tries the servers in turn).
RECONNECT_WAIT_S = 0.5
# Outgoing messages kept while NATS is unreachable; beyond it, live events are dropped (the sockets
# resynchronise from the store on reconnection) rather than growing memory without bound.
PENDING_BYTES = 8 * 1024 * 1024
# The first connection must succeed within this, or the node does not start (systemd restarts it).
CONNECT_TIMEOUT_S = 5.0


class NatsLink:
    """One node's connection to NATS: publishing in order, subscriptions, requests."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.client: Client = Client()
        self._outgoing: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self.on_reconnected: list[Callable[[], Awaitable[None]]] = []
        self.reconnects = 0
        self.dropped = 0

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    async def connect(self) -> None:
        self.client = await nats.connect(
            servers=[u.strip() for u in self.url.split(",") if u.strip()],
            name=self.name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            connect_timeout=CONNECT_TIMEOUT_S,
            pending_size=PENDING_BYTES,
            reconnected_cb=self._reconnected,
            disconnected_cb=self._disconnected,
            error_cb=self._error,
        )
        self._pump = asyncio.create_task(self._send_in_order(), name="nats-outgoing")

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if not self.client.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.drain(), timeout=2)
            with contextlib.suppress(Exception):
                await self.client.close()

    def publish_soon(self, subject: str, data: bytes) -> None:
        """Queue ``data`` for ``subject``; messages leave in the order they were queued."""
        self._outgoing.put_nowait((subject, data))

    async def subscribe(self, subject: str, handler: Callable[[Msg], Awaitable[None]]) -> NatsSubscription:
        return await self.client.subscribe(subject, cb=handler)

    async def _send_in_order(self) -> None:
        while True:
            subject, data = await self._outgoing.get()
            try:
                await self.client.publish(subject, data)
            except Exception as exc:  # buffer full or closed: a live event is lost
                self.dropped += 1
                log.warning("NATS publish dropped", extra={"subject": subject, "error": str(exc)})

    async def _reconnected(self) -> None:
        self.reconnects += 1
        log.warning("NATS connection restored", extra={"server": str(self.client.connected_url)})
        for listener in self.on_reconnected:
            await listener()

    async def _disconnected(self) -> None:
        log.warning("NATS connection lost")

    async def _error(self, exc: Exception) -> None:
        log.warning("NATS error", extra={"error": str(exc)})


class NatsBus(InProcessBus):
    """This node's bus, joined to the others' over NATS (see the module docstring)."""

    def __init__(self, link: NatsLink, subject: str, node: str) -> None:
        super().__init__()
        self.link = link
        self.subject = subject
        self.node = node
        self._subscription: NatsSubscription | None = None
        link.on_reconnected.append(self._resynchronise)

    async def start(self) -> None:
        self._subscription = await self.link.subscribe(self.subject, self._received)

    def publish(self, message: BusMessage) -> None:
        super().publish(message)  # this node's sockets, at once
        body = {
            "n": self.node,
            "t": message.type,
            "d": message.data,
            "a": list(message.audience),
            "p": message.project_id,
        }
        self.link.publish_soon(self.subject, json.dumps(body, default=str).encode())

    async def _received(self, msg: Msg) -> None:
        try:
            body: dict[str, Any] = json.loads(msg.data)
            if body.get("n") == self.node:
                return  # our own, already delivered
            message = BusMessage(
                type=str(body["t"]),
                data=dict(body["d"]),
                audience=tuple(str(a) for a in body["a"]),
                project_id=body.get("p"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("malformed bus message dropped", extra={"error": str(exc)})
            return
        super().publish(message)

    async def _resynchronise(self) -> None:
        """Events may have been missed while NATS was away: every listener re-reads its snapshot."""
        notice = BusMessage(type="resynchronise", data={}, audience=("all",))
        for sub in tuple(self._subscribers):
            sub.overflowed = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(notice)
