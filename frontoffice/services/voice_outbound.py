"""Outbound calls as interactions: a call an agent places (click-to-call from the desktop, or dialled on
their phone) is an ``outbound`` voice interaction in the customer's timeline, one transaction per step.

The ACD does not route these calls; the record goes ``new → connected → done`` when the called party
answers, or ``new → failed`` (with the SIP status) when they do not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from frontoffice.domain.exceptions import NotFound
from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionEventType, InteractionState
from frontoffice.store.tables import Customer, Identity, Interaction

from .contact_center import ContactCenter
from .context import Actor, audit
from .identities import normalize_identity
from .interactions import log_event
from .schemas import CustomerIn, IdentityIn

__all__ = ["OutboundCall", "OutboundCallRecords"]


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
                    created = await self.crm.create_in_session(
                        s,
                        Actor.system(),
                        CustomerIn(identities=[IdentityIn(kind=IdentityKind.PHONE, value=call.number)]),
                    )
                    customer_id = created.id
            interaction = await self.interactions.record(
                s,
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
            return interaction.id

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
