"""The in-process bus: fan-out of committed events to subscribers on this node.

Messages are published only after the change they describe is committed, so a listener never sees
something that a crash could undo. A slow subscriber does not slow the publisher: its queue is bounded
and, when full, the subscriber is marked ``overflowed`` and should resynchronise (re-read a snapshot).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


@dataclass(eq=False)
class Subscription:
    """A listener's inbox. ``accepts`` filters at publication, so a listener is only woken for
    messages it will use (an agent's socket does not wake for every other agent's offers)."""

    accepts: Callable[[BusMessage], bool] | None = None
    queue: asyncio.Queue[BusMessage] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE_SIZE))
    overflowed: bool = False


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self, accepts: Callable[[BusMessage], bool] | None = None) -> Subscription:
        sub = Subscription(accepts)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def publish(self, message: BusMessage) -> None:
        for sub in self._subscribers:
            if sub.accepts is not None and not sub.accepts(message):
                continue
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                sub.overflowed = True

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
