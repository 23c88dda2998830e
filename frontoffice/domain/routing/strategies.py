"""Agent selection strategies: which of the eligible ready agents gets the contact.

Each strategy receives the eligible agents of the lowest tier that has any (tiers are handled by the
engine) and returns the chosen ones: exactly one, except ring_all on voice which returns them all.
Ties are always broken by "longest idle" and then by the order agents were configured, so every
decision is deterministic; random_weighted draws from the engine's seeded RNG.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from .model import AgentRuntime
from .queue_index import QueueRuntime

Selector = Callable[[Sequence[AgentRuntime], QueueRuntime, str, float, random.Random], AgentRuntime]


def _idle_key(agent: AgentRuntime) -> tuple[int, float, int]:
    # Longest idle: the least loaded agent first (matters for multi-chat agents), then the one free
    # the longest, then configuration order.
    return (agent.load_total, agent.idle_since, agent.seq)


def longest_idle(
    agents: Sequence[AgentRuntime], queue: QueueRuntime, queue_id: str, now: float, rng: random.Random
) -> AgentRuntime:
    """The agent idle the longest (fewest current contacts, then earliest ``idle_since``)."""
    return min(agents, key=_idle_key)


def round_robin(
    agents: Sequence[AgentRuntime], queue: QueueRuntime, queue_id: str, now: float, rng: random.Random
) -> AgentRuntime:
    """The next agent after the one picked last time in this queue, in configuration order."""
    last = queue.rr_last
    chosen = min(agents, key=lambda a: (a.seq <= last, a.seq))
    queue.rr_last = chosen.seq
    return chosen


def fewest_contacts(
    agents: Sequence[AgentRuntime], queue: QueueRuntime, queue_id: str, now: float, rng: random.Random
) -> AgentRuntime:
    """The agent who connected the fewest contacts since the last daily reset."""
    return min(agents, key=lambda a: (a.contacts_today, *_idle_key(a)))


def least_occupied(
    agents: Sequence[AgentRuntime], queue: QueueRuntime, queue_id: str, now: float, rng: random.Random
) -> AgentRuntime:
    """The agent with the lowest occupancy (busy time / logged-in time) since the last daily reset."""
    return min(agents, key=lambda a: (a.occupancy(now), *_idle_key(a)))


def best_skill(
    agents: Sequence[AgentRuntime], queue: QueueRuntime, queue_id: str, now: float, rng: random.Random
) -> AgentRuntime:
    """The agent with the highest levels in the queue's required skills."""
    return min(agents, key=lambda a: (-a.skill_score.get(queue_id, 0), *_idle_key(a)))


def random_weighted(
    agents: Sequence[AgentRuntime], queue: QueueRuntime, queue_id: str, now: float, rng: random.Random
) -> AgentRuntime:
    """A random agent, chance proportional to ``AgentConfig.weight``, drawn from the seeded RNG."""
    # Sort first: the pool's order depends on history, the draw must depend only on the RNG state.
    ordered = sorted(agents, key=lambda a: a.seq)
    total = sum(a.weight for a in ordered)
    point = rng.random() * total
    for agent in ordered:
        point -= agent.weight
        if point < 0:
            return agent
    return ordered[-1]


SELECTORS: dict[str, Selector] = {
    "longest_idle": longest_idle,
    "round_robin": round_robin,
    "fewest_contacts": fewest_contacts,
    "least_occupied": least_occupied,
    "best_skill": best_skill,
    "random_weighted": random_weighted,
    # ring_all offers to everyone on voice (the engine handles that); on other channels a group offer
    # makes no sense (a chat cannot "ring"), so it behaves as longest_idle.
    "ring_all": longest_idle,
}


def select(
    strategy: str,
    agents: Sequence[AgentRuntime],
    queue: QueueRuntime,
    queue_id: str,
    channel: str,
    now: float,
    rng: random.Random,
) -> list[AgentRuntime]:
    """Choose the agent(s) to offer a contact to; ``agents`` is non-empty."""
    if strategy == "ring_all" and channel == "voice":
        return sorted(agents, key=_idle_key)
    return [SELECTORS[strategy](agents, queue, queue_id, now, rng)]
