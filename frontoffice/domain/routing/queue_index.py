"""Per-queue indexes: ordered lines of waiting contacts and pools of ready agents.

Lines are kept sorted with :mod:`bisect` rather than as heaps. Both cost O(log n) comparisons per
insert; the sorted list adds a memmove that is a few microseconds even at 10^5 entries, and in return
gives exact removal (no tombstones), the in-order walk needed to skip a contact the agent just declined,
and a contact's position in O(log n).

A queue has one line per (channel, escalation step) so an agent only looks at the channels it has room
for and the steps it is qualified for: the head of each such line is the best candidate, and a decision
looks at a handful of heads instead of every waiting contact.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Mapping

from .config import QueueConfig
from .model import AgentRuntime, IdleEntry, LineEntry, idle_entry

# A lazily cleaned heap should not grow without bound when contacts bounce between waiting and offered:
# rebuild it once stale entries outnumber live ones by this factor (plus a small floor).
_AGE_HEAP_SLACK = 2
_AGE_HEAP_FLOOR = 64

# The same bound for the per-pool idle heaps (see ``QueueRuntime.idle``).
_IDLE_HEAP_SLACK = 2
_IDLE_HEAP_FLOOR = 16

# Smoothing of the expected-wait estimator: weight of the newest interval between two connections.
_EWMA_ALPHA = 0.2


class QueueRuntime:
    """Live state of one queue: its configuration, lines, ready-agent pools and a few counters."""

    __slots__ = (
        "_age_heap",
        "_agents",
        "config",
        "idle",
        "interval_ewma",
        "last_connect_at",
        "lines",
        "open",
        "ready",
        "rr_last",
        "span",
        "waiting",
    )

    def __init__(self, config: QueueConfig, agents: Mapping[str, AgentRuntime]) -> None:
        self.config = config
        #: the engine's agents (read-only here: to tell current idle-heap entries from stale ones).
        self._agents = agents
        self.open = config.open
        #: (channel, step) -> sorted entries; includes contacts borrowed from other queues at step 0.
        self.lines: dict[tuple[str, int], list[LineEntry]] = {}
        #: contacts whose home is this queue and that are not yet connected (waiting or ringing).
        self.waiting: dict[str, None] = {}
        self._age_heap: list[tuple[float, int, str]] = []
        #: channel -> tier -> ready agents (insertion-ordered dicts keep iteration deterministic).
        self.ready: dict[str, dict[int, dict[str, None]]] = {}
        #: (channel, tier) -> heap of IdleEntry for the agents of that ready pool, so longest_idle
        #: finds its agent without scanning the pool. Lazily cleaned: an entry counts only while its
        #: agent is in the pool *and* the agent's key still equals the entry's; the engine pushes a new
        #: entry whenever the key of an agent in a pool changes (``RoutingEngine._refresh_idle``), so
        #: every pooled agent always has an entry with its current key. Dropped with the pool.
        self.idle: dict[tuple[str, int], list[IdleEntry]] = {}
        #: agent seq of the last agent picked by round_robin.
        self.rr_last = -1
        #: highest escalation step a line may hold: never shrinks, so contacts already escalated
        #: further than a later configuration allows are still found.
        self.span = len(config.escalations)
        self.interval_ewma: float | None = None
        self.last_connect_at: float | None = None

    # --- lines ---------------------------------------------------------------------------------

    def line(self, channel: str, step: int) -> list[LineEntry]:
        """The (channel, step) line, created empty if needed. Lines are never replaced or dropped, so
        agents and contacts may hold references to them."""
        line = self.lines.get((channel, step))
        if line is None:
            line = self.lines[(channel, step)] = []
        return line

    def position(self, entry: LineEntry) -> int:
        """How many waiting entries of all this queue's lines sort before ``entry``."""
        return sum(bisect_left(line, entry) for line in self.lines.values())

    def has_entries(self) -> bool:
        """Whether any line holds an entry."""
        return any(self.lines.values())

    # --- waiting set and longest wait ------------------------------------------------------------

    def add_waiting(self, contact_id: str, enqueued_at: float, seq: int) -> None:
        """Count the contact as waiting here."""
        self.waiting[contact_id] = None
        heapq.heappush(self._age_heap, (enqueued_at, seq, contact_id))
        if len(self._age_heap) > _AGE_HEAP_SLACK * len(self.waiting) + _AGE_HEAP_FLOOR:
            # Stale entries pile up deep in the heap; rebuild from what is still waiting.
            self._age_heap = [item for item in self._age_heap if item[2] in self.waiting]
            heapq.heapify(self._age_heap)

    def discard_waiting(self, contact_id: str) -> None:
        """Stop counting the contact as waiting here (its age-heap entry is dropped lazily)."""
        self.waiting.pop(contact_id, None)

    def oldest_enqueued_at(self) -> float | None:
        """``enqueued_at`` of the longest-waiting contact, or None when nobody waits."""
        heap = self._age_heap
        while heap and heap[0][2] not in self.waiting:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # --- ready pools -----------------------------------------------------------------------------

    def add_ready(self, channel: str, tier: int, agent: AgentRuntime) -> None:
        """Put the agent into the pool of agents ready for ``channel`` at ``tier``."""
        agent_id = agent.agent_id
        tiers = self.ready.get(channel)
        if tiers is None:
            tiers = self.ready[channel] = {}
        pool = tiers.get(tier)
        if pool is None:
            # Keep tiers sorted by inserting in order: decisions iterate them lowest first.
            tiers[tier] = {agent_id: None}
            self.idle[(channel, tier)] = [idle_entry(agent)]
            if len(tiers) > 1 and tier < max(tiers):
                self.ready[channel] = dict(sorted(tiers.items()))
        else:
            pool[agent_id] = None
            self.push_idle(channel, tier, agent)

    def push_idle(self, channel: str, tier: int, agent: AgentRuntime) -> None:
        """Record the idle key a pooled agent has now (its older entries go stale: dropped lazily)."""
        heap = self.idle[(channel, tier)]
        heapq.heappush(heap, idle_entry(agent))
        pool = self.ready[channel][tier]
        if len(heap) > _IDLE_HEAP_SLACK * len(pool) + _IDLE_HEAP_FLOOR:
            # Stale entries pile up (agents leave the pool when offered): keep only current ones.
            agents = self._agents
            fresh = list({item for item in heap if item[3] in pool and item == idle_entry(agents[item[3]])})
            heapq.heapify(fresh)
            self.idle[(channel, tier)] = fresh

    def discard_ready(self, channel: str, tier: int, agent_id: str) -> None:
        """Take the agent out of that pool."""
        tiers = self.ready.get(channel)
        if tiers is not None:
            pool = tiers.get(tier)
            if pool is not None:
                pool.pop(agent_id, None)
                # Drop empty pools so that a contact arriving when nobody is ready finds no pools
                # to look at: the common case under load.
                if not pool:
                    del tiers[tier]
                    del self.idle[(channel, tier)]
                    if not tiers:
                        del self.ready[channel]

    # --- expected wait -------------------------------------------------------------------------

    def record_connect(self, now: float) -> None:
        """Feed the expected-wait estimator with the time between connections."""
        if self.last_connect_at is not None:
            interval = max(0.0, now - self.last_connect_at)
            if self.interval_ewma is None:
                self.interval_ewma = interval
            else:
                self.interval_ewma += _EWMA_ALPHA * (interval - self.interval_ewma)
        self.last_connect_at = now
