"""Tickets (cases of the help desk) and deals (opportunities of the sales pipeline): their life cycles.

Pure rules, no storage: which statuses a ticket may move between and which deal stages count as
closed. SLA targets of the help desk and configurable pipelines will grow from here.
"""

from __future__ import annotations

from enum import StrEnum

from .exceptions import Conflict

__all__ = [
    "DealStage",
    "TicketPriority",
    "TicketStatus",
    "check_ticket_transition",
]


class TicketStatus(StrEnum):
    """open: someone must act; pending: waiting for the customer or a third party; solved: the answer
    was given (the customer may still reopen it); closed: final, a new question is a new ticket."""

    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """Still needs work: shown among the customer's open tickets."""
        return self in (TicketStatus.OPEN, TicketStatus.PENDING)


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


_TICKET_MOVES: dict[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset({TicketStatus.PENDING, TicketStatus.SOLVED, TicketStatus.CLOSED}),
    TicketStatus.PENDING: frozenset({TicketStatus.OPEN, TicketStatus.SOLVED, TicketStatus.CLOSED}),
    # Solved tickets reopen when the customer writes back; closed ones never do (as in most help desks:
    # statistics of a closed ticket stay fixed).
    TicketStatus.SOLVED: frozenset({TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.CLOSED}),
    TicketStatus.CLOSED: frozenset(),
}


def check_ticket_transition(old: TicketStatus, new: TicketStatus) -> None:
    """Raise :class:`Conflict` when a ticket may not move from ``old`` to ``new`` (same status is fine)."""
    if old == new or new in _TICKET_MOVES[old]:
        return
    if old is TicketStatus.CLOSED:
        raise Conflict(
            "A closed ticket cannot be changed; open a new ticket instead",
            error_id="ticket-closed",
            status=old.value,
            new_status=new.value,
        )
    raise Conflict(
        "This ticket status change is not allowed",
        error_id="invalid-ticket-transition",
        status=old.value,
        new_status=new.value,
    )


class DealStage(StrEnum):
    """The default sales pipeline. Deals may move back and forth between open stages, and a closed
    deal may be reopened (``closed_at`` is cleared then)."""

    LEAD = "lead"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"

    @property
    def is_closed(self) -> bool:
        return self in (DealStage.WON, DealStage.LOST)

    @property
    def probability_pct(self) -> int:
        """The chance of winning a deal at this stage, for the weighted forecast (the usual defaults
        of sales pipelines: a lead one in ten, a negotiation three in four; won is certain)."""
        return _DEFAULT_PROBABILITY_PCT[self]


_DEFAULT_PROBABILITY_PCT: dict[DealStage, int] = {
    DealStage.LEAD: 10,
    DealStage.QUALIFIED: 25,
    DealStage.PROPOSAL: 50,
    DealStage.NEGOTIATION: 75,
    DealStage.WON: 100,
    DealStage.LOST: 0,
}
