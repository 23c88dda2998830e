"""Committed events leave from one place: :class:`CommitOutlet`.

A transaction collects what it did as it goes: rows of the append-only logs
(:func:`frontoffice.store.append_log.append_row`) and the routing engine's outputs
(:func:`frontoffice.store.append_log.collect`). When the transaction commits — not when a savepoint
is released, and never after a rollback — the outlet of its session class hands one
:class:`Committed` to every subscriber, in the order they subscribed. ``bootstrap.py`` subscribes the
live statistics, the bus publication of ACD outputs (WebSocket stream), the voice channel and the
screen-pop lookup. A subscriber that raises is logged and the others still run. (Webhooks do not
subscribe here: a subscriber runs after the commit, and a crash in between would lose the events; they
are queued in the outbox inside the transaction instead, ``services/webhooks.py``.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from frontoffice.domain import routing as r

__all__ = ["CommitOutlet", "Committed"]

log = logging.getLogger("frontoffice.store.committed")


@dataclass(frozen=True, slots=True)
class Committed:
    """What one committed transaction did: engine outputs in order, and the log rows it wrote
    (interaction events, agent events) in the order they were appended."""

    outputs: Sequence[r.Output]
    interaction_events: Sequence[dict[str, Any]]
    agent_events: Sequence[dict[str, Any]]


class CommitOutlet:
    """The subscribers of one container's committed transactions."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Committed], None]] = []

    def subscribe(self, subscriber: Callable[[Committed], None]) -> None:
        """Call ``subscriber`` after every commit that wrote log rows or carried engine outputs."""
        self._subscribers.append(subscriber)

    def publish(self, committed: Committed) -> None:
        """Hand ``committed`` to every subscriber (called by the session's ``after_commit`` hook)."""
        for subscriber in self._subscribers:
            try:
                subscriber(committed)
            except Exception:
                log.exception("a subscriber of committed events failed")
