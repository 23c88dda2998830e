"""Domain errors of the routing engine.

Every command validates its input before it changes anything, so a command that raises one of these
leaves the engine exactly as it was.
"""

from __future__ import annotations


class RoutingError(Exception):
    """Base class of every error the routing engine raises."""


class UnknownQueue(RoutingError):
    """A command named a queue the engine has no configuration for."""


class UnknownAgent(RoutingError):
    """A command named an agent the engine has no configuration for."""


class UnknownContact(RoutingError):
    """A command named a contact the engine is not tracking (never arrived, or already gone)."""


class DuplicateContact(RoutingError):
    """A contact arrived (or was restored) with an id the engine is already tracking."""


class InvalidTransition(RoutingError):
    """The command is not allowed in the current state (e.g. accepting an offer that was withdrawn)."""


class InvalidConfig(RoutingError):
    """A queue, agent or engine configuration, or a contact's fields, failed validation."""


class QueueTurnsAway(InvalidTransition):
    """A transfer named a queue that would turn the contact away now (closed, full, no agents, with no
    overflow queue that takes it): the transfer is refused and the contact stays where it was."""

    def __init__(self, queue_id: str, reason: str) -> None:
        super().__init__(f"queue {queue_id!r} does not take contacts now ({reason})")
        self.queue_id = queue_id
        #: why: ``closed``, ``no_agents`` or ``max_length``
        self.reason = reason
