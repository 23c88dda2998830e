"""The carrier side of the B2BUA: who may call in, registrations out, calls out through a trunk.

:class:`Trunking` is a part of :class:`~frontoffice.channels.voice.service.VoiceService` (it sends
through the service's transaction layer and transports) with one job: everything that touches a
carrier trunk.

- **Inbound screening** (:meth:`Trunking.screen_invite`): an INVITE from a trunk's address is a carrier
  call (subject to the trunk's ``max_calls``: 503 with Retry-After beyond it) and may only reach entry
  points. Any other source must authenticate with an agent's SIP account (digest, like REGISTER) and
  have a registered phone; it may then call an entry point or, through a trunk, an external number.
  **Toll-fraud rule**: nothing unauthenticated ever leaves through a trunk — a carrier call to a
  number that is not an entry point gets 404, an unauthenticated one 401/403.
- **Registrations** at carriers that want them (:class:`~.sip.RegistrationClient`): refreshed before
  expiry, retried with back-off, state in :meth:`Trunking.statuses`.
- **Calls out** (:meth:`Trunking.dial_out`): an INVITE to the carrier, its 401/407 answered with digest,
  18x/2xx/4xx-6xx handled, ACK and BYE sent; the returned :class:`OutboundLeg` is the handle.
- **Click-to-call** (:meth:`Trunking.click_to_call`): ring the agent's phone first, then dial the
  customer and bridge; and **phone-dialled** calls (an authenticated phone INVITEs an external number).
  Both are outbound interactions (:class:`~frontoffice.services.voice_outbound.OutboundCallRecords`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.services.voice_outbound import OutboundCall, OutboundCallRecords

from .media import MediaSession
from .offers import codecs_first, sdp_session_id
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
    RegistrationClient,
    Request,
    RequestReceived,
    Response,
    SessionDescription,
    TransactionKey,
    apply_answer,
    authorize_request,
    build_cancel,
    build_offer,
    build_request,
    new_tag,
    parse_sdp,
    parse_uri,
)
from .trunks import InvalidNumber, Trunk, TrunkLine, TrunkStatus, dial_string, normalize_number

if TYPE_CHECKING:
    from .service import VoiceService

__all__ = ["OutboundLeg", "Trunking"]

log = logging.getLogger("frontoffice.voice.trunks")

# RFC 3261 §21.5.4: a 503 may say when to come back; a trunk at its limit frees a slot within a call.
TRUNK_RETRY_AFTER_S = 30
# How long an outbound call may ring before we CANCEL it (carriers give up at 60-180 s themselves).
DEFAULT_RING_TIMEOUT_S = 60.0
# Answer at most two challenges per INVITE: one, plus one more if the carrier says our nonce was stale.
MAX_INVITE_CHALLENGES = 2
# Registration timer loop: how long to sleep at most between looks at the clients.
REGISTRATION_TICK_S = 30.0
# On shutdown, how long de-registrations may take before we stop waiting.
UNREGISTER_GRACE_S = 2.0
# Final responses from the carrier are passed on to a phone that dialled out as they are, except
# these, which concern our account at the carrier, not the phone: they become 503 (§21.5.4).
_NOT_THE_PHONES_BUSINESS = frozenset({401, 407, 403, 423})

LegCallback = Callable[["OutboundLeg"], None]


@dataclass(eq=False)
class OutboundLeg:
    """One call we place through a trunk (we are its UAC). Returned by ``VoiceService.dial_out``.

    ``state``: ``calling`` → ``early`` (18x) → ``answered`` → ``ended``; or ``failed`` (``status`` says
    why: the carrier's final response, 408 for no response, 487 when we cancelled). ``answer`` is the
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
    state: str = "calling"
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
    _owner: Trunking | None = field(default=None, repr=False)
    _answered: asyncio.Future[bool] | None = field(default=None, repr=False)
    _ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def is_answered(self) -> bool:
        return self.state == "answered"

    @property
    def is_over(self) -> bool:
        return self.state in ("ended", "failed")

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
    state: str = "dialling"  # dialling, bridged, ended
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
    state: str = "ringing_agent"  # ringing_agent, dialling, bridged, ended


class Trunking:
    """Trunk screening, registrations and outbound calls of one :class:`VoiceService`."""

    def __init__(
        self,
        service: VoiceService,
        trunks: Sequence[Trunk] = (),
        *,
        region: str = "RU",
        ring_timeout_s: float = DEFAULT_RING_TIMEOUT_S,
    ) -> None:
        self.service = service
        self.region = region
        self.ring_timeout_s = ring_timeout_s
        self.lines = [TrunkLine(t) for t in trunks]
        self.records = OutboundCallRecords(service.calls.contact_center)
        self._legs: dict[str, OutboundLeg] = {}  # carrier leg Call-ID
        self._phone_calls: dict[str, _PhoneCall] = {}  # phone's Call-ID
        self._click_calls: dict[str, _ClickCall] = {}  # Call-ID of our INVITE to the agent's phone
        self._addresses: dict[str, str] = {}  # trunk name -> resolved IP
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ================================================================ life cycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for line in self.lines:
            trunk = line.trunk
            try:
                infos = await loop.getaddrinfo(trunk.host, trunk.port, type=socket.SOCK_DGRAM)
                self._addresses[trunk.name] = str(infos[0][4][0])
            except OSError as exc:
                log.warning("trunk %s: cannot resolve %s: %s", trunk.name, trunk.host, exc)
                self._addresses[trunk.name] = trunk.host
            if trunk.registers and trunk.username and trunk.password:
                line.registration = self._registration_client(trunk)
        if any(line.registration is not None for line in self.lines):
            self._task = loop.create_task(self._registration_loop(), name="sip-trunk-registrations")

    async def stop(self) -> None:
        for leg in list(self._legs.values()):
            self.hang_up(leg)
        for phone_call in list(self._phone_calls.values()):
            self._end_phone_call(phone_call, from_phone=False, status=480)
        for click in list(self._click_calls.values()):
            self._end_click_call(click, status=None)
        while self._task is not None and not self._task.done():
            # Python 3.11's wait_for swallows a cancel arriving as its wait completes: repeat it.
            self._task.cancel()
            await asyncio.wait([self._task], timeout=0.1)
        waiting: list[asyncio.Future[None]] = []
        for line in self.lines:
            reg = line.registration
            if reg is None:
                continue
            request = reg.unregister()
            if request is not None:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                waiting.append(done)
                self._send_register(line, request, done)
        if waiting:
            await asyncio.wait(waiting, timeout=UNREGISTER_GRACE_S)

    def line(self, name: str | None) -> TrunkLine:
        """The named trunk, or the first one; :class:`NotFound` when there is none."""
        if not self.lines:
            raise Conflict("No SIP trunk is configured", error_id="no-trunk")
        if name is None:
            return self.lines[0]
        for line in self.lines:
            if line.trunk.name == name:
                return line
        raise NotFound("No such trunk", error_id="no-such-trunk", trunk=name)

    def _destination(self, trunk: Trunk) -> Destination:
        if trunk.sip_transport == "TLS":
            # TLS checks the certificate against the name we dialled, so keep the name.
            return Destination(trunk.host, trunk.port, "TLS")
        return Destination(self._addresses.get(trunk.name, trunk.host), trunk.port, trunk.sip_transport)

    def statuses(self) -> list[TrunkStatus]:
        now = self.service.clock()
        live = self.service._calls
        return [line.status(live, now) for line in self.lines]

    def line_for_source(self, host: str) -> TrunkLine | None:
        for line in self.lines:
            if line.trunk.accepts_from(host):
                return line
        return None

    # ================================================================ registrations
    def _registration_client(self, trunk: Trunk) -> RegistrationClient:
        service = self.service
        transport = trunk.sip_transport
        user = trunk.username or "frontoffice"
        contact = service._contact(transport, user)
        domain = trunk.from_domain or trunk.host
        registrar = parse_uri(f"sip:{domain}" + (f":{trunk.port}" if trunk.port != 5060 else ""))
        return RegistrationClient(
            aor=parse_uri(f"sip:{user}@{domain}"),
            registrar=registrar,
            contact=contact,
            via=service._via(transport),
            username=trunk.digest_username or user,
            password=trunk.password or "",
            expires=trunk.register_expires,
            realm=trunk.realm,
        )

    async def _registration_loop(self) -> None:
        while True:
            now = self.service.clock()
            due: list[float] = []
            for line in self.lines:
                reg = line.registration
                if reg is None:
                    continue
                request = reg.poll(now)
                if request is not None:
                    self._send_register(line, request)
                at = reg.next_timer()
                if at is not None:
                    due.append(at)
            wait = min([REGISTRATION_TICK_S, *[max(0.0, at - now) for at in due]])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.01))

    def _send_register(
        self, line: TrunkLine, request: Request, done: asyncio.Future[None] | None = None
    ) -> None:
        reg = line.registration
        assert reg is not None

        def on_response(response: Response | None) -> None:
            now = self.service.clock()
            if response is None:
                reg.on_timeout(now)
                log.warning("trunk %s: REGISTER timed out", line.trunk.name)
            elif response.is_provisional:
                if key is not None:
                    self.service._clients[key] = on_response
                return
            else:
                retry = reg.on_response(response, now)
                if retry is not None:
                    self._send_register(line, retry, done)
                    return
                if reg.last_error and not response.is_success:
                    log.warning("trunk %s: registration failed: %s", line.trunk.name, reg.last_error)
            if done is not None and not done.done():
                done.set_result(None)
            self._wake.set()

        key = self.service._request(request, self._destination(line.trunk), on_response)

    # ================================================================ screening inbound INVITEs
    def drop_scanner(self, request: Request, source: Destination) -> bool:
        """True (and the address banned) for a request from a known SIP scanner: SIPVicious & co. probe
        with OPTIONS and INVITE as much as with REGISTER, so every method counts."""
        registrar = self.service.registrar
        if not registrar.is_scanner(request):
            return False
        registrar.ban(source.host, self.service.clock())
        log.info("SIP scanner at %s banned (%s)", source.host, request.headers.get("User-Agent"))
        return True

    def screen_request(self, event: RequestReceived) -> bool:
        """Claim requests that belong to trunk-side calls, or that must be dropped; True if claimed."""
        request = event.request
        call_id = request.call_id
        leg = self._legs.get(call_id)
        if leg is not None and request.method != "ACK":
            self._leg_request(leg, request)
            return True
        phone_call = self._phone_calls.get(call_id)
        if phone_call is not None:
            self._phone_request(phone_call, request, event)
            return True
        click = self._click_calls.get(call_id)
        if click is not None and request.method != "ACK":
            self._click_request(click, request)
            return True
        return False

    def screen_response(self, response: Response) -> bool:
        """A 2xx retransmitted after its INVITE transaction ended: ACK it again (§13.2.2.4)."""
        leg = self._legs.get(response.call_id)
        if leg is not None and leg.dialog is not None and response.cseq.method == "INVITE":
            self.service._request(leg.dialog.ack(response.cseq.seq), leg.destination, None)
            return True
        click = self._click_calls.get(response.call_id)
        if click is not None and click.dialog is not None and response.cseq.method == "INVITE":
            self.service._request(click.dialog.ack(response.cseq.seq), click.destination, None)
            return True
        return False

    def screen_invite(self, request: Request, event: RequestReceived) -> bool:
        """Decide on a new INVITE: True lets the B2BUA take it as an inbound call (entry points only);
        False means it was answered here (403, 503, a challenge) or is handled here."""
        service = self.service
        now = service.clock()
        if request.call_id in self._phone_calls:
            return False  # a second INVITE of a call we already handle
        line = self.line_for_source(event.source.host)
        if line is not None:
            if not line.has_room(service._calls, now):
                log.info("trunk %s: at its limit of %s calls, 503", line.trunk.name, line.trunk.max_calls)
                service._respond(request, 503, extra_headers=[("Retry-After", str(TRUNK_RETRY_AFTER_S))])
                return False
            line.inbound[request.call_id] = now
            self._dialled_from_to(line, request)
            return True
        if not self.lines and not request.headers.get_all("Authorization"):
            # No trunk configured: calls reach entry points from anywhere, as before trunks existed
            # (restrict sources with the firewall or sip_banned_networks). Nothing can go out.
            return True
        service._spawn(self._authenticated_invite(request, event))
        return False

    def _dialled_from_to(self, line: TrunkLine, request: Request) -> None:
        """A registered trunk sends calls to our Contact (``sip:<username>@us``) with the number dialled
        in To: make that number the Request-URI user the B2BUA looks up."""
        trunk = line.trunk
        to_user = request.to.uri.user
        if trunk.username and request.uri.user == trunk.username and to_user and to_user != trunk.username:
            request.uri = replace(request.uri, user=to_user)

    async def _authenticated_invite(self, request: Request, event: RequestReceived) -> None:
        """An INVITE from outside the trunks: an agent's phone, or someone we refuse."""
        service = self.service
        registrar = service.registrar
        now = service.clock()
        source = event.source
        if not registrar.has_binding_from(source.host, now):
            # Neither a trunk nor the address of a registered phone: refused without a challenge, so
            # scanners learn nothing about accounts (and repeated tries get the address banned).
            self._refuse(request, source, "not a trunk and no phone registered from there")
            return
        checked = await service._authenticate(request, now)
        if checked is None:
            return
        username, account, result, now = checked
        if not result.ok or account is None:
            self._refuse(request, source, f"bad credentials for {username!r}: {result.reason}")
            return
        if not registrar.bindings(account.user_id, now):
            self._refuse(request, source, f"{username!r} has no registered phone")
            return
        dialled = request.uri.user or ""
        offer = service._sdp_offer(request)
        if offer is None:
            return
        try:
            await service.calls.entry_for(dialled)
        except NotFound:
            pass
        else:
            # An agent calling one of our own numbers: an inbound call like any other.
            assert event.transaction is not None
            service._spawn(service._accept_call(request, event, offer))
            return
        try:
            number = normalize_number(dialled, self.region)
        except InvalidNumber:
            service._respond(request, 404)
            return
        await self._phone_dials_out(request, event, account.user_id, number, offer)

    def _refuse(self, request: Request, source: Destination, why: str) -> None:
        service = self.service
        log.info("INVITE from %s refused: %s", source.host, why)
        if service.registrar.record_failure(source.host, service.clock()):
            log.warning("SIP address %s banned after repeated refused requests", source.host)
        service._respond(request, 403)

    # ================================================================ calls out
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
        line = self.line(trunk)
        try:
            e164 = normalize_number(number, line.trunk.region or self.region)
        except InvalidNumber:
            raise InvalidInput("Not a phone number", error_id="invalid-phone", number=number[:40]) from None
        service = self.service
        if not line.has_room(service._calls, service.clock()):
            raise Conflict("The trunk is at its call limit", error_id="trunk-busy", trunk=line.trunk.name)
        owns_media = False
        if offer is None:
            if media is None:
                media = await service.media.open_session(lambda digit: None)
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
            destination=self._destination(line.trunk),
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
        service = self.service
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
            via=service._via(transport),
            contact=service._contact(transport),
            body=offer.serialize(),
            content_type="application/sdp",
            extra_headers=extra,
        )

    def _send_invite(self, leg: OutboundLeg) -> None:
        leg.key = self.service._request(
            leg.invite, leg.destination, lambda response: self._leg_response(leg, response)
        )

    def _leg_response(self, leg: OutboundLeg, response: Response | None) -> None:
        service = self.service
        if response is None:
            self._leg_failed(leg, 408, "no response from the carrier")
            self._legs.pop(leg.call_id, None)
            return
        if response.is_provisional:
            assert leg.key is not None
            service._clients[leg.key] = lambda next_response: self._leg_response(leg, next_response)
            if response.status == 100:
                return
            leg.provisional = True
            if leg.cancel_requested:
                self._send_cancel(leg)  # held back until now (§9.1)
                return
            if response.body and leg.early is None:
                with contextlib.suppress(ProtocolError):
                    leg.early = apply_answer(leg.offer, parse_sdp(response.body))
            leg.state = "early"
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
        leg.dialog = service._ack_answer(leg.invite, response, leg.destination)
        if leg.is_over or leg.cancel_requested:
            self._bye(leg)
            self._forget_later(leg)
            return
        try:
            leg.answer = apply_answer(leg.offer, parse_sdp(response.body))
        except ProtocolError:
            leg.state = "answered"
            self._bye(leg)
            self._leg_failed(leg, 488, "no usable SDP answer")
            return
        if leg.ring_timer is not None:
            leg.ring_timer.cancel()
        leg.state = "answered"
        leg.status = response.status
        if leg.owns_media and leg.media is not None:
            leg.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        assert leg._answered is not None
        if not leg._answered.done():
            leg._answered.set_result(True)
        if leg.on_answer is not None:
            leg.on_answer(leg)

    def _answer_challenge(self, leg: OutboundLeg, response: Response) -> bool:
        line = self.line(leg.trunk)
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
        leg.state = "failed"
        leg.status = status
        leg.reason = leg.reason or reason
        self._leg_over(leg)

    def _leg_over(self, leg: OutboundLeg) -> None:
        if leg.ring_timer is not None:
            leg.ring_timer.cancel()
        self._legs.pop(leg.call_id, None)
        for line in self.lines:
            line.outbound.discard(leg.call_id)
        if leg._answered is not None and not leg._answered.done():
            leg._answered.set_result(False)
        leg._ended.set()
        if leg.owns_media and leg.media is not None:
            self.service._spawn(leg.media.close())
        if leg.on_end is not None:
            leg.on_end(leg)

    def _ring_timeout(self, leg: OutboundLeg) -> None:
        if leg.state in ("calling", "early"):
            leg.reason = "no answer"
            self.hang_up(leg)

    def hang_up(self, leg: OutboundLeg) -> None:
        if leg.is_over:
            return
        if leg.state == "answered":
            leg.state = "ended"
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
        self.service._request(build_cancel(leg.invite), leg.destination, None)
        self._forget_later(leg)

    def _forget_later(self, leg: OutboundLeg) -> None:
        """Stop matching a finished leg once the carrier can no longer retransmit to it (64*T1)."""
        asyncio.get_running_loop().call_later(
            self.service.layer.timers.timeout, self._legs.pop, leg.call_id, None
        )

    def _bye(self, leg: OutboundLeg) -> None:
        if leg.dialog is not None:
            self.service._request(leg.dialog.bye(), leg.destination, None)

    def _leg_request(self, leg: OutboundLeg, request: Request) -> None:
        """A request from the carrier inside our outbound call."""
        service = self.service
        dialog = leg.dialog
        if dialog is None or not dialog.matches_request(request):
            service._respond(request, 481)
            return
        with contextlib.suppress(ProtocolError):
            dialog.receive_request(request)
        if request.method == "BYE":
            service._respond(request, 200)
            if not leg.is_over:
                leg.state = "ended"
                leg.reason = "carrier hung up"
                self._leg_over(leg)
        elif request.method == "INVITE":
            # The carrier's hold, resume, moved media or session refresh (the relay's caller side).
            media = leg.media if leg.answer is not None else None
            leg.offer = service.answer_reinvite(request, leg.offer, media, leg.destination.transport)
        elif request.method in ("OPTIONS", "UPDATE", "INFO"):
            service._respond(request, 200)
        else:
            service._respond(request, 405)

    # ================================================================ a phone dials out
    async def _phone_dials_out(
        self, request: Request, event: RequestReceived, user_id: int, number: str, offer: SessionDescription
    ) -> None:
        service = self.service
        assert event.transaction is not None
        try:
            line = self.line(None)
        except Conflict:
            service._respond(request, 404)  # no trunk: external numbers do not exist for us
            return
        answered = await service._answer_offer(
            request, offer, lambda digit: None, agent_side=True, signalling_ip=event.source.host
        )
        if answered is None:
            return
        media, local_sdp, negotiated = answered
        call = _PhoneCall(
            invite=request,
            key=event.transaction,
            source=event.source,
            local_tag=new_tag(),
            media=media,
            local_sdp=local_sdp,
            codec=negotiated.codec,
            user_id=user_id,
            number=number,
        )
        self._phone_calls[request.call_id] = call
        try:
            leg = await self.dial_out(
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
        if call.state == "ended":  # the phone cancelled while we were dialling
            leg.hang_up()
            return
        service._spawn(self._record_phone_call(call, line.trunk))

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
            if call.state == "bridged":
                self._start_recording(call.media, call.interaction_id)
            await self.records.answered(call.interaction_id)
        if call.state == "ended" and leg is not None:
            await self.records.ended(call.interaction_id, status=leg.status, reason=leg.reason)

    def _phone_progress(self, call: _PhoneCall) -> None:
        leg = call.leg
        if call.state != "dialling" or leg is None:
            return
        if leg.early is not None:
            # The carrier's ringback or announcement: relay it to the phone as early media.
            call.media.set_caller(leg.early, signalling_ip=leg.destination.host)
            call.media.bridge()
            self.service._respond_with(
                self.service._sdp_response(
                    call.invite, 183, call.local_sdp, call.source.transport, call.local_tag
                )
            )
        elif not call.progress_sent:
            self.service._respond(call.invite, 180, to_tag=call.local_tag)
        call.progress_sent = True

    def _phone_answered(self, call: _PhoneCall) -> None:
        leg = call.leg
        service = self.service
        if call.state != "dialling" or leg is None or leg.answer is None:
            if leg is not None:
                leg.hang_up()
            return
        call.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        call.media.bridge()
        call.state = "bridged"
        call.dialog = service._answer_invite(call.invite, call.local_tag, call.source, call.local_sdp)
        if call.interaction_id is not None:
            self._start_recording(call.media, call.interaction_id)
            service._spawn(self._quietly(self.records.answered(call.interaction_id)))

    def _phone_leg_ended(self, call: _PhoneCall) -> None:
        leg = call.leg
        if call.state == "ended" or leg is None:
            return
        status = leg.status or 480
        if status in _NOT_THE_PHONES_BUSINESS or status < 300:
            status = 503
        self._end_phone_call(call, from_phone=False, status=status)

    def _end_phone_call(self, call: _PhoneCall, *, from_phone: bool, status: int) -> None:
        """End both legs of a phone-dialled call (``status`` answers a phone still waiting)."""
        if call.state == "ended":
            return
        bridged = call.state == "bridged"
        call.state = "ended"
        service = self.service
        if not from_phone:
            if bridged and call.dialog is not None:
                service._request(call.dialog.bye(), call.source, None)
            elif not bridged:
                service._respond(call.invite, status, to_tag=call.local_tag)
        if call.leg is not None:
            call.leg.hang_up()
        self._phone_calls.pop(call.invite.call_id, None)
        service._spawn(call.media.close())
        if call.interaction_id is not None:
            leg = call.leg
            service._spawn(
                self._quietly(
                    self.records.ended(
                        call.interaction_id,
                        status=leg.status if leg is not None else status,
                        reason=leg.reason if leg is not None else "",
                    )
                )
            )

    def _phone_request(self, call: _PhoneCall, request: Request, event: RequestReceived) -> None:
        service = self.service
        method = request.method
        if method == "ACK":
            return
        if method == "CANCEL":
            if not service._accept_cancel(request, event):
                return
            if call.state == "dialling":
                if call.leg is not None:
                    call.leg.reason = "caller cancelled"
                self._end_phone_call(call, from_phone=False, status=487)
            return
        if call.dialog is None or not call.dialog.matches_request(request):
            if method != "INVITE" or request.to.tag is not None:
                service._respond(request, 481)
            return  # a second initial INVITE of this call: ignored
        with contextlib.suppress(ProtocolError):
            call.dialog.receive_request(request)
        if method == "BYE":
            service._respond(request, 200)
            if call.leg is not None:
                call.leg.reason = "agent hung up"
            self._end_phone_call(call, from_phone=True, status=200)
        elif method == "INVITE":
            call.local_sdp = service.answer_reinvite(
                request, call.local_sdp, call.media, call.source.transport, agent_side=True
            )
        else:
            service._respond(request, 200 if method in ("OPTIONS", "UPDATE", "INFO") else 405)

    # ================================================================ click-to-call
    async def click_to_call(
        self, agent_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        """Ring the agent's registered phone; when they pick up, dial ``number`` and bridge.

        Returns the outbound interaction's id at once (the phone is ringing). Raises
        :class:`InvalidInput` (not a number), :class:`Conflict` (no registered phone, no trunk, trunk
        busy), :class:`NotFound` (no such customer or trunk).
        """
        service = self.service
        line = self.line(trunk)
        try:
            e164 = normalize_number(number, line.trunk.region or self.region)
        except InvalidNumber:
            raise InvalidInput("Not a phone number", error_id="invalid-phone", number=number[:40]) from None
        now = service.clock()
        bindings = service.registrar.bindings(agent_id, now)
        if not bindings:
            raise Conflict("Your phone is not registered", error_id="phone-not-registered")
        if not line.has_room(service._calls, now):
            raise Conflict("The trunk is at its call limit", error_id="trunk-busy", trunk=line.trunk.name)
        binding = bindings[0]
        destination = binding.source
        media = await service.media.open_session(lambda digit: None)
        offer, invite = service._invite_phone(
            binding,
            media,
            f"click-{e164}-{id(media)}",
            (PCMU, PCMA, TELEPHONE_EVENT),
            # The phone shows whom it is about to call.
            NameAddress(parse_uri(f"sip:{e164}@{service.host}"), f"Call to {e164}"),
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
        click.key = service._request(invite, destination, lambda response: self._agent_phone(click, response))
        return interaction_id

    def _agent_phone(self, click: _ClickCall, response: Response | None) -> None:
        service = self.service
        if response is not None and response.is_provisional:
            assert click.key is not None
            service._clients[click.key] = lambda next_response: self._agent_phone(click, next_response)
            return
        if response is None or not response.is_success:
            status = 408 if response is None else response.status
            self._end_click_call(click, status=status, reason="agent's phone did not answer")
            return
        click.dialog = service._ack_answer(click.invite, response, click.destination)
        click.phone_answered = True
        if click.state != "ringing_agent":
            self._end_click_call(click, status=None)
            return
        try:
            agent_media = apply_answer(click.offer, parse_sdp(response.body))
        except ProtocolError:
            self._end_click_call(click, status=488, reason="phone's SDP unusable")
            return
        click.media.set_agent(agent_media, signalling_ip=click.destination.host)
        click.state = "dialling"
        service._spawn(self._click_dial(click, agent_media.codec))

    async def _click_dial(self, click: _ClickCall, codec: Codec) -> None:
        try:
            click.leg = await self.dial_out(
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
        if click.state == "ended":
            click.leg.hang_up()

    def _click_progress(self, click: _ClickCall) -> None:
        leg = click.leg
        if leg is not None and leg.early is not None and click.state == "dialling":
            # The agent hears the carrier's ringback.
            click.media.set_caller(leg.early, signalling_ip=leg.destination.host)
            click.media.bridge()

    def _click_answered(self, click: _ClickCall) -> None:
        leg = click.leg
        if click.state != "dialling" or leg is None or leg.answer is None:
            return
        click.media.set_caller(leg.answer, signalling_ip=leg.destination.host)
        click.media.bridge()
        click.state = "bridged"
        self._start_recording(click.media, click.interaction_id)
        self.service._spawn(self._quietly(self.records.answered(click.interaction_id)))

    def _click_leg_ended(self, click: _ClickCall) -> None:
        leg = click.leg
        self._end_click_call(
            click, status=leg.status if leg is not None else None, reason=leg.reason if leg else ""
        )

    def _end_click_call(self, click: _ClickCall, *, status: int | None, reason: str = "") -> None:
        if click.state == "ended":
            return
        click.state = "ended"
        service = self.service
        if click.leg is not None:
            click.leg.hang_up()
        if click.dialog is not None:
            service._request(click.dialog.bye(), click.destination, None)
        elif click.key is not None and not click.phone_answered:
            # Still ringing the agent's phone: §9.1 CANCEL (a crossing 2xx is ACKed, then BYEd above).
            service._request(build_cancel(click.invite), click.destination, None)
        self._click_calls.pop(click.invite.call_id, None)
        service._spawn(click.media.close())
        service._spawn(self._quietly(self.records.ended(click.interaction_id, status=status, reason=reason)))

    def _click_request(self, click: _ClickCall, request: Request) -> None:
        service = self.service
        if click.dialog is None or not click.dialog.matches_request(request):
            service._respond(request, 481)
            return
        with contextlib.suppress(ProtocolError):
            click.dialog.receive_request(request)
        if request.method == "BYE":
            service._respond(request, 200)
            click.dialog = None  # their BYE ended the phone's dialog: no BYE back
            if click.leg is not None:
                click.leg.reason = click.leg.reason or "agent hung up"
            self._end_click_call(
                click, status=click.leg.status if click.leg else None, reason="agent hung up"
            )
        elif request.method == "INVITE":
            click.offer = service.answer_reinvite(
                request, click.offer, click.media, click.destination.transport, agent_side=True
            )
        else:
            service._respond(request, 200 if request.method in ("OPTIONS", "UPDATE", "INFO") else 405)

    def _start_recording(self, media: MediaSession, interaction_id: int) -> None:
        """Record the conversation like an inbound call's: a mixed WAV (and a stereo one when configured),
        listed in the interaction's ``recordings`` so the timeline plays it."""
        self.service._record_media(media, interaction_id, self._quietly)

    async def _quietly(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception:
            log.exception("recording an outbound call step failed")
