"""The contact path's use cases, split by who uses them, and what they share.

* :class:`~frontoffice.services.intake.Intake`: contacts in, from every channel;
* :class:`~frontoffice.services.agent_desk.AgentDesk`: agents (and supervisors) acting on contacts;
* :class:`~frontoffice.services.routing_admin.RoutingAdmin`: queues, routing profiles, entry points;
* :class:`~frontoffice.services.wallboard.WallboardView`: the live view.

Each registers its ACD commands' handlers with the :class:`AcdService` it is given.
"""

from __future__ import annotations

from .acd import AcdService
from .agent_desk import AgentDesk, AgentQueue
from .context import Clock, system_clock
from .crm import CrmService
from .egress import EgressPolicy
from .intake import Intake
from .interactions import InteractionService
from .routing_admin import RoutingAdmin
from .wallboard import WaitingContact, WallboardView

__all__ = ["AgentQueue", "ContactCenter", "WaitingContact"]


class ContactCenter:
    """The four use-case services of the contact path over one ACD, and the parts they share
    (channels reach the ACD, the CRM and the interaction record through it)."""

    def __init__(
        self,
        acd: AcdService,
        crm: CrmService,
        interactions: InteractionService,
        *,
        clock: Clock = system_clock,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.acd = acd
        self.crm = crm
        self.interactions = interactions
        self.sessions = acd.sessions
        self.clock = clock
        self.admin = RoutingAdmin(acd, clock=clock, egress=egress)
        self.intake = Intake(acd, crm, interactions, clock=clock, routing=self.admin)
        self.desk = AgentDesk(acd, clock=clock)
        self.wallboard = WallboardView(acd)

    @property
    def entry_points_version(self) -> int:
        """See :meth:`RoutingAdmin.entry_points_changed`."""
        return self.admin.entry_points_version

    def entry_points_changed(self) -> None:
        """Invalidate in-memory caches of entry points (see :meth:`RoutingAdmin.entry_points_changed`)."""
        self.admin.entry_points_changed()
