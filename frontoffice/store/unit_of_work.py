"""The unit of work one ACD command runs in: the batch's transaction, as that command sees it.

The ACD's group commit (:mod:`frontoffice.services.acd`) runs several commands in one transaction;
each command's handler gets a :class:`UnitOfWork` for its own steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r

from .append_log import collect
from .interactions import InteractionRepository

__all__ = ["UnitOfWork"]


@dataclass(eq=False, slots=True)
class UnitOfWork:
    """One command's share of the batch's transaction."""

    session: AsyncSession
    # The command's time (seconds since the epoch), the same for every step of the command.
    now: float
    # The interactions the command reads and writes (its own: see store/interactions.py).
    interactions: InteractionRepository = field(init=False)

    def __post_init__(self) -> None:
        self.interactions = InteractionRepository(self.session)

    def collect(self, outputs: list[r.Output]) -> None:
        """Keep the engine's outputs with the transaction: after the commit they go out with its log
        rows through the one outlet of committed events (:mod:`frontoffice.store.committed`)."""
        collect(self.session, outputs)
