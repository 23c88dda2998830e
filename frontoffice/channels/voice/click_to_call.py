"""Agents' calls out: **click-to-call** (ring the agent's phone first, then dial the customer through
a trunk and bridge) and **phone-dialled** calls (an authenticated phone INVITEs an external number).
Both are outbound interactions (:class:`~frontoffice.services.voice_outbound.OutboundCallRecords`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.services.voice_outbound import OutboundCall, OutboundCallRecords

from .call_setup import CallSetup, PendingInvite
from .dialling import Dialler, OutboundLeg
from .endpoint import Endpoint
from .media import MediaSession
from .offers import codecs_first
from .sip import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Destination,
    Dialog,
    NameAddress,
    ProtocolError,
    Request,
    RequestReceived,
    Response,
    SessionDescription,
    TransactionKey,
    apply_answer,
    build_cancel,
    parse_sdp,
    parse_uri,
)
from .trunks import InvalidNumber, Trunk, TrunkLine, TrunkLines, normalize_number

__all__ = ["AgentOutboundCalls", "ClickCallState", "PhoneCallState"]

log = logging.getLogger("frontoffice.voice.trunks")

# Final responses from the carrier are passed on to a phone that dialled out as they are, except
# these, which concern our account at the carrier, not the phone: they become 503 (§21.5.4).
_NOT_THE_PHONES_BUSINESS = frozenset({401, 407, 403, 423})


class PhoneCallState(enum.StrEnum):
    DIALLING = "dialling"
    BRIDGED = "bridged"
    ENDED = "ended"


class ClickCallState(enum.StrEnum):
    RINGING_AGENT = "ringing_agent"
    DIALLING = "dialling"
    BRIDGED = "bridged"
    ENDED = "ended"


@dataclass(eq=False)
class _PhoneCall:
    """An agent's phone dialled an external number: phone leg (we are UAS) ↔ carrier leg."""

    invite: Request
    key: TransactionKey
    source: Destination
    local_tag: str
    media: MediaSession
    local_sdp: SessionDescription
    codec: Codec
    user_id: int
    number: str
    leg: OutboundLeg | None = None
    interaction_id: int | None = None
    dialog: Dialog | None = None
    state: PhoneCallState = PhoneCallState.DIALLING
    progress_sent: bool = False


@dataclass(eq=False)
class _ClickCall:
    """Click-to-call: the agent's phone is rung first (we are UAC), then the customer is dialled."""

    user_id: int
    number: str
    trunk: TrunkLine
    interaction_id: int
    caller_id: str | None
    media: MediaSession
    invite: Request
    destination: Destination
    offer: SessionDescription
    key: TransactionKey | None = None
    dialog: Dialog | None = None
    phone_answered: bool = False
    leg: OutboundLeg | None = None
    state: ClickCallState = ClickCallState.RINGING_AGENT


class AgentOutboundCalls:
    """Click-to-call and phone-dialled calls through the trunks."""

    def __init__(
        self, endpoint: Endpoint, setup: CallSetup, lines: TrunkLines, dialler: Dialler, *, region: str
    ) -> None:
        self.endpoint = endpoint
        self.setup = setup
        self.lines = lines
        self.dialler = dialler
        self.region = region
        self.media = setup.media
        self.registrar = setup.registrar
        self.records = OutboundCallRecords(setup.calls.contact_center)
        self._phone_calls: dict[str, _PhoneCall] = {}  # phone's Call-ID
        self._click_calls: dict[str, _ClickCall] = {}  # Call-ID of our INVITE to the agent's phone

    def stop(self) -> None:
        for phone_call in list(self._phone_calls.values()):
            self._end_phone_call(phone_call, from_phone=False, status=480)
        for click in list(self._click_calls.values()):
            self._end_click_call(click, status=None)

    def handles(self, call_id: str) -> bool:
        """A call of a phone that dials out, with this Call-ID, is in progress."""
        return call_id in self._phone_calls

    def claim_request(self, event: RequestReceived) -> bool:
        """Handle a request of one of these calls; True if it was one."""
        request = event.request
        phone_call = self._phone_calls.get(request.call_id)
        if phone_call is not None:
            self._phone_request(phone_call, request, event)
            return True
        click = self._click_calls.get(request.call_id)
        if click is not None and request.method != "ACK":
            self._click_request(click, request)
            return True
        return False

    def claim_response(self, response: Response) -> bool:
        """A 2xx of the agent's phone retransmitted after its INVITE transaction ended: ACK again."""
        click = self._click_calls.get(response.call_id)
        if click is not None and click.dialog is not None and response.cseq.method == "INVITE":
            self.endpoint.request(click.dialog.ack(response.cseq.seq), click.destination, None)
            return True
        return False

    async def phone_dials_out(
        self,
        pending: PendingInvite,
        event: RequestReceived,
        user_id: int,
        number: str,
        offer: SessionDescription,
    ) -> None:
        """Dial ``number`` for an authenticated phone. ``pending`` answers a CANCEL until the call is
        registered here (after media is open); from then on :meth:`claim_request` does."""
        endpoint = self.endpoint
        request = pending.request
        assert event.transaction is not None
        try:
            line = self.lines.line(None)
        except Conflict:
            endpoint.respond(request, 404)  # no trunk: external numbers do not exist for us
            return
        answered = await self.setup.answer_offer(
            request, offer, lambda digit: None, agent_side=True, signalling_ip=event.source.host
        )
        if answered is None:
            return
        media, local_sdp, negotiated = answered
        if pending.cancelled:  # the CANCEL came while media was opened: 487 was sent already
            await media.close()
            return
        call = _PhoneCall(
            invite=request,
            key=event.transaction,
            source=event.source,
            # A CANCEL's 200 may have chosen the To tag already (RFC 3261 §9.2): the INVITE's answers
            # (180, 183, 200, 487) use the same one.
            local_tag=self.endpoint.to_tag(event.transaction),
            media=media,
            local_sdp=local_sdp,
            codec=negotiated.codec,
            user_id=user_id,
            number=number,
        )
        self._phone_calls[request.call_id] = call
        try:
            leg = await self.dialler.dial_out(
                number,
                trunk=line.trunk.name,
                media=media,
                codecs=codecs_first(negotiated.codec),
                on_progress=lambda leg: self._phone_progress(call),
                on_answer=lambda leg: self._phone_answered(call),
                on_end=lambda leg: self._phone_leg_ended(call),
            )
        except (Conflict, InvalidInput, NotFound) as exc:
            log.info("phone call to %s not placed: %s", number, exc)
            self._end_phone_call(call, from_phone=False, status=503 if isinstance(exc, Conflict) else 404)
            return
        call.leg = leg
        if call.state is PhoneCallState.ENDED:  # the phone cancelled while we were dialling
            leg.hang_up()
            return
        endpoint.spawn(self._record_phone_call(call, line.trunk))

    async def _record_phone_call(self, call: _PhoneCall, trunk: Trunk) -> None:
        try:
            call.interaction_id = await self.records.placed(
                OutboundCall(
                    agent_id=call.user_id,
                    number=call.number,
                    call_id=call.invite.call_id,
                    trunk=trunk.name,
                    caller_id=trunk.caller_id,
                    origin="phone",
                )
            )
        except Exception:
            log.exception("recording the outbound call failed")
            return
        leg = call.leg
        if leg is not None and leg.answer is not None:
            if call.state is PhoneCallState.BRIDGED:
                self._start_recording(call.media, call.interaction_id)
            await self.records.answered(call.interaction_id)
        if call.state is PhoneCallState.ENDED and leg is not None:
            await self.records.ended(call.interaction_id, status=leg.status, reason=leg.reason)

    def _phone_progress(self, call: _PhoneCall) -> None:
        leg = call.leg
        if call.state is not PhoneCallState.DIALLING or leg is None:
            return
        if leg.early is not None:
            # The carrier's ringback or announcement: relay it to the phone as early media.
            call.media.set_caller(leg.early, signalling_ip=leg.destination.host)
            call.media.bridge()
            self.endpoint.respond_with(
                self.endpoint.sdp_response(
                    call.invite, 183, call.local_sdp, call.source.transport, call.local_tag
                )
            )
        elif not call.progress_sent:
            self.endpoint.respond(call.invite, 180, to_tag=call.local_tag)
        call.progress_sent = True

    def _phone_answered(self, call: _PhoneCall) -> None:
        leg = call.leg
        endpoint = self.endpoint
        if call.state is not PhoneCallState.DIALLING or leg is None or leg.answer is None:
            if leg is not None:
                leg.hang_up()
            return
        call.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        call.media.bridge()
        call.state = PhoneCallState.BRIDGED
        call.dialog = endpoint.answer_invite(call.invite, call.local_tag, call.source, call.local_sdp)
        if call.interaction_id is not None:
            self._start_recording(call.media, call.interaction_id)
            endpoint.spawn(self._quietly(self.records.answered(call.interaction_id)))

    def _phone_leg_ended(self, call: _PhoneCall) -> None:
        leg = call.leg
        if call.state is PhoneCallState.ENDED or leg is None:
            return
        status = leg.status or 480
        if status in _NOT_THE_PHONES_BUSINESS or status < 300:
            status = 503
        self._end_phone_call(call, from_phone=False, status=status)

    def _end_phone_call(self, call: _PhoneCall, *, from_phone: bool, status: int) -> None:
        """End both legs of a phone-dialled call (``status`` answers a phone still waiting)."""
        if call.state is PhoneCallState.ENDED:
            return
        bridged = call.state is PhoneCallState.BRIDGED
        call.state = PhoneCallState.ENDED
        endpoint = self.endpoint
        if not from_phone:
            if bridged and call.dialog is not None:
                endpoint.request(call.dialog.bye(), call.source, None)
            elif not bridged:
                endpoint.respond(call.invite, status, to_tag=call.local_tag)
        if call.leg is not None:
            call.leg.hang_up()
        self._phone_calls.pop(call.invite.call_id, None)
        endpoint.spawn(call.media.close())
        if call.interaction_id is not None:
            leg = call.leg
            endpoint.spawn(
                self._quietly(
                    self.records.ended(
                        call.interaction_id,
                        status=leg.status if leg is not None else status,
                        reason=leg.reason if leg is not None else "",
                    )
                )
            )

    def _phone_request(self, call: _PhoneCall, request: Request, event: RequestReceived) -> None:
        endpoint = self.endpoint
        method = request.method
        if method == "ACK":
            return
        if method == "CANCEL":
            if not endpoint.accept_cancel(request, event):
                return
            if call.state is PhoneCallState.DIALLING:
                if call.leg is not None:
                    call.leg.reason = "caller cancelled"
                self._end_phone_call(call, from_phone=False, status=487)
            return
        if call.dialog is None or not call.dialog.matches_request(request):
            if method != "INVITE" or request.to.tag is not None:
                endpoint.respond(request, 481)
            return  # a second initial INVITE of this call: ignored
        # RFC 3261 §12.2.2: a lower CSeq raises DialogError before anything is answered or changed;
        # the endpoint answers it 500 and the call goes on.
        call.dialog.receive_request(request)
        if method == "BYE":
            endpoint.respond(request, 200)
            if call.leg is not None:
                call.leg.reason = "agent hung up"
            self._end_phone_call(call, from_phone=True, status=200)
        elif method == "INVITE":
            call.local_sdp = self.setup.answer_reinvite(
                request, call.local_sdp, call.media, call.source.transport, agent_side=True
            )
        elif method == "UPDATE":
            call.local_sdp = self.setup.answer_update(
                request, call.local_sdp, call.media, call.source.transport, agent_side=True
            )
        else:
            endpoint.respond(request, 200 if method in ("OPTIONS", "INFO") else 405)

    async def click_to_call(
        self, agent_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        """Ring the agent's registered phone; when they pick up, dial ``number`` and bridge.

        Returns the outbound interaction's id at once (the phone is ringing). Raises
        :class:`InvalidInput` (not a number), :class:`Conflict` (no registered phone, no trunk, trunk
        busy), :class:`NotFound` (no such customer or trunk).
        """
        endpoint = self.endpoint
        line = self.lines.line(trunk)
        try:
            e164 = normalize_number(number, line.trunk.region or self.region)
        except InvalidNumber:
            raise InvalidInput("Not a phone number", error_id="invalid-phone", number=number[:40]) from None
        now = endpoint.clock()
        bindings = self.registrar.bindings(agent_id, now)
        if not bindings:
            raise Conflict("Your phone is not registered", error_id="phone-not-registered")
        if not line.has_room():
            raise Conflict("The trunk is at its call limit", error_id="trunk-busy", trunk=line.trunk.name)
        binding = bindings[0]
        destination = binding.source
        media = await self.media.open_session(lambda digit: None)
        offer, invite = self.setup.invite_phone(
            binding,
            media,
            f"click-{e164}-{id(media)}",
            (PCMU, PCMA, TELEPHONE_EVENT),
            # The phone shows whom it is about to call.
            NameAddress(parse_uri(f"sip:{e164}@{endpoint.host}"), f"Call to {e164}"),
        )
        try:
            interaction_id = await self.records.placed(
                OutboundCall(
                    agent_id=agent_id,
                    number=e164,
                    call_id=invite.call_id,
                    trunk=line.trunk.name,
                    caller_id=line.trunk.caller_id,
                    customer_id=customer_id,
                )
            )
        except Exception:
            await media.close()
            raise
        click = _ClickCall(
            user_id=agent_id,
            number=e164,
            trunk=line,
            interaction_id=interaction_id,
            caller_id=line.trunk.caller_id,
            media=media,
            invite=invite,
            destination=destination,
            offer=offer,
        )
        self._click_calls[invite.call_id] = click
        click.key = endpoint.request(invite, destination, lambda response: self._agent_phone(click, response))
        return interaction_id

    def _agent_phone(self, click: _ClickCall, response: Response | None) -> None:
        endpoint = self.endpoint
        if response is not None and response.is_provisional:
            return
        if response is None or not response.is_success:
            status = 408 if response is None else response.status
            self._end_click_call(click, status=status, reason="agent's phone did not answer")
            return
        click.dialog = endpoint.ack_answer(click.invite, response, click.destination)
        click.phone_answered = True
        if click.state is not ClickCallState.RINGING_AGENT:
            self._end_click_call(click, status=None)
            return
        try:
            agent_media = apply_answer(click.offer, parse_sdp(response.body))
        except ProtocolError:
            self._end_click_call(click, status=488, reason="phone's SDP unusable")
            return
        click.media.set_agent(agent_media, signalling_ip=click.destination.host)
        click.state = ClickCallState.DIALLING
        endpoint.spawn(self._click_dial(click, agent_media.codec))

    async def _click_dial(self, click: _ClickCall, codec: Codec) -> None:
        try:
            click.leg = await self.dialler.dial_out(
                click.number,
                trunk=click.trunk.trunk.name,
                caller_id=click.caller_id,
                media=click.media,
                codecs=codecs_first(codec),
                on_progress=lambda leg: self._click_progress(click),
                on_answer=lambda leg: self._click_answered(click),
                on_end=lambda leg: self._click_leg_ended(click),
            )
        except (Conflict, InvalidInput, NotFound) as exc:
            self._end_click_call(click, status=503, reason=str(exc))
            return
        if click.state is ClickCallState.ENDED:
            click.leg.hang_up()

    def _click_progress(self, click: _ClickCall) -> None:
        leg = click.leg
        if leg is not None and leg.early is not None and click.state is ClickCallState.DIALLING:
            # The agent hears the carrier's ringback.
            click.media.set_caller(leg.early, signalling_ip=leg.destination.host)
            click.media.bridge()

    def _click_answered(self, click: _ClickCall) -> None:
        leg = click.leg
        if click.state is not ClickCallState.DIALLING or leg is None or leg.answer is None:
            return
        click.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        click.media.bridge()
        click.state = ClickCallState.BRIDGED
        self._start_recording(click.media, click.interaction_id)
        self.endpoint.spawn(self._quietly(self.records.answered(click.interaction_id)))

    def _click_leg_ended(self, click: _ClickCall) -> None:
        leg = click.leg
        self._end_click_call(
            click, status=leg.status if leg is not None else None, reason=leg.reason if leg else ""
        )

    def _end_click_call(self, click: _ClickCall, *, status: int | None, reason: str = "") -> None:
        if click.state is ClickCallState.ENDED:
            return
        click.state = ClickCallState.ENDED
        endpoint = self.endpoint
        if click.leg is not None:
            click.leg.hang_up()
        if click.dialog is not None:
            endpoint.request(click.dialog.bye(), click.destination, None)
        elif click.key is not None and not click.phone_answered:
            # Still ringing the agent's phone: §9.1 CANCEL (a crossing 2xx is ACKed, then BYEd above).
            endpoint.request(build_cancel(click.invite), click.destination, None)
        self._click_calls.pop(click.invite.call_id, None)
        endpoint.spawn(click.media.close())
        endpoint.spawn(self._quietly(self.records.ended(click.interaction_id, status=status, reason=reason)))

    def _click_request(self, click: _ClickCall, request: Request) -> None:
        endpoint = self.endpoint
        if click.dialog is None or not click.dialog.matches_request(request):
            endpoint.respond(request, 481)
            return
        click.dialog.receive_request(request)  # DialogError: 500 from the endpoint, as above
        if request.method == "BYE":
            endpoint.respond(request, 200)
            click.dialog = None  # their BYE ended the phone's dialog: no BYE back
            if click.leg is not None:
                click.leg.reason = click.leg.reason or "agent hung up"
            self._end_click_call(
                click, status=click.leg.status if click.leg else None, reason="agent hung up"
            )
        elif request.method == "INVITE":
            click.offer = self.setup.answer_reinvite(
                request, click.offer, click.media, click.destination.transport, agent_side=True
            )
        else:
            endpoint.respond(request, 200 if request.method in ("OPTIONS", "UPDATE", "INFO") else 405)

    def _start_recording(self, media: MediaSession, interaction_id: int) -> None:
        """Record the conversation like an inbound call's: a mixed WAV (and a stereo one when configured),
        listed in the interaction's ``recordings`` so the timeline plays it."""
        self.setup.record_media(media, interaction_id, self._quietly)

    async def _quietly(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("recording an outbound call step failed")
