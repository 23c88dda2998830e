"""The carrier side of the B2BUA, one job per module, composed here as :class:`Trunking`:

- **source screening** (``screening.py``): who may call in; the toll-fraud rule;
- **registrations out** (``trunk_registrations.py``) at carriers that want them;
- **dialling out** (``dialling.py``): calls through a trunk, :class:`OutboundLeg` is the handle;
- **click-to-call** and phone-dialled calls (``click_to_call.py``).

They all send through the node's :class:`~.endpoint.Endpoint` and share the trunks' live state
(:class:`~.trunks.TrunkLines`). Nothing here touches the inbound B2BUA but through
:class:`~.screening.InboundCalls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .call_setup import CallSetup
from .click_to_call import AgentOutboundCalls
from .dialling import DEFAULT_RING_TIMEOUT_S, Dialler, OutboundLeg, OutboundLegState
from .endpoint import Endpoint
from .screening import TRUNK_RETRY_AFTER_S, InboundCalls, SourceScreening
from .sip import Destination, Request, RequestReceived, Response
from .trunk_registrations import TrunkRegistrations
from .trunks import Trunk, TrunkLines, TrunkStatus

__all__ = ["TRUNK_RETRY_AFTER_S", "InboundCalls", "OutboundLeg", "OutboundLegState", "Trunking"]


class Trunking:
    """Trunk screening, registrations and outbound calls of one node."""

    def __init__(
        self,
        endpoint: Endpoint,
        setup: CallSetup,
        inbound: InboundCalls,
        trunks: Sequence[Trunk] = (),
        *,
        region: str = "RU",
        ring_timeout_s: float = DEFAULT_RING_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self.lines = TrunkLines(trunks)
        self.dialler = Dialler(endpoint, setup, self.lines, region=region, ring_timeout_s=ring_timeout_s)
        self.registrations = TrunkRegistrations(endpoint, self.lines)
        self.agent_calls = AgentOutboundCalls(endpoint, setup, self.lines, self.dialler, region=region)
        self.screening = SourceScreening(
            endpoint, setup, self.lines, inbound, self.agent_calls, region=region
        )

    async def start(self) -> None:
        await self.lines.resolve()
        self.registrations.start()

    async def stop(self) -> None:
        self.dialler.stop()
        self.agent_calls.stop()
        await self.registrations.stop()

    def statuses(self) -> list[TrunkStatus]:
        now = self.endpoint.clock()
        return [line.status(now) for line in self.lines]

    def release(self, call_id: str) -> None:
        """An inbound call is over or was refused: it stops counting against its trunk's limit."""
        self.lines.release(call_id)

    # ---------------------------------------------------------------- what the B2BUA asks first
    def drop_scanner(self, request: Request, source: Destination) -> bool:
        return self.screening.drop_scanner(request, source)

    def screen_invite(self, request: Request, event: RequestReceived) -> bool:
        return self.screening.screen_invite(request, event)

    def screen_request(self, event: RequestReceived) -> bool:
        """Claim requests that belong to trunk-side calls; True if claimed."""
        return (
            self.dialler.claim_request(event.request)
            or self.agent_calls.claim_request(event)
            or self.screening.claim_cancel(event)
        )

    def screen_response(self, response: Response) -> bool:
        """A 2xx retransmitted after its INVITE transaction ended: ACK it again (§13.2.2.4)."""
        return self.dialler.claim_response(response) or self.agent_calls.claim_response(response)

    # ---------------------------------------------------------------- calls out
    async def dial_out(self, number: str, **options: Any) -> OutboundLeg:
        """:meth:`Dialler.dial_out`."""
        return await self.dialler.dial_out(number, **options)

    async def click_to_call(
        self, agent_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        """:meth:`AgentOutboundCalls.click_to_call`."""
        return await self.agent_calls.click_to_call(agent_id, number, customer_id=customer_id, trunk=trunk)
