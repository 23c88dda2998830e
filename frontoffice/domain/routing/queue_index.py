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

# Smoothing of the expected-wait estimator (``interval_ewma``, fed by the engine at each connection):
# weight of the newest interval between two connections.
EWMA_ALPHA = 0.2


class ReadyPool:
    """The ready agents of one (queue, channel, tier), with the heap of their longest-idle keys.

    ``idle`` holds IdleEntry items so longest_idle finds its agent without scanning ``agents``. It is
    lazily cleaned: an entry counts only while its agent is in the pool *and* the agent's key still
    equals the entry's; the engine pushes a new entry whenever the key of a pooled agent changes
    (``RoutingEngine._refresh_idle``), so every pooled agent always has an entry with its current key.
    """

    __slots__ = ("agents", "idle")

    def __init__(self, agent: AgentRuntime) -> None:
        #: the ready agents (an insertion-ordered dict keeps iteration deterministic).
        self.agents: dict[str, None] = {agent.agent_id: None}
        self.idle: list[IdleEntry] = [idle_entry(agent)]


class QueueRuntime:
    """Live state of one queue: its configuration, lines, ready-agent pools and a few counters."""

    __slots__ = (
        "_age_heap",
        "_agents",
        "config",
        "gate",
        "interval_ewma",
        "last_connect_at",
        "lines",
        "open",
        "ready",
        "rr_last",
        "span",
        "sticky",
        "timed",
        "waiting",
    )

    def __init__(self, config: QueueConfig, agents: Mapping[str, AgentRuntime]) -> None:
        #: the engine's agents (read-only here: to tell current idle-heap entries from stale ones).
        self._agents = agents
        self.open = config.open
        #: (channel, step) -> sorted entries; includes contacts borrowed from other queues at step 0.
        self.lines: dict[tuple[str, int], list[LineEntry]] = {}
        #: contacts whose home is this queue and that are not yet connected (waiting or ringing), with
        #: their enqueued_at.
        self.waiting: dict[str, float] = {}
        #: (enqueued_at, contact_id) of waiting contacts, for the longest wait; None until first asked.
        self._age_heap: list[tuple[float, str]] | None = None
        #: channel -> tier -> pool of ready agents, tiers in ascending order. A pool exists only while
        #: it has agents, so a contact arriving when nobody is ready finds no pools to look at.
        self.ready: dict[str, dict[int, ReadyPool]] = {}
        #: agent seq of the last agent picked by round_robin.
        self.rr_last = -1
        #: highest escalation step a line may hold: never shrinks, so contacts already escalated
        #: further than a later configuration allows are still found.
        self.span = len(config.escalations)
        #: expected-wait estimator: smoothed time between two connections, and the last connection.
        self.interval_ewma: float | None = None
        self.last_connect_at: float | None = None
        self.configure(config)

    def configure(self, config: QueueConfig) -> None:
        """Take a (new) configuration; waiting contacts and pools stay."""
        self.config = config
        self.span = max(self.span, len(config.escalations))
        #: an arrival needs timers (maximum wait, escalation) / may be reserved for an agent (sticky).
        self.timed = config.max_wait_s is not None or bool(config.escalations)
        self.sticky = config.sticky_s > 0
        self._set_gate()

    def set_open(self, open: bool) -> None:
        """Open or close the queue."""
        self.open = open
        self._set_gate()

    def _set_gate(self) -> None:
        config = self.config
        #: an arrival must pass the queue's rules (closed, no agents, maximum length) before it joins:
        #: False for the usual open queue without limits, so arrivals skip the checks.
        self.gate = (
            (not self.open and config.closed_action != "join")
            or config.no_agents_action != "join"
            or config.max_length is not None
        )

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

    def add_waiting(self, contact_id: str, enqueued_at: float) -> None:
        """Count the contact as waiting here."""
        self.waiting[contact_id] = enqueued_at
        heap = self._age_heap
        if heap is not None:
            heapq.heappush(heap, (enqueued_at, contact_id))
            if len(heap) > _AGE_HEAP_SLACK * len(self.waiting) + _AGE_HEAP_FLOOR:
                # Stale entries pile up deep in the heap; rebuild from what is still waiting.
                self._age_heap = self._live_ages()

    def discard_waiting(self, contact_id: str) -> None:
        """Stop counting the contact as waiting here (its age-heap entry is dropped lazily)."""
        self.waiting.pop(contact_id, None)

    def oldest_enqueued_at(self) -> float | None:
        """``enqueued_at`` of the longest-waiting contact, or None when nobody waits."""
        heap = self._age_heap
        if heap is None:
            # Nobody asked before: the heap is built now and kept from then on, so a caller that
            # never asks (a simulation) never pays for it.
            heap = self._age_heap = self._live_ages()
        waiting = self.waiting
        # An entry is stale once its contact left, or came back with another enqueued_at (a
        # connected contact transferred back into the queue queues anew).
        while heap and waiting.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _live_ages(self) -> list[tuple[float, str]]:
        heap = [(at, contact_id) for contact_id, at in self.waiting.items()]
        heapq.heapify(heap)
        return heap

    # --- ready pools -----------------------------------------------------------------------------

    def add_ready(self, channel: str, tier: int, agent: AgentRuntime) -> None:
        """Put the agent into the pool of agents ready for ``channel`` at ``tier``."""
        tiers = self.ready.get(channel)
        if tiers is None:
            self.ready[channel] = {tier: ReadyPool(agent)}
            return
        pool = tiers.get(tier)
        if pool is None:
            tiers[tier] = ReadyPool(agent)
            # Keep tiers sorted by inserting in order: decisions iterate them lowest first.
            if tier < max(tiers):
                self.ready[channel] = dict(sorted(tiers.items()))
        else:
            members = pool.agents
            members[agent.agent_id] = None
            # push_idle(), inlined: an agent joins a pool on most contacts under light load.
            heap = pool.idle
            heapq.heappush(heap, (agent.load_total, agent.idle_since, agent.seq, agent.agent_id))
            if len(heap) > _IDLE_HEAP_SLACK * len(members) + _IDLE_HEAP_FLOOR:
                self._compact_idle(pool)

    def push_idle(self, channel: str, tier: int, agent: AgentRuntime) -> None:
        """Record the idle key a pooled agent has now (its older entries go stale: dropped lazily)."""
        pool = self.ready[channel][tier]
        heap = pool.idle
        heapq.heappush(heap, idle_entry(agent))
        if len(heap) > _IDLE_HEAP_SLACK * len(pool.agents) + _IDLE_HEAP_FLOOR:
            self._compact_idle(pool)

    def _compact_idle(self, pool: ReadyPool) -> None:
        """Stale entries pile up (agents leave the pool when offered): keep only current ones."""
        members = pool.agents
        agents = self._agents
        fresh = list(
            {item for item in pool.idle if item[3] in members and item == idle_entry(agents[item[3]])}
        )
        heapq.heapify(fresh)
        pool.idle = fresh

    def discard_ready(self, channel: str, tier: int, agent_id: str) -> None:
        """Take the agent out of that pool."""
        tiers = self.ready.get(channel)
        if tiers is not None:
            pool = tiers.get(tier)
            if pool is not None:
                members = pool.agents
                members.pop(agent_id, None)
                # Drop empty pools so that a contact arriving when nobody is ready finds no pools
                # to look at: the common case under load.
                if not members:
                    del tiers[tier]
                    if not tiers:
                        del self.ready[channel]
