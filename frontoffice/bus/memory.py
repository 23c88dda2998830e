"""The in-process bus: fan-out of committed events to subscribers on this node.

Messages are published only after the change they describe is committed, so a listener never sees
something that a crash could undo. A slow subscriber does not slow the publisher: its queue is bounded
and, when full, the subscriber is marked ``overflowed`` and should resynchronise (re-read a snapshot).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BusMessage", "InProcessBus", "Subscription"]

# Per-subscriber backlog. A wallboard receives a few messages per contact; 1,000 covers bursts of
# hundreds of contacts while bounding memory for a stuck browser tab.
SUBSCRIBER_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One event. ``audience`` says who may see it: ``agent:<id>``, ``supervisors``, ``all``;
    ``project_id`` lets project-scoped viewers filter."""

    type: str
    data: dict[str, Any]
    audience: tuple[str, ...] = ("supervisors",)
    project_id: int | None = None
    _json: list[str] = field(default_factory=list, compare=False, repr=False)

    def json(self) -> str:
        """The message as the WebSocket sends it, serialised once for all its recipients."""
        if not self._json:
            self._json.append(json.dumps({"type": self.type, "data": self.data}, default=str))
        return self._json[0]


@dataclass(eq=False)
class Subscription:
    """A listener's inbox. ``keys`` are the audiences it belongs to (``agent:7``, ``supervisors``);
    a message reaches it when its audience names one of them or is ``all`` (without ``keys``: every
    message). ``accepts`` filters further at publication. So a listener is only woken for messages it
    will use, and publishing costs the number of recipients, not the number of connected sockets."""

    accepts: Callable[[BusMessage], bool] | None = None
    keys: frozenset[str] | None = None
    queue: asyncio.Queue[BusMessage] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE_SIZE))
    overflowed: bool = False


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._everything: set[Subscription] = set()  # subscribed without keys
        self._by_key: dict[str, set[Subscription]] = {}

    def subscribe(
        self, accepts: Callable[[BusMessage], bool] | None = None, keys: Iterable[str] | None = None
    ) -> Subscription:
        sub = Subscription(accepts, None if keys is None else frozenset(keys))
        self._subscribers.add(sub)
        if sub.keys is None:
            self._everything.add(sub)
        else:
            for key in sub.keys:
                self._by_key.setdefault(key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        self._everything.discard(sub)
        for key in sub.keys or ():
            subs = self._by_key.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_key[key]

    def _recipients(self, audience: tuple[str, ...]) -> Iterable[Subscription]:
        if "all" in audience:
            return self._subscribers
        if len(audience) == 1:
            keyed = self._by_key.get(audience[0], ())
            return (*self._everything, *keyed) if self._everything else keyed
        found = set(self._everything)
        for key in audience:
            found.update(self._by_key.get(key, ()))
        return found

    def publish(self, message: BusMessage) -> None:
        for sub in tuple(self._recipients(message.audience)):
            if sub.accepts is not None and not sub.accepts(message):
                continue
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                sub.overflowed = True

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
