"""Calls out through a carrier trunk: the INVITE, the carrier's digest challenge, 18x/2xx/4xx-6xx,
ACK, CANCEL and BYE. :meth:`Dialler.dial_out` returns the :class:`OutboundLeg` handle at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from frontoffice.domain.exceptions import Conflict, InvalidInput

from .call_setup import CallSetup
from .endpoint import Endpoint
from .media import MediaSession
from .offers import sdp_session_id
from .sip import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Destination,
    Dialog,
    DigestError,
    NameAddress,
    NegotiatedMedia,
    ProtocolError,
    Request,
    Response,
    SessionDescription,
    TransactionKey,
    apply_answer,
    authorize_request,
    build_cancel,
    build_offer,
    build_request,
    parse_sdp,
    parse_uri,
)
from .trunks import InvalidNumber, Trunk, TrunkLines, dial_string, normalize_number

__all__ = ["DEFAULT_RING_TIMEOUT_S", "Dialler", "LegCallback", "OutboundLeg", "OutboundLegState"]

log = logging.getLogger("frontoffice.voice.trunks")

# How long an outbound call may ring before we CANCEL it (carriers give up at 60-180 s themselves).
DEFAULT_RING_TIMEOUT_S = 60.0
# Answer at most two challenges per INVITE: one, plus one more if the carrier says our nonce was stale.
MAX_INVITE_CHALLENGES = 2

LegCallback = Callable[["OutboundLeg"], None]


class OutboundLegState(enum.StrEnum):
    CALLING = "calling"
    EARLY = "early"  # a provisional (18x) came back
    ANSWERED = "answered"
    ENDED = "ended"  # answered, then hung up
    FAILED = "failed"  # never answered: ``status`` says why


@dataclass(eq=False)
class OutboundLeg:
    """One call we place through a trunk (we are its UAC). Returned by ``VoiceService.dial_out``.

    ``state`` (:class:`OutboundLegState`): ``calling`` → ``early`` (18x) → ``answered`` → ``ended``; or
    ``failed`` (``status`` says why: the carrier's final response, 408 for no response, 487 when we
    cancelled). ``answer`` is the
    negotiated media once answered (``early`` for early media).
    """

    number: str
    trunk: str
    call_id: str
    invite: Request
    destination: Destination
    offer: SessionDescription
    media: MediaSession | None = None
    owns_media: bool = False
    state: OutboundLegState = OutboundLegState.CALLING
    status: int | None = None
    reason: str = ""
    answer: NegotiatedMedia | None = None
    early: NegotiatedMedia | None = None
    dialog: Dialog | None = None
    on_progress: LegCallback | None = None
    on_answer: LegCallback | None = None
    on_end: LegCallback | None = None
    key: TransactionKey | None = None
    challenges: int = 0
    provisional: bool = False
    cancel_requested: bool = False
    cancel_sent: bool = False
    ring_timer: asyncio.TimerHandle | None = None
    _owner: Dialler | None = field(default=None, repr=False)
    _answered: asyncio.Future[bool] | None = field(default=None, repr=False)
    _ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def is_answered(self) -> bool:
        return self.state is OutboundLegState.ANSWERED

    @property
    def is_over(self) -> bool:
        return self.state is OutboundLegState.ENDED or self.state is OutboundLegState.FAILED

    async def wait_answered(self) -> bool:
        """True once the called party answers; False when the call fails or is cancelled."""
        assert self._answered is not None
        return await asyncio.shield(self._answered)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def hang_up(self) -> None:
        """CANCEL while ringing, BYE once answered; nothing when already over."""
        if self._owner is not None:
            self._owner.hang_up(self)


class Dialler:
    """Places and tracks the calls that go out through the trunks."""

    def __init__(
        self,
        endpoint: Endpoint,
        setup: CallSetup,
        lines: TrunkLines,
        *,
        region: str = "RU",
        ring_timeout_s: float = DEFAULT_RING_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self.setup = setup
        self.media = setup.media
        self.lines = lines
        self.region = region
        self.ring_timeout_s = ring_timeout_s
        self._legs: dict[str, OutboundLeg] = {}  # carrier leg Call-ID

    def stop(self) -> None:
        for leg in list(self._legs.values()):
            self.hang_up(leg)

    def claim_request(self, request: Request) -> bool:
        """Handle a request of one of our legs (the carrier's BYE, re-INVITE ...); True if it was one."""
        leg = self._legs.get(request.call_id)
        if leg is None or request.method == "ACK":
            return False
        self._leg_request(leg, request)
        return True

    def claim_response(self, response: Response) -> bool:
        """A 2xx retransmitted after its INVITE transaction ended: ACK it again (§13.2.2.4)."""
        leg = self._legs.get(response.call_id)
        if leg is not None and leg.dialog is not None and response.cseq.method == "INVITE":
            self.endpoint.request(leg.dialog.ack(response.cseq.seq), leg.destination, None)
            return True
        return False

    async def dial_out(
        self,
        number: str,
        *,
        trunk: str | None = None,
        caller_id: str | None = None,
        offer: SessionDescription | None = None,
        media: MediaSession | None = None,
        codecs: Sequence[Codec] = (PCMU, PCMA, TELEPHONE_EVENT),
        on_progress: LegCallback | None = None,
        on_answer: LegCallback | None = None,
        on_end: LegCallback | None = None,
        ring_timeout_s: float | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> OutboundLeg:
        """Call ``number`` through ``trunk`` (the first trunk by default) and return the leg at once.

        Our SDP is ``offer`` when given (e.g. a port of an existing call's relay); else the caller
        side of ``media``; else a media session opened here, owned and closed by the leg.
        Raises :class:`InvalidInput` for a number that is not a phone number, :class:`Conflict` when
        the trunk is at its limit or no trunk is configured, :class:`NotFound` for an unknown trunk.
        """
        line = self.lines.line(trunk)
        try:
            e164 = normalize_number(number, line.trunk.region or self.region)
        except InvalidNumber:
            raise InvalidInput("Not a phone number", error_id="invalid-phone", number=number[:40]) from None
        if not line.has_room():
            raise Conflict("The trunk is at its call limit", error_id="trunk-busy", trunk=line.trunk.name)
        owns_media = False
        if offer is None:
            if media is None:
                media = await self.media.open_session(lambda digit: None)
                owns_media = True
            offer = build_offer(
                address=media.address,
                port=media.caller_port,
                session_id=sdp_session_id(f"{e164}-{id(media)}"),
                codecs=codecs,
            )
        invite = self._carrier_invite(line.trunk, e164, caller_id, offer, extra_headers)
        loop = asyncio.get_running_loop()
        leg = OutboundLeg(
            number=e164,
            trunk=line.trunk.name,
            call_id=invite.call_id,
            invite=invite,
            destination=self.lines.destination(line.trunk),
            offer=offer,
            media=media,
            owns_media=owns_media,
            on_progress=on_progress,
            on_answer=on_answer,
            on_end=on_end,
            _owner=self,
            _answered=loop.create_future(),
        )
        line.outbound.add(leg.call_id)
        self._legs[leg.call_id] = leg
        timeout = self.ring_timeout_s if ring_timeout_s is None else ring_timeout_s
        leg.ring_timer = loop.call_later(timeout, self._ring_timeout, leg)
        log.info("calling %s through trunk %s", e164, line.trunk.name)
        self._send_invite(leg)
        return leg

    def _carrier_invite(
        self,
        trunk: Trunk,
        e164: str,
        caller_id: str | None,
        offer: SessionDescription,
        extra_headers: Sequence[tuple[str, str]],
    ) -> Request:
        endpoint = self.endpoint
        transport = trunk.sip_transport
        port = "" if trunk.port == 5060 else f":{trunk.port}"
        target = parse_uri(f"sip:{dial_string(e164, trunk)}@{trunk.host}{port}")
        uri = target if transport == "UDP" else target.with_param("transport", transport.lower())
        domain = trunk.from_domain or trunk.host
        shown = caller_id or trunk.caller_id
        from_user = (shown or trunk.username or "anonymous").replace(" ", "")
        extra = list(extra_headers)
        if shown:
            # RFC 3325: the identity we assert; carriers that trust the trunk show this number.
            extra.append(("P-Asserted-Identity", f"<sip:{shown}@{domain}>"))
        return build_request(
            "INVITE",
            uri,
            from_addr=NameAddress(parse_uri(f"sip:{from_user}@{domain}")),
            to_addr=NameAddress(target),
            via=endpoint.via(transport),
            contact=endpoint.contact(transport),
            body=offer.serialize(),
            content_type="application/sdp",
            extra_headers=extra,
        )

    def _send_invite(self, leg: OutboundLeg) -> None:
        leg.key = self.endpoint.request(
            leg.invite, leg.destination, lambda response: self._leg_response(leg, response)
        )

    def _leg_response(self, leg: OutboundLeg, response: Response | None) -> None:
        endpoint = self.endpoint
        if response is None:
            self._leg_failed(leg, 408, "no response from the carrier")
            self._legs.pop(leg.call_id, None)
            return
        if response.is_provisional:
            if response.status == 100:
                return
            leg.provisional = True
            if leg.cancel_requested:
                self._send_cancel(leg)  # held back until now (§9.1)
                return
            if response.body and leg.early is None:
                with contextlib.suppress(ProtocolError):
                    leg.early = apply_answer(leg.offer, parse_sdp(response.body))
            leg.state = OutboundLegState.EARLY
            leg.status = response.status
            if leg.on_progress is not None:
                leg.on_progress(leg)
            return
        if leg.cancel_requested and not response.is_success:
            self._legs.pop(leg.call_id, None)  # the 487 to our CANCEL (or a crossing final answer)
            return
        if response.status in (401, 407) and self._answer_challenge(leg, response):
            return
        if not response.is_success:
            self._leg_failed(leg, response.status, response.reason)
            return
        # 2xx: ACK at once (§13.2.2.4), then decide whether we still want the call.
        leg.dialog = endpoint.ack_answer(leg.invite, response, leg.destination)
        if leg.is_over or leg.cancel_requested:
            self._bye(leg)
            self._forget_later(leg)
            return
        try:
            leg.answer = apply_answer(leg.offer, parse_sdp(response.body))
        except ProtocolError:
            leg.state = OutboundLegState.ANSWERED
            self._bye(leg)
            self._leg_failed(leg, 488, "no usable SDP answer")
            return
        if leg.ring_timer is not None:
            leg.ring_timer.cancel()
        leg.state = OutboundLegState.ANSWERED
        leg.status = response.status
        if leg.owns_media and leg.media is not None:
            leg.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        assert leg._answered is not None
        if not leg._answered.done():
            leg._answered.set_result(True)
        if leg.on_answer is not None:
            leg.on_answer(leg)

    def _answer_challenge(self, leg: OutboundLeg, response: Response) -> bool:
        line = self.lines.line(leg.trunk)
        trunk = line.trunk
        if not trunk.digest_username or trunk.password is None:
            return False
        leg.challenges += 1
        header = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
        stale = any("stale=true" in v.lower().replace(" ", "") for v in response.headers.get_all(header))
        if leg.challenges > MAX_INVITE_CHALLENGES or (leg.challenges > 1 and not stale):
            return False
        if trunk.realm is not None and not any(
            f'realm="{trunk.realm}"' in v or f"realm={trunk.realm}" in v
            for v in response.headers.get_all(header)
        ):
            return False
        try:
            retry = authorize_request(
                leg.invite, response, username=trunk.digest_username, password=trunk.password
            )
        except DigestError:
            return False
        leg.invite = retry
        self._send_invite(leg)
        return True

    def _leg_failed(self, leg: OutboundLeg, status: int, reason: str) -> None:
        if leg.is_over:
            return
        leg.state = OutboundLegState.FAILED
        leg.status = status
        leg.reason = leg.reason or reason
        self._leg_over(leg)

    def _leg_over(self, leg: OutboundLeg) -> None:
        if leg.ring_timer is not None:
            leg.ring_timer.cancel()
        self._legs.pop(leg.call_id, None)
        self.lines.release(leg.call_id)
        if leg._answered is not None and not leg._answered.done():
            leg._answered.set_result(False)
        leg._ended.set()
        if leg.owns_media and leg.media is not None:
            self.endpoint.spawn(leg.media.close())
        if leg.on_end is not None:
            leg.on_end(leg)

    def _ring_timeout(self, leg: OutboundLeg) -> None:
        if leg.state is OutboundLegState.CALLING or leg.state is OutboundLegState.EARLY:
            leg.reason = "no answer"
            self.hang_up(leg)

    def hang_up(self, leg: OutboundLeg) -> None:
        if leg.is_over:
            return
        if leg.state is OutboundLegState.ANSWERED:
            leg.state = OutboundLegState.ENDED
            self._bye(leg)
            self._leg_over(leg)
            return
        leg.cancel_requested = True
        if leg.provisional:
            self._send_cancel(leg)
        # Else: RFC 3261 §9.1 — no CANCEL before a provisional; it goes out when one arrives, and a
        # crossing 2xx is ACKed and BYEd. The leg counts as over for its owner from now on.
        leg.reason = leg.reason or "cancelled"
        self._leg_failed(leg, 487, leg.reason)
        self._legs[leg.call_id] = leg  # keep matching the carrier's late responses and requests

    def _send_cancel(self, leg: OutboundLeg) -> None:
        if leg.key is None or leg.cancel_sent:
            return
        leg.cancel_sent = True
        self.endpoint.request(build_cancel(leg.invite), leg.destination, None)
        self._forget_later(leg)

    def _forget_later(self, leg: OutboundLeg) -> None:
        """Stop matching a finished leg once the carrier can no longer retransmit to it (64*T1)."""
        asyncio.get_running_loop().call_later(
            self.endpoint.layer.timers.timeout, self._legs.pop, leg.call_id, None
        )

    def _bye(self, leg: OutboundLeg) -> None:
        if leg.dialog is not None:
            self.endpoint.request(leg.dialog.bye(), leg.destination, None)

    def _leg_request(self, leg: OutboundLeg, request: Request) -> None:
        """A request from the carrier inside our outbound call."""
        endpoint = self.endpoint
        dialog = leg.dialog
        if dialog is None or not dialog.matches_request(request):
            endpoint.respond(request, 481)
            return
        # RFC 3261 §12.2.2: a request with a lower CSeq raises DialogError before anything is
        # answered or changed; the endpoint answers it 500 and the call goes on.
        dialog.receive_request(request)
        if request.method == "BYE":
            endpoint.respond(request, 200)
            if not leg.is_over:
                leg.state = OutboundLegState.ENDED
                leg.reason = "carrier hung up"
                self._leg_over(leg)
        elif request.method == "INVITE":
            # The carrier's hold, resume, moved media or session refresh (the relay's caller side).
            media = leg.media if leg.answer is not None else None
            leg.offer = self.setup.answer_reinvite(request, leg.offer, media, leg.destination.transport)
        elif request.method == "UPDATE":
            # RFC 3311: a refresh (no SDP) or a new offer, answered like a re-INVITE's.
            media = leg.media if leg.answer is not None else None
            leg.offer = self.setup.answer_update(request, leg.offer, media, leg.destination.transport)
        elif request.method in ("OPTIONS", "INFO"):
            endpoint.respond(request, 200)
        else:
            endpoint.respond(request, 405)
