"""Outbound calls as interactions: a call an agent places (click-to-call from the desktop, or dialled on
their phone) is an ``outbound`` voice interaction in the customer's timeline, one transaction per step.

The ACD does not route these calls; the record goes ``new → connected → done`` when the called party
answers, or ``new → failed`` (with the SIP status) when they do not. While the call is on, an agent who
was available is not ready with the reason ``outbound_call`` (the ACD offers them nothing, the wallboard
says why), and available again when it ends — unless they changed their state meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from frontoffice.domain.exceptions import NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionEventType, InteractionState
from frontoffice.store.tables import Customer, Identity, Interaction

from .acd_commands import SetAgentState
from .contact_center import ContactCenter
from .context import Actor, audit
from .identities import normalize_identity
from .interactions import log_event
from .schemas import CustomerIn, IdentityIn

__all__ = ["OUTBOUND_REASON", "OutboundCall", "OutboundCallRecords"]

# The not-ready reason an available agent has while on an outbound call.
OUTBOUND_REASON = "outbound_call"


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """A call an agent places to ``number`` (E.164)."""

    agent_id: int
    number: str
    call_id: str
    trunk: str
    caller_id: str | None = None
    customer_id: int | None = None
    origin: str = "click_to_call"  # or "phone": dialled on the agent's phone


class OutboundCallRecords:
    """Use cases of outbound calls over the store (the voice channel calls these)."""

    def __init__(self, contact_center: ContactCenter) -> None:
        self.acd = contact_center.acd
        self.sessions = contact_center.sessions
        self.crm = contact_center.crm
        self.interactions = contact_center.interactions
        self.clock = contact_center.clock

    async def placed(self, call: OutboundCall) -> int:
        """Record the call (the customer is found by number, or created); returns the interaction id.

        Raises :class:`NotFound` for a ``customer_id`` that does not exist.
        """
        async with self.sessions.begin() as s:
            customer_id = call.customer_id
            if customer_id is not None:
                if await s.get(Customer, customer_id) is None:
                    raise NotFound("No such customer", error_id="no-such-customer", customer_id=customer_id)
            else:
                value = normalize_identity(IdentityKind.PHONE, call.number, self.crm.region)
                customer_id = await s.scalar(
                    select(Identity.customer_id).where(
                        Identity.kind == IdentityKind.PHONE.value, Identity.value == value
                    )
                )
                if customer_id is None:
                    customer_id = await self.crm.create_in_session(
                        s,
                        Actor.system(),
                        CustomerIn(identities=[IdentityIn(kind=IdentityKind.PHONE, value=value)]),
                        identities_free=True,  # normalised and looked up just above
                    )
            interaction = await self.interactions.record(
                s,
                self.interactions.orm_row(s),
                channel=Channel.VOICE,
                direction=Direction.OUTBOUND,
                customer_id=customer_id,
                subject=f"Call to {call.number}",
                from_address=call.caller_id or "",
                to_address=call.number,
                external_ref=call.call_id[:500],
                attributes={
                    "sip_call_id": call.call_id[:200],
                    "dialled": call.number,
                    "trunk": call.trunk,
                    "origin": call.origin,
                },
            )
            interaction.agent_id = call.agent_id
            audit(
                s,
                Actor(user_id=call.agent_id, role=Actor.system().role, username="voice"),
                "voice.outbound_call",
                "interaction",
                interaction.id,
                number=call.number,
                trunk=call.trunk,
            )
            interaction_id = interaction.id
        await self._busy(str(call.agent_id), on_call=True)
        return interaction_id

    async def agent_on_call(self, agent_id: int, on_call: bool) -> None:
        """An agent's own call out (a campaign's preview dial) starts or ends: an available agent is
        out of routing while it lasts, as for click-to-call."""
        await self._busy(str(agent_id), on_call=on_call)

    async def _busy(self, agent: str, *, on_call: bool) -> None:
        """Take an available agent out of routing for the call, and put them back after it."""
        if agent not in self.acd.view.agent_ids():
            return
        status = self.acd.view.agent_status(agent)
        if on_call and status.state == "available":
            await self.acd.execute(SetAgentState(agent, "not_ready", OUTBOUND_REASON))
        elif not on_call and status.state == "not_ready" and status.reason == OUTBOUND_REASON:
            await self.acd.execute(SetAgentState(agent, "available"))

    async def answered(self, interaction_id: int) -> None:
        """The called party answered: the agent and the customer are connected."""
        async with self.sessions.begin() as s:
            row = await s.get(Interaction, interaction_id)
            if row is None or row.state != InteractionState.NEW.value:
                return
            now = self.clock()
            row.state = InteractionState.CONNECTED.value
            row.connected_at = now
            log_event(s, row, InteractionEventType.CONNECTED, now)

    async def ended(self, interaction_id: int, *, status: int | None, reason: str = "") -> None:
        """The call ended: ``done`` after a conversation, ``failed`` (with the SIP status) without one."""
        async with self.sessions.begin() as s:
            row = await s.get(Interaction, interaction_id)
            if row is None or InteractionState(row.state).is_final:
                return
            now = self.clock()
            attributes = dict(row.attributes or {})
            if status is not None:
                attributes["sip_status"] = status
            if reason:
                attributes["sip_reason"] = reason[:200]
            row.attributes = attributes
            row.ended_at = now
            row.closed_at = now
            if row.state == InteractionState.CONNECTED.value:
                row.state = InteractionState.DONE.value
                log_event(s, row, InteractionEventType.DONE, now)
            else:
                row.state = InteractionState.FAILED.value
                log_event(s, row, InteractionEventType.FAILED, now, sip_status=status)
            agent = None if row.agent_id is None else str(row.agent_id)
        if agent is not None:
            await self._busy(agent, on_call=False)
