"""Helpers shared by the routing engine tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from frontoffice.domain.routing import (
    AgentConfig,
    Contact,
    EngineConfig,
    Output,
    QueueConfig,
    RoutingEngine,
)

T = TypeVar("T")


def of_type(outputs: Iterable[Output], kind: type[T]) -> list[T]:
    """The outputs of one type, in order."""
    return [o for o in outputs if isinstance(o, kind)]


def make_engine(
    queues: Iterable[QueueConfig] = (QueueConfig("q"),),
    agents: Iterable[AgentConfig] = (),
    config: EngineConfig | None = None,
    login: bool = True,
    now: float = 0.0,
) -> RoutingEngine:
    """An engine with these queues and agents, the agents logged in available (in the given order)."""
    engine = RoutingEngine(config)
    for queue in queues:
        engine.upsert_queue(queue)
    agent_list = list(agents)
    for agent in agent_list:
        engine.upsert_agent(agent)
    if login:
        for agent in agent_list:
            engine.agent_login(agent.agent_id, now)
    return engine


def voice(contact_id: str, queue_id: str = "q", priority: int = 0, **kwargs: object) -> Contact:
    """A voice contact."""
    return Contact(contact_id, "voice", queue_id, priority, **kwargs)  # type: ignore[arg-type]


def agent(agent_id: str, queues: dict[str, int] | None = None, **kwargs: object) -> AgentConfig:
    """An agent in queue "q" tier 1 by default."""
    return AgentConfig(agent_id, queues=queues if queues is not None else {"q": 1}, **kwargs)  # type: ignore[arg-type]
