"""ACD commands: small typed objects, each run by one handler (the message-bus shape of "Architecture
Patterns with Python").

A caller builds a command and hands it to :meth:`AcdService.execute`, which runs it durably (group
commit, see :mod:`frontoffice.services.acd`) and returns what the command's handler answers::

    outputs = await acd.execute(AcceptOffer(contact_id="42", agent_id="7"))

Commands that only drive the engine (this module) answer the engine's outputs; their handler is a
function of the engine, the command and ``now`` (:data:`ENGINE_HANDLERS`). Use cases that write before
the engine runs (a new interaction, an agent's choice of queues) define their command next to a
:class:`CommandHandler` class and register it with :meth:`AcdService.register`.

A handler runs in three steps inside the batch's transaction:

1. :meth:`CommandHandler.prepare` (only when ``prepares`` is true): reads and writes the command needs
   before the engine runs; it has a savepoint of its own in a shared batch, so a refusal rolls back
   only its writes — unless the handler says it needs none (``savepoint = False``: its checks come
   before its first write, see :class:`CommandHandler`);
2. :meth:`CommandHandler.decide`: the engine step (pure; a :class:`RoutingError` is a refusal);
3. :meth:`CommandHandler.finish`: after the outputs are written, the caller's answer (and writes that
   need the outputs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, TypeVar

from frontoffice.domain import routing as r
from frontoffice.domain.contact_log import RoutedContact
from frontoffice.store.unit_of_work import UnitOfWork

__all__ = [
    "ENGINE_HANDLERS",
    "AcceptOffer",
    "AcdCommand",
    "AgentLogin",
    "AgentLogout",
    "CommandHandler",
    "EngineCommand",
    "EngineHandler",
    "FinishContact",
    "OutputStep",
    "RejectOffer",
    "RequestCallback",
    "SetAgentState",
    "SetPriority",
    "SetQueueOpen",
    "Tick",
    "TransferToAgent",
    "TransferToQueue",
    "WithdrawContact",
]

R = TypeVar("R", covariant=True)
C = TypeVar("C", bound="AcdCommand[Any]")


class AcdCommand(Generic[R]):
    """Base of every ACD command; ``R`` is what its handler answers the caller."""

    __slots__ = ()


class EngineCommand(AcdCommand[list[r.Output]]):
    """A command that only drives the engine: it answers the outputs."""

    __slots__ = ()


class CommandHandler(ABC, Generic[C]):
    """Runs one command type (see the module docstring for the steps). Subclasses override
    :meth:`decide`, and :meth:`prepare` (setting ``prepares``) and :meth:`finish` when they need to."""

    # Whether the handler has a prepare step (a command without one needs no savepoint).
    prepares: ClassVar[bool] = False
    # Whether its prepare step needs a savepoint in a shared batch. ``False`` promises that the
    # prepare step refuses (raises a DomainError) only before its first write — its reads and checks
    # come first — and checks what the engine would refuse, so a refusal has written nothing and
    # needs nothing rolled back. Any other failure of such a command (a database error, the engine
    # refusing after all) rolls the whole batch back and its other commands run again, each alone.
    # A savepoint costs two statements, and the log rows appended before it are written apart from
    # the batch's others (a statement per table and command instead of per batch).
    savepoint: ClassVar[bool] = True

    async def prepare(self, uow: UnitOfWork, command: C) -> Any:
        """Reads and writes before the engine runs; the result goes to ``decide`` and ``finish``."""
        return None

    @abstractmethod
    def decide(self, engine: r.RoutingEngine, command: C, prepared: Any, now: float) -> list[r.Output]:
        """The engine step (every handler has one: it is what makes a command an ACD command)."""

    async def finish(self, uow: UnitOfWork, command: C, outputs: list[r.Output], prepared: Any) -> Any:
        """The caller's answer, once the outputs are written (not yet committed): the outputs unless
        overridden."""
        return outputs


class OutputStep(ABC):
    """Writes a use case makes for the engine's outputs in the same transaction as the outputs
    themselves (registered with :meth:`AcdService.add_step`): e.g. accepting a ticket's work item
    assigns the ticket. Runs after the outputs' rows are written, whatever command caused them."""

    @abstractmethod
    async def recorded(
        self, uow: UnitOfWork, outputs: list[r.Output], rows: dict[int, RoutedContact]
    ) -> None:
        """``rows``: the interactions the outputs name, as they were before the outputs."""


# ---------------------------------------------------------------------------- engine-only commands
@dataclass(frozen=True, slots=True)
class Tick(EngineCommand):
    """Run the engine's timers that are due (offer time-outs, wrap-up ends, escalations...)."""


@dataclass(frozen=True, slots=True)
class AgentLogin(EngineCommand):
    """The agent signs in, in ``state`` (available, or not ready with ``reason``)."""

    agent_id: str
    state: r.AgentState = "available"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AgentLogout(EngineCommand):
    """The agent signs out; offers to them are withdrawn."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class SetAgentState(EngineCommand):
    """A signed-in agent becomes available, or not ready with ``reason``."""

    agent_id: str
    state: r.AgentState
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptOffer(EngineCommand):
    """The agent took the offered contact: connected."""

    contact_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class RejectOffer(EngineCommand):
    """The agent declined the offer (or their phone did): the contact keeps its place."""

    contact_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class FinishContact(EngineCommand):
    """The conversation is over: wrap-up starts (or the contact is done)."""

    contact_id: str


@dataclass(frozen=True, slots=True)
class WithdrawContact(EngineCommand):
    """The customer left before being connected: the contact is abandoned. With a ``cause`` the
    contact was lost instead (its voice node died): it fails with that cause (not an abandon)."""

    contact_id: str
    cause: str = ""


@dataclass(frozen=True, slots=True)
class TransferToQueue(EngineCommand):
    """Move the contact to another queue."""

    contact_id: str
    queue_id: str


@dataclass(frozen=True, slots=True)
class TransferToAgent(EngineCommand):
    """Move the contact to a named agent."""

    contact_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class SetPriority(EngineCommand):
    """A supervisor changes a waiting contact's priority."""

    contact_id: str
    priority: int


@dataclass(frozen=True, slots=True)
class RequestCallback(EngineCommand):
    """The waiting customer asked to be called back; the contact keeps its place."""

    contact_id: str


@dataclass(frozen=True, slots=True)
class SetQueueOpen(EngineCommand):
    """Open or close a queue (its calendar, or an administrator)."""

    queue_id: str
    open: bool


def _tick(e: r.RoutingEngine, c: Tick, now: float) -> list[r.Output]:
    return e.tick(now)


def _agent_login(e: r.RoutingEngine, c: AgentLogin, now: float) -> list[r.Output]:
    return e.agent_login(c.agent_id, now, c.state, c.reason)


def _agent_logout(e: r.RoutingEngine, c: AgentLogout, now: float) -> list[r.Output]:
    return e.agent_logout(c.agent_id, now)


def _set_agent_state(e: r.RoutingEngine, c: SetAgentState, now: float) -> list[r.Output]:
    return e.set_agent_state(c.agent_id, c.state, now, c.reason)


def _accept_offer(e: r.RoutingEngine, c: AcceptOffer, now: float) -> list[r.Output]:
    return e.offer_accepted(c.contact_id, c.agent_id, now)


def _reject_offer(e: r.RoutingEngine, c: RejectOffer, now: float) -> list[r.Output]:
    return e.offer_rejected(c.contact_id, c.agent_id, now)


def _finish_contact(e: r.RoutingEngine, c: FinishContact, now: float) -> list[r.Output]:
    return e.contact_finished(c.contact_id, now)


def _withdraw_contact(e: r.RoutingEngine, c: WithdrawContact, now: float) -> list[r.Output]:
    outputs = e.contact_withdrawn(c.contact_id, now)
    if not c.cause:
        return outputs
    return [replace(o, cause=c.cause) if isinstance(o, r.ContactAbandoned) else o for o in outputs]


def _transfer_to_queue(e: r.RoutingEngine, c: TransferToQueue, now: float) -> list[r.Output]:
    return e.transfer_to_queue(c.contact_id, c.queue_id, now)


def _transfer_to_agent(e: r.RoutingEngine, c: TransferToAgent, now: float) -> list[r.Output]:
    return e.transfer_to_agent(c.contact_id, c.agent_id, now)


def _set_priority(e: r.RoutingEngine, c: SetPriority, now: float) -> list[r.Output]:
    return e.set_priority(c.contact_id, c.priority, now)


def _request_callback(e: r.RoutingEngine, c: RequestCallback, now: float) -> list[r.Output]:
    return e.request_callback(c.contact_id, now)


def _set_queue_open(e: r.RoutingEngine, c: SetQueueOpen, now: float) -> list[r.Output]:
    return e.set_queue_open(c.queue_id, c.open, now)


EngineStep = Callable[[r.RoutingEngine, Any, float], list[r.Output]]

# The one handler of each engine-only command.
ENGINE_HANDLERS: dict[type[EngineCommand], EngineStep] = {
    Tick: _tick,
    AgentLogin: _agent_login,
    AgentLogout: _agent_logout,
    SetAgentState: _set_agent_state,
    AcceptOffer: _accept_offer,
    RejectOffer: _reject_offer,
    FinishContact: _finish_contact,
    WithdrawContact: _withdraw_contact,
    TransferToQueue: _transfer_to_queue,
    TransferToAgent: _transfer_to_agent,
    SetPriority: _set_priority,
    RequestCallback: _request_callback,
    SetQueueOpen: _set_queue_open,
}


def engine_step(command: EngineCommand, engine: r.RoutingEngine, now: float) -> list[r.Output]:
    """Run an engine-only command's handler (for handlers that wrap one, as a call's hang-up does)."""
    return ENGINE_HANDLERS[type(command)](engine, command, now)


class EngineHandler(CommandHandler[EngineCommand]):
    """The handler of an engine-only command: no prepare step, answers the outputs."""

    def __init__(self, step: EngineStep) -> None:
        self.step = step

    def decide(
        self, engine: r.RoutingEngine, command: EngineCommand, prepared: Any, now: float
    ) -> list[r.Output]:
        return self.step(engine, command, now)
