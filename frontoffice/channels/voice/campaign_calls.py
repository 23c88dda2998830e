"""Campaign calls (the voice channel's :class:`~frontoffice.services.campaign_dialler.DialPort`): the
dialler's claimed contacts dialled through a trunk, and what happens once they answer.

- **progressive / predictive**: the answered call joins the campaign's queue in the ACD; the ACD's
  offer rings the agent's phone (we are its UAC, the agent side of the call's media session) and the
  two legs are bridged. No agent within the campaign's ``agent_wait_s`` (2 s by default) of the answer:
  the contact leaves the queue, the called party hears the campaign's recorded message (who calls, why,
  a number to call back) and the call counts as ``abandoned``.
- **notification**: the message is played to the answered call; 1 records ``confirmed``, 2 records
  ``operator`` and puts the call in the queue (no 2-second rule: the customer asked to wait).
- a call never answered ends with the carrier's status as its outcome (busy, no answer, failed...).
- **answering-machine detection** (the campaign's ``amd`` setting; not in preview): after the answer
  the called party's audio is analysed (the media session runs the detector) before anything else
  happens; the called party hears silence meanwhile. HUMAN or NOTSURE: the call goes on as above, and
  the 2-second rule counts from the decision. MACHINE: the outcome is ``voicemail`` and the call is
  hung up, or with ``amd_machine_action`` = ``message`` the campaign's message is played once the
  greeting (and its beep) is over, then hung up. The decision is kept on the attempt, and the analysed
  audio as ``<interaction>-amd.wav`` in the recordings directory, listed in the call's recordings.

Each call reports its steps to :class:`~frontoffice.services.campaign_dialler.CampaignCallEvents`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from frontoffice.domain import routing as r
from frontoffice.domain.dialer import AmdDecision, AmdParameters, AmdResult
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.services.campaign_attempts import DialOrder, outcome_of_status
from frontoffice.services.campaign_dialler import CampaignCallEvents, LiveCalls
from frontoffice.services.campaign_schemas import AmdMachineAction
from frontoffice.services.voice_calls import VoiceCalls
from frontoffice.services.voice_outbound import OutboundCallRecords

from .call_setup import CallSetup
from .dialling import Dialler, OutboundLeg
from .endpoint import Endpoint
from .media import SAMPLE_RATE, MediaSession
from .sip import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
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
from .trunks import TrunkLines

__all__ = ["CampaignCallState", "CampaignCalls"]

log = logging.getLogger("frontoffice.campaigns")

# Notification mode: the message is played this often when no key is pressed, then the call ends.
NOTIFICATION_REPEATS = 2
# After the message, wait this long for a key before playing it again.
DIGIT_WAIT_S = 5.0
# The analysed audio of answering-machine detection: <interaction>-amd.wav next to the recordings.
AMD_AUDIO_SUFFIX = "amd"
# The recorded message of an abandoned call is cut after this long (a long upload must not hold a line).
MAX_MESSAGE_S = 60.0


class CampaignCallState(enum.StrEnum):
    DIALLING = "dialling"
    DETECTING = "detecting"  # answered: answering-machine detection listens
    WAITING = "waiting"  # answered: in the queue, no agent yet
    RINGING_AGENT = "ringing_agent"
    BRIDGED = "bridged"
    MESSAGE = "message"  # hearing the recorded message (abandoned) or the notification
    ENDED = "ended"


@dataclass(eq=False)
class _AgentLeg:
    agent_id: int
    invite: Request
    destination: Destination
    offer: SessionDescription
    key: TransactionKey | None = None
    dialog: Dialog | None = None
    answered: bool = False


@dataclass(eq=False)
class _CampaignCall:
    order: DialOrder
    media: MediaSession | None = None
    leg: OutboundLeg | None = None
    state: CampaignCallState = CampaignCallState.DIALLING
    agent: _AgentLeg | None = None
    timer: asyncio.TimerHandle | None = None
    outcome: str | None = None
    queued: bool = False
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ended_reported: bool = False
    preview_agent: int | None = None  # preview: the agent who dials (their phone is rung first)
    amd_audio: Path | None = None  # where answering-machine detection writes the audio it analysed
    decided_at: float | None = None  # when it decided (the loop's clock): the 2-second rule's start


class CampaignCalls:
    """The campaign calls of one node (see the module docstring)."""

    def __init__(
        self, endpoint: Endpoint, setup: CallSetup, lines: TrunkLines, dialler: Dialler, calls: VoiceCalls
    ) -> None:
        self.endpoint = endpoint
        self.setup = setup
        self.media = setup.media
        self.registrar = setup.registrar
        self.lines = lines
        self.dialler = dialler
        self.calls = calls
        self.events: CampaignCallEvents | None = None
        self.records = OutboundCallRecords(calls.contact_center)
        self._by_interaction: dict[int, _CampaignCall] = {}
        self._agent_legs: dict[str, _CampaignCall] = {}  # Call-ID of our INVITE to the agent's phone
        self._live: dict[int, set[_CampaignCall]] = {}  # campaign -> calls in progress
        # INVITEs sent since start (for bench/ and the logs).
        self.dialled = 0
        # Set by the voice service once it serves (VoiceService._serve), cleared by stop().
        self.serving = False

    # ------------------------------------------------------------------ the DialPort
    def room(self, trunk: str | None) -> int:
        try:
            line = self.lines.line(trunk)
        except (Conflict, NotFound):
            return 0
        return max(0, line.trunk.max_calls - line.active_calls())

    def live(self, campaign_id: int) -> LiveCalls:
        calls = self._live.get(campaign_id, ())
        dialling = waiting = talking = 0
        for call in calls:
            if call.state is CampaignCallState.DIALLING:
                dialling += 1
            elif call.state is CampaignCallState.BRIDGED:
                talking += 1
            elif call.state is not CampaignCallState.ENDED:
                waiting += 1
        return LiveCalls(dialling=dialling, waiting=waiting, talking=talking)

    def place(self, order: DialOrder) -> None:
        call = _CampaignCall(order)
        self._live.setdefault(order.campaign_id, set()).add(call)
        self._by_interaction[order.interaction_id] = call
        self.endpoint.spawn(self._dial(call))

    def ready(self) -> bool:
        # The voice channel serves (address bound, media and trunks started): not a standby voice node
        # waiting to take the address over, nor one stopping.
        return self.serving

    def phone_registered(self, agent_id: int) -> bool:
        return bool(self.registrar.bindings(agent_id, self.endpoint.clock()))

    def place_preview(self, order: DialOrder, agent_id: int) -> None:
        """Preview: ring the agent's phone first; when they pick up, dial the contact and bridge."""
        call = _CampaignCall(order, preview_agent=agent_id)
        self._live.setdefault(order.campaign_id, set()).add(call)
        self._by_interaction[order.interaction_id] = call
        self.endpoint.spawn(self._preview(call, agent_id))

    async def _preview(self, call: _CampaignCall, agent_id: int) -> None:
        order = call.order
        await self._quietly(self.records.agent_on_call(agent_id, True))
        bindings = self.registrar.bindings(agent_id, self.endpoint.clock())
        if not bindings:
            self._finish(call, "failed", None)
            return
        call.media = await self.media.open_session(lambda digit: None)
        binding = bindings[0]
        shown = NameAddress(parse_uri(f"sip:{order.phone}@{self.endpoint.host}"), f"Call to {order.phone}")
        sdp, invite = self.setup.invite_phone(
            binding, call.media, f"preview-{order.attempt_id}", (PCMU, PCMA, TELEPHONE_EVENT), shown
        )
        leg = _AgentLeg(agent_id, invite, binding.source, sdp)
        call.agent = leg
        self._agent_legs[invite.call_id] = call
        leg.key = self.endpoint.request(
            invite, binding.source, lambda resp: self._preview_agent(call, leg, resp)
        )

    def _preview_agent(self, call: _CampaignCall, leg: _AgentLeg, response: Response | None) -> None:
        if response is not None and response.is_provisional:
            return
        if response is None or not response.is_success:
            self._agent_legs.pop(leg.invite.call_id, None)
            call.agent = None
            self._finish(call, "failed", None)  # the agent's phone did not answer: nothing was dialled
            return
        leg.dialog = self.endpoint.ack_answer(leg.invite, response, leg.destination)
        leg.answered = True
        if call.state is CampaignCallState.ENDED or call.media is None:
            self._bye_agent(leg)
            return
        try:
            call.media.set_agent(
                apply_answer(leg.offer, parse_sdp(response.body)), signalling_ip=leg.destination.host
            )
        except ProtocolError:
            self._bye_agent(leg)
            call.agent = None
            self._finish(call, "failed", None)
            return
        self.endpoint.spawn(self._dial(call))

    def owns(self, interaction_id: int) -> bool:
        return interaction_id in self._by_interaction

    def stop(self) -> None:
        self.serving = False
        for call in list(self._by_interaction.values()):
            self._hang_up(call)

    # ------------------------------------------------------------------ dialling
    async def _dial(self, call: _CampaignCall) -> None:
        order = call.order
        try:
            if call.media is None:
                call.media = await self.media.open_session(lambda digit: self._digit(call, digit))
            call.leg = await self.dialler.dial_out(
                order.phone,
                trunk=order.trunk,
                caller_id=order.caller_id or None,
                media=call.media,
                codecs=(PCMU, PCMA, TELEPHONE_EVENT),
                on_answer=lambda leg: self._answered(call),
                on_end=lambda leg: self._leg_ended(call),
                ring_timeout_s=order.ring_timeout_s,
            )
        except (Conflict, InvalidInput, NotFound) as exc:
            log.info("campaign call to %s not placed: %s", order.phone, exc)
            status = 503 if isinstance(exc, Conflict) else 404
            self._finish(call, "failed", status)
            return
        except Exception:
            log.exception("campaign call to %s failed to start", order.phone)
            self._finish(call, "failed", 500)
            return
        self.dialled += 1
        if call.state is CampaignCallState.ENDED:
            call.leg.hang_up()

    def _answered(self, call: _CampaignCall) -> None:
        leg = call.leg
        if (
            call.state is not CampaignCallState.DIALLING
            or leg is None
            or leg.answer is None
            or call.media is None
        ):
            return
        # The dialler's leg owns no media of its own here: the caller side of our session is the carrier.
        call.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        events = self.events
        assert events is not None
        self.endpoint.spawn(self._quietly(events.answered(call.order)))
        if call.order.amd is not None and call.preview_agent is None:
            self._detect(call, call.order.amd)
            return
        self._proceed(call)

    def _proceed(self, call: _CampaignCall) -> None:
        """The answered call (a person, or AMD not sure) goes on: to an agent, or the notification."""
        events = self.events
        assert events is not None and call.media is not None
        if call.preview_agent is not None and call.agent is not None:
            # Preview: the agent is on the line already.
            call.media.bridge()
            call.state = CampaignCallState.BRIDGED
            call.outcome = "answered"
            self.setup.record_media(call.media, call.order.interaction_id, self._quietly)
            self.endpoint.spawn(self._quietly(self.records.answered(call.order.interaction_id)))
            self.endpoint.spawn(self._quietly(events.connected(call.order, call.preview_agent)))
            return
        if call.order.mode == "notification":
            call.state = CampaignCallState.MESSAGE
            self.endpoint.spawn(self._notify(call))
            return
        call.state = CampaignCallState.WAITING
        call.media.play_hold_music()
        # The 2-second rule runs from the answer (with AMD, from its decision), whatever the store or
        # the ACD take.
        loop = asyncio.get_running_loop()
        wait = call.order.agent_wait_s
        if call.decided_at is not None:
            wait = max(0.0, wait - (loop.time() - call.decided_at))  # the decision's write took some
        call.timer = loop.call_later(wait, self._no_agent, call)
        self.endpoint.spawn(self._queue(call))

    # ------------------------------------------------------------------ answering-machine detection
    def _detect(self, call: _CampaignCall, parameters: AmdParameters) -> None:
        assert call.media is not None
        call.state = CampaignCallState.DETECTING
        audio = None
        if self.setup.recordings_dir is not None:
            audio = self.setup.recordings_dir / f"{call.order.interaction_id}-{AMD_AUDIO_SUFFIX}.wav"
            call.amd_audio = audio
        leave_message = call.order.amd_machine_action is AmdMachineAction.MESSAGE
        call.media.detect_answering_machine(
            parameters,
            audio,
            partial(self._amd_decided, call),
            partial(self._greeting_ended, call) if leave_message else None,
        )

    def _amd_decided(self, call: _CampaignCall, result: AmdResult) -> None:
        if not call.ended_reported:
            call.decided_at = asyncio.get_running_loop().time()
            self.endpoint.spawn(self._after_amd(call, result))

    async def _after_amd(self, call: _CampaignCall, result: AmdResult) -> None:
        """The decision is committed first (with the audio, listed in the call's recordings), then the
        call goes on: the writes that follow (the call's recording, its end) never race it."""
        audio = call.amd_audio
        assert self.events is not None
        await self._quietly(
            self.events.amd_decided(call.order, result, None if audio is None else str(audio))
        )
        if call.state is not CampaignCallState.DETECTING:
            return
        log.info(
            "campaign call %s: AMD %s (%s, %d ms)",
            call.order.interaction_id, result.decision, result.cause, result.ms,
        )  # fmt: skip
        if result.decision is not AmdDecision.MACHINE:
            self._proceed(call)
            return
        call.outcome = "voicemail"
        if call.order.amd_machine_action is AmdMachineAction.MESSAGE:
            call.state = CampaignCallState.MESSAGE  # the message once the greeting is over
        else:
            self._hang_up(call)

    def _greeting_ended(self, call: _CampaignCall) -> None:
        if (
            call.state is CampaignCallState.MESSAGE
            and call.outcome == "voicemail"
            and not call.ended_reported
        ):
            self.endpoint.spawn(self._play_then_hang_up(call, on_machine=True))

    async def _queue(self, call: _CampaignCall) -> None:
        assert self.events is not None
        try:
            await self.events.queue(call.order)
        except Exception:
            log.exception("queueing campaign call %s failed", call.order.interaction_id)
            if call.state is CampaignCallState.WAITING:
                self._no_agent(call)
            return
        call.queued = True
        if call.state is CampaignCallState.ENDED or call.state is CampaignCallState.MESSAGE:
            await self._quietly(self.events.withdraw(call.order))  # ended while it was being queued

    def _no_agent(self, call: _CampaignCall) -> None:
        """No agent took the answered call in time: it is abandoned and hears the recorded message."""
        call.timer = None
        if call.state is not CampaignCallState.WAITING and call.state is not CampaignCallState.RINGING_AGENT:
            return
        call.outcome = "abandoned"
        call.state = CampaignCallState.MESSAGE
        self._cancel_agent(call)
        assert self.events is not None
        if call.queued:
            call.queued = False
            self.endpoint.spawn(self._quietly(self.events.withdraw(call.order)))
        self.endpoint.spawn(self._play_then_hang_up(call))

    async def _play_then_hang_up(self, call: _CampaignCall, *, on_machine: bool = False) -> None:
        """The campaign's recorded message, then the end: to an abandoned call, or left on an
        answering machine (``on_machine``: noted on the call as ``amd_message_left``)."""
        assert self.events is not None and call.media is not None
        pcm = b""
        try:
            pcm = (await self.events.message_audio(call.order.campaign_id))[
                : int(MAX_MESSAGE_S * SAMPLE_RATE) * 2
            ]
        except Exception:
            log.exception("the campaign's message could not be read")
        if pcm and call.state is CampaignCallState.MESSAGE:
            call.media.play_prompt(pcm)
            await asyncio.sleep(len(pcm) / 2 / SAMPLE_RATE)
            if on_machine and call.state is CampaignCallState.MESSAGE:
                # Committed before the hang-up, whose end of the attempt writes the call's record too.
                await self._quietly(self.calls.annotate(call.order.interaction_id, amd_message_left=True))
        else:
            log.warning("campaign %s has no recorded message to play", call.order.campaign_id)
        self._hang_up(call)

    async def _notify(self, call: _CampaignCall) -> None:
        """Notification: the message, then 1 (confirmed) or 2 (an operator, through the queue)."""
        assert self.events is not None and call.media is not None
        pcm = await self.events.message_audio(call.order.campaign_id)
        choice = None
        for _ in range(NOTIFICATION_REPEATS):
            if call.state is not CampaignCallState.MESSAGE:
                return
            if pcm:
                call.media.play_prompt(pcm)
            try:
                digit = await asyncio.wait_for(call.digits.get(), len(pcm) / 2 / SAMPLE_RATE + DIGIT_WAIT_S)
            except TimeoutError:
                continue
            if digit in ("1", "2"):
                choice = digit
                break
        if call.state is not CampaignCallState.MESSAGE:
            return
        if choice == "1":
            call.outcome = "confirmed"
            await self._quietly(self.events.confirmation(call.order, "confirmed"))
            self._hang_up(call)
        elif choice == "2":
            call.outcome = "operator"
            await self._quietly(self.events.confirmation(call.order, "operator"))
            call.state = CampaignCallState.WAITING
            call.media.play_hold_music()
            await self._queue(call)
        else:
            call.outcome = "listened"
            self._hang_up(call)

    def _digit(self, call: _CampaignCall, digit: str) -> None:
        if call.state is CampaignCallState.MESSAGE:
            call.digits.put_nowait(digit)

    # ------------------------------------------------------------------ the ACD's offers
    def on_acd_outputs(self, outputs: list[r.Output]) -> None:
        """The ACD's committed outputs about our calls (a listener of ``AcdService``)."""
        for o in outputs:
            contact_id = getattr(o, "contact_id", None)
            if contact_id is None:
                continue
            call = self._by_interaction.get(int(contact_id))
            if call is None:
                continue
            if isinstance(o, r.OfferContact):
                self._ring_agent(call, o)
            elif isinstance(o, r.WithdrawOffer | r.OfferTimedOut):
                if (
                    call.agent is not None
                    and str(call.agent.agent_id) in o.agent_ids
                    and not call.agent.answered
                ):
                    self._cancel_agent(call)
                    if call.state is CampaignCallState.RINGING_AGENT:
                        call.state = CampaignCallState.WAITING
            elif isinstance(o, r.ContactFinished) and call.state is CampaignCallState.BRIDGED:
                call.outcome = call.outcome or "answered"
                self._hang_up(call)  # "End" on the desk

    def _ring_agent(self, call: _CampaignCall, offer: r.OfferContact) -> None:
        if call.state is not CampaignCallState.WAITING or call.media is None or call.agent is not None:
            return
        now = self.endpoint.clock()
        for agent in offer.agent_ids:
            agent_id = int(agent)
            bindings = self.registrar.bindings(agent_id, now)
            if not bindings:
                self.endpoint.spawn(
                    self._quietly(self.calls.offer_declined(call.order.interaction_id, agent_id))
                )
                continue
            binding = bindings[0]
            shown = NameAddress(parse_uri(f"sip:{call.order.phone}@{self.endpoint.host}"), call.order.phone)
            sdp, invite = self.setup.invite_phone(
                binding, call.media, f"campaign-{call.order.attempt_id}", (PCMU, PCMA, TELEPHONE_EVENT), shown
            )
            leg = _AgentLeg(agent_id, invite, binding.source, sdp)
            call.agent = leg
            call.state = CampaignCallState.RINGING_AGENT
            self._agent_legs[invite.call_id] = call
            leg.key = self.endpoint.request(invite, binding.source, partial(self._agent_response, call, leg))
            return

    def _agent_response(self, call: _CampaignCall, leg: _AgentLeg, response: Response | None) -> None:
        if response is not None and response.is_provisional:
            return
        if response is None or not response.is_success:
            self._agent_legs.pop(leg.invite.call_id, None)
            if call.agent is leg:
                call.agent = None
                if call.state is CampaignCallState.RINGING_AGENT:
                    call.state = CampaignCallState.WAITING
                    # The caller keeps their place; the ACD offers the next agent.
                    self.endpoint.spawn(
                        self._quietly(self.calls.offer_declined(call.order.interaction_id, leg.agent_id))
                    )
            return
        leg.dialog = self.endpoint.ack_answer(leg.invite, response, leg.destination)
        leg.answered = True
        if call.state is not CampaignCallState.RINGING_AGENT or call.agent is not leg or call.media is None:
            self._bye_agent(leg)  # too late: the call was abandoned or ended meanwhile
            return
        try:
            agent_media = apply_answer(leg.offer, parse_sdp(response.body))
        except ProtocolError:
            self._bye_agent(leg)
            call.agent = None
            call.state = CampaignCallState.WAITING
            self.endpoint.spawn(
                self._quietly(self.calls.offer_declined(call.order.interaction_id, leg.agent_id))
            )
            return
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        call.media.set_agent(agent_media, signalling_ip=leg.destination.host)
        call.media.bridge()
        call.state = CampaignCallState.BRIDGED
        call.outcome = call.outcome or "answered"
        assert self.events is not None
        self.setup.record_media(call.media, call.order.interaction_id, self._quietly)
        self.endpoint.spawn(self._quietly(self.calls.offer_answered(call.order.interaction_id, leg.agent_id)))
        self.endpoint.spawn(self._quietly(self.events.connected(call.order, leg.agent_id)))

    def _cancel_agent(self, call: _CampaignCall) -> None:
        leg = call.agent
        if leg is None:
            return
        call.agent = None
        if leg.dialog is not None:
            self._bye_agent(leg)
        elif leg.answered:
            self._agent_legs.pop(leg.invite.call_id, None)  # the phone hung up already
        elif leg.key is not None:
            # RFC 3261 §9.1: a CANCEL before any provisional is held by the transaction layer's peer;
            # a crossing 2xx is ACKed and BYEd in _agent_response.
            self.endpoint.request(build_cancel(leg.invite), leg.destination, None)

    def _bye_agent(self, leg: _AgentLeg) -> None:
        if leg.dialog is not None:
            self.endpoint.request(leg.dialog.bye(), leg.destination, None)
            leg.dialog = None
        self._agent_legs.pop(leg.invite.call_id, None)

    # ------------------------------------------------------------------ requests of our agent legs
    def claim_request(self, event: RequestReceived) -> bool:
        request = event.request
        call = self._agent_legs.get(request.call_id)
        if call is None or request.method == "ACK":
            return False
        leg = call.agent
        endpoint = self.endpoint
        if leg is None or leg.dialog is None or not leg.dialog.matches_request(request):
            endpoint.respond(request, 481)
            return True
        leg.dialog.receive_request(request)
        if request.method == "BYE":
            endpoint.respond(request, 200)
            leg.dialog = None
            self._agent_legs.pop(request.call_id, None)
            call.outcome = call.outcome or "answered"
            self._hang_up(call)
        elif request.method == "INVITE":
            leg.offer = self.setup.answer_reinvite(
                request, leg.offer, call.media, leg.destination.transport, agent_side=True
            )
        else:
            endpoint.respond(request, 200 if request.method in ("OPTIONS", "UPDATE", "INFO") else 405)
        return True

    def claim_response(self, response: Response) -> bool:
        call = self._agent_legs.get(response.call_id)
        leg = None if call is None else call.agent
        if leg is not None and leg.dialog is not None and response.cseq.method == "INVITE":
            self.endpoint.request(leg.dialog.ack(response.cseq.seq), leg.destination, None)
            return True
        return False

    # ------------------------------------------------------------------ the end
    def _hang_up(self, call: _CampaignCall) -> None:
        if call.leg is not None and not call.leg.is_over:
            call.leg.hang_up()  # on_end → _leg_ended
        else:
            self._leg_ended(call)

    def _leg_ended(self, call: _CampaignCall) -> None:
        leg = call.leg
        if call.ended_reported:
            return
        state = call.state
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        if state is CampaignCallState.DIALLING:
            outcome = outcome_of_status(leg.status if leg is not None else None)
        elif state in (
            CampaignCallState.DETECTING,
            CampaignCallState.WAITING,
            CampaignCallState.RINGING_AGENT,
        ):
            outcome = call.outcome or "hung_up"  # the called party left before an agent came
        else:
            outcome = call.outcome or ("listened" if call.order.mode == "notification" else "answered")
        if call.queued and state is not CampaignCallState.BRIDGED and self.events is not None:
            self.endpoint.spawn(self._quietly(self.events.withdraw(call.order)))
        if state is CampaignCallState.BRIDGED and call.preview_agent is None:
            self.endpoint.spawn(self._quietly(self.calls.call_ended(call.order.interaction_id)))
        self._cancel_agent(call)
        self._finish(call, outcome, leg.status if leg is not None else None)

    def _finish(self, call: _CampaignCall, outcome: str, status: int | None) -> None:
        if call.ended_reported:
            return
        call.ended_reported = True
        call.state = CampaignCallState.ENDED
        self._by_interaction.pop(call.order.interaction_id, None)
        live = self._live.get(call.order.campaign_id)
        if live is not None:
            live.discard(call)
        if call.media is not None:
            self.endpoint.spawn(call.media.close())
        if self.events is not None:
            self.endpoint.spawn(self._report_end(call, outcome, status))

    async def _report_end(self, call: _CampaignCall, outcome: str, status: int | None) -> None:
        assert self.events is not None
        if call.preview_agent is not None:
            # The interaction ends (done or failed) and the agent is back in routing.
            await self._quietly(self.records.ended(call.order.interaction_id, status=status))
            await self._quietly(self.records.agent_on_call(call.preview_agent, False))
        call_id = call.leg.call_id if call.leg is not None else None
        await self._quietly(self.events.ended(call.order, outcome, status, call_id=call_id))

    async def _quietly(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("a campaign call's step failed")
