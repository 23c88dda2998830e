"""The voice service: SIP transports, the transaction layer, the registrar and the back-to-back user
agent that puts callers in the ACD queue and bridges them to the agent's phone.

It is the transaction user (RFC 3261 §17) of one :class:`TransactionLayer`: transports hand it what
arrives, the layer turns that into events, and this module decides. Timers run from an injected
monotonic clock: one task sleeps until ``next_timer()``.

A call, end to end: INVITE to an entry point's number → 100 (layer) → the call is recorded and queued
in the ACD (:class:`VoiceCalls`) → 183 with our SDP and music on hold → the ACD's ``OfferContact``
sends an INVITE to the agent's registered phone → 200 from the phone → ``offer_accepted`` → 200 to the
caller, media bridged → a BYE from either side ends both legs and starts wrap-up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, DomainError, NotFound
from frontoffice.services.voice_calls import InboundCall, IvrMenu, SipAccount, VoiceCalls

from . import voicemail
from .announcements import Announcer
from .call_records import CallLeg, cause_of_status
from .media import SAMPLE_RATE, DtmfHandler, MediaBackend, MediaSession, MediaStats
from .offers import codecs_first, sdp_session_id
from .outbound import OutboundLeg, Trunking
from .registrar import Binding, Registrar, RegistrationLimits
from .sip import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    AckTimeout,
    AuthOutcome,
    AuthResult,
    Destination,
    Dialog,
    DialogError,
    DigestAuthenticator,
    MalformedRequests,
    Message,
    NameAddress,
    NegotiatedMedia,
    ProtocolError,
    Request,
    RequestReceived,
    Response,
    ResponseReceived,
    SessionDescription,
    SipParseError,
    TimerSettings,
    TransactionKey,
    TransactionLayer,
    TransactionTimeout,
    Transmit,
    Via,
    answer_offer,
    answer_reoffer,
    apply_answer,
    build_cancel,
    build_offer,
    build_request,
    build_response,
    new_tag,
    parse_name_addr,
    parse_sdp,
    parse_uri,
    validate_request,
)
from .tls import TlsTransport
from .transport import TcpTransport, UdpTransport
from .trunks import Trunk

__all__ = ["VoiceService"]

log = logging.getLogger("frontoffice.voice")

MonotonicClock = Callable[[], float]
# Methods we answer (RFC 3261 §20.5 Allow); anything else is 405.
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "REFER")
# RFC 3261 §13.3.1.1: a UAS should send a provisional at least every minute so proxies (Timer C,
# > 3 min) keep the transaction while the caller waits in the queue.
PROVISIONAL_REFRESH_S = 60.0
# How often expired registrations and bans are swept.
SWEEP_INTERVAL_S = 30.0
# Calls this node carries at once; beyond it a new INVITE gets 503 (RFC 3261 §21.5.4) with Retry-After.
MAX_CALLS = 2000
RETRY_AFTER_S = 30
RECENT_MEDIA = 1000
# On shutdown, how long hang-ups may take to be committed before their tasks are cancelled.
STOP_GRACE_S = 5.0
# Digest challenges offered to phones, in order. RFC 8760 §2.4 lets a server offer SHA-256 and MD5
# side by side, but deployed phones do not cope: sipp 3.6 reads only the first WWW-Authenticate and
# refuses SHA-256, and baresip 1.0 (libre) fails the whole 401 if any challenge is not MD5. So MD5
# alone is the default; sites whose phones all do RFC 8760 configure ("SHA-256", "MD5").
DEFAULT_DIGEST_ALGORITHMS = ("MD5",)
# Seconds between position / expected-wait announcements to a queued caller (None: never).
DEFAULT_ANNOUNCE_INTERVAL_S = 45.0
# Turn-aways (fallback, refusal) kept for a call still learning its interaction id; other channels'
# contacts are turned away too and no call asks for theirs, so only the latest few are kept.
TURNED_AWAY_KEPT = 256


@dataclass(eq=False)
class _AgentLeg:
    agent_id: int
    invite: Request
    key: TransactionKey
    destination: Destination
    offer: SessionDescription
    dialog: Dialog | None = None
    cancelled: bool = False
    answered: bool = False
    ended: bool = False
    record: CallLeg | None = None
    refer: bool = False  # the phone asked for this transfer (REFER): NOTIFY its outcome


@dataclass(eq=False)
class _Call:
    invite: Request
    key: TransactionKey
    source: Destination
    local_tag: str
    media: MediaSession
    local_sdp: SessionDescription
    interaction_id: int | None = None
    state: str = "arriving"  # arriving, menu, queued, bridged, ended
    dialog: Dialog | None = None
    agent: _AgentLeg | None = None
    pending_offers: list[r.OfferContact] = field(default_factory=list)
    refresh: asyncio.TimerHandle | None = None
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    had_menu: bool = False
    record: CallLeg | None = None
    held: bool = False
    offered_direction: str = "sendrecv"  # what our last offer to the caller asked for
    reinvite_pending: bool = False
    transferred: bool = False
    recording: bool = False
    announcer: asyncio.Task[None] | None = None
    external: OutboundLeg | None = None  # a blind transfer to an external number (through a trunk)
    external_record: CallLeg | None = None


class VoiceService:
    """SIP signalling for one node: UDP and TCP on ``host:port``, registrar, B2BUA into the ACD."""

    def __init__(
        self,
        calls: VoiceCalls,
        media: MediaBackend,
        *,
        host: str,
        port: int,
        secret: bytes,
        realm: str,
        recordings_dir: Path | None = None,
        clock: MonotonicClock = time.monotonic,
        timers: TimerSettings | None = None,
        limits: RegistrationLimits | None = None,
        banned_networks: tuple[str, ...] = (),
        tcp: bool = True,
        digest_algorithms: tuple[str, ...] = DEFAULT_DIGEST_ALGORITHMS,
        prompts: dict[str, bytes] | None = None,
        announce_interval_s: float | None = DEFAULT_ANNOUNCE_INTERVAL_S,
        announcer: Announcer | None = None,
        language: str = "en",
        stereo_recordings: bool = False,
        trunks: tuple[Trunk, ...] = (),
        region: str = "RU",
        tls_context: ssl.SSLContext | None = None,
        tls_port: int = 5061,
        qualify_interval_s: float | None = None,
    ) -> None:
        self.calls = calls
        self.media = media
        self.host = host
        self.port = port
        self.clock = clock
        self.recordings_dir = recordings_dir
        # Announcements by name ("menu", "invalid"): 8 kHz PCM, see prompts.render_prompts.
        self.prompts = prompts or {}
        # Position / expected-wait announcements while queued, in the caller's language.
        self.announce_interval_s = announce_interval_s
        self.announcer = announcer or Announcer()
        self.language = language
        self.stereo_recordings = stereo_recordings
        self.layer = TransactionLayer(timers)
        # RFC 3261 §8.2 / RFC 4475: answers to requests that did not parse, limited per source.
        self.malformed = MalformedRequests()
        self.registrar = Registrar(
            DigestAuthenticator(realm, secret, algorithms=digest_algorithms),
            limits=limits,
            banned_networks=banned_networks,
        )
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self._want_tcp = tcp
        self._tasks: set[asyncio.Task[Any]] = set()
        # The transaction layer's next timer, as one loop timer rescheduled only when an earlier one
        # appears (a wake-up per SIP message cost a task and a timeout handle each).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        # Qualify: OPTIONS to every registered phone each interval (None: off); see _qualify.
        self.qualify_interval_s = qualify_interval_s
        self._qualifier: asyncio.TimerHandle | None = None
        self._running = False
        self._clients: dict[TransactionKey, Callable[[Response | None], None]] = {}
        self._calls: dict[str, _Call] = {}  # caller's Call-ID
        self._agent_calls: dict[str, _Call] = {}  # agent leg's Call-ID
        self._by_interaction: dict[int, _Call] = {}
        self._orphan_offers: dict[int, r.OfferContact] = {}
        self._turned_away_early: dict[int, r.FallbackAction | r.ContactRefused] = {}
        # Media counters of the last finished calls (interaction id, stats), for diagnostics and bench/.
        self.recent_media: deque[tuple[int | None, MediaStats]] = deque(maxlen=RECENT_MEDIA)
        calls.acd.add_listener(self._on_acd_outputs)
        # Carrier trunks (screening, registrations out, calls out): outbound.py. TLS: tls.py.
        self.trunking = Trunking(self, trunks, region=region)
        self.tls: TlsTransport | None = None
        self._tls_context = tls_context
        self.tls_port = tls_port

    # ================================================================ life cycle
    async def start(self) -> None:
        """Listen on UDP (and TCP on the same port) and start the timer task."""
        self.udp = await UdpTransport.listen(self.host, self.port, self._on_message)
        self.port = self.udp.address[1]  # port 0 means "any free port" (tests)
        if self._want_tcp:
            self.tcp = await TcpTransport.listen(self.host, self.port, self._on_message)
        if self._tls_context is not None:
            self.tls = await TlsTransport.listen_tls(
                self.host, self.tls_port, self._on_message, self._tls_context
            )
            self.tls_port = self.tls.address[1]
        self._running = True
        self._sweep()
        self._qualify()
        await self.media.start()
        await self.trunking.start()
        log.info("SIP listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Hang up every call, close transports and media."""
        await self.trunking.stop()
        for call in list(self._calls.values()):
            self._hang_up(call, "shutdown")
        self._running = False
        for handle in (self._timer, self._sweeper, self._qualifier):
            if handle is not None:
                handle.cancel()
        self._timer = self._sweeper = self._qualifier = None
        # Let the hang-ups reach the ACD and the wire (bounded), then cancel what is left.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE_S)
        for task in list(self._tasks):
            task.cancel()
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        if self.tls is not None:
            self.tls.close()
        await self.media.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voice task failed", exc_info=task.exception())

    def _sweep(self) -> None:
        """Expire registrations and bans, every SWEEP_INTERVAL_S while running."""
        self.registrar.expire(self.clock())
        if self._running:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)

    def _qualify(self) -> None:
        """OPTIONS to every registered phone, every ``qualify_interval_s`` while running; a phone that
        does not answer within the transaction timeout (Timer F) is unreachable (registrar.py)."""
        if not self.qualify_interval_s or not self._running:
            return
        sender = NameAddress(parse_uri(f"sip:frontoffice@{self.host}"))
        for binding in self.registrar.qualify_due(self.clock()):
            request = self.registrar.options_for(binding, self._via(binding.source.transport), sender)
            self._request(request, binding.source, partial(self._qualified, binding))
        self._qualifier = asyncio.get_running_loop().call_later(self.qualify_interval_s, self._qualify)

    def _qualified(self, binding: Binding, response: Response | None) -> None:
        self.registrar.qualified(binding, response is not None)
        self._apply_reachability()

    def _apply_reachability(self) -> None:
        """Agents none of whose phones answers are taken out of routing, and back when one does."""
        for agent_id, reachable in self.registrar.reachability_changes(self.clock()):
            log.info("agent %s: phones %s", agent_id, "reachable again" if reachable else "unreachable")
            self._spawn(self._quietly(self.calls.phones_reachable(agent_id, reachable)))

    def _arm_timer(self) -> None:
        """Make the loop timer fire at the transaction layer's next timer (earlier ones only: a timer
        that fires early finds nothing due and re-arms)."""
        due = self.layer.next_timer()
        if due is None or not self._running:
            return
        if self._timer is not None and self._timer_due is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(max(0.0, due - self.clock()), self._fire_timers)

    def _fire_timers(self) -> None:
        self._timer = self._timer_due = None
        self._handle(self.layer.handle_timer(self.clock()))

    # ================================================================ wire in, wire out
    def _on_message(self, message: Message | SipParseError, source: Destination) -> None:
        if isinstance(message, SipParseError):
            error = self.malformed.answer(message, source.host, self.clock())
            if error is not None:
                # RFC 3261 §8.2: a request we cannot parse gets 400 (or 505/513), never silence.
                self._send(Transmit(error, source))
            return
        if isinstance(message, Request) and self.registrar.is_banned(source.host, self.clock()):
            return
        if isinstance(message, Request) and self.trunking.drop_scanner(message, source):
            return  # before the transaction layer, so not even a 100 Trying goes back
        try:
            events = self.layer.receive(message, self.clock(), source)
        except ProtocolError as exc:
            log.debug("dropped message from %s: %s", source, exc)
            return
        self._handle(events)

    def _send(self, transmit: Transmit) -> None:
        destination = transmit.destination
        data = transmit.data
        if destination.transport.upper() == "TLS":
            if self.tls is not None:
                self.tls.send(data, destination)
        elif destination.reliable and self.tcp is not None:
            self.tcp.send(data, destination)
        elif self.udp is not None:
            self.udp.send(data, destination)

    def _handle(self, events: list[Any]) -> None:
        try:
            for event in events:
                if isinstance(event, Transmit):
                    self._send(event)
                elif isinstance(event, RequestReceived):
                    try:
                        self._on_request(event)
                    except DialogError as exc:
                        self._refuse_in_dialog(event, exc)
                elif isinstance(event, ResponseReceived):
                    self._on_response(event)
                elif isinstance(event, TransactionTimeout):
                    if event.timer in ("B", "F", "cancel"):
                        owner = self._clients.pop(event.transaction, None)
                        if owner is not None:
                            owner(None)
                elif isinstance(event, AckTimeout):
                    self._ack_timeout(event)
        finally:
            self._arm_timer()  # also when a handler failed: the other transactions' timers go on

    def _refuse_in_dialog(self, event: RequestReceived, exc: DialogError) -> None:
        """A request that does not fit its dialog (a lower CSeq, RFC 3261 §12.2.2: 500) is answered
        with the status the dialog core chose; the call is left as it was."""
        request = event.request
        log.info(
            "%s of call %s from %s refused with %d: %s",
            request.method,
            request.call_id,
            event.source.host,
            exc.status_code,
            exc.reason,
        )
        if request.method != "ACK":
            self._respond(request, exc.status_code, exc.reason)

    def _respond(self, request: Request, status: int, reason: str | None = None, **kwargs: Any) -> None:
        response = build_response(request, status, reason, **kwargs)
        self._respond_with(response)

    def _respond_with(self, response: Response) -> None:
        try:
            self._handle(self.layer.send_response(response, self.clock()))
        except ProtocolError as exc:
            log.debug("response not sent: %s", exc)

    def _request(
        self, request: Request, destination: Destination, owner: Callable[[Response | None], None] | None
    ) -> TransactionKey | None:
        events = self.layer.send_request(request, destination, self.clock())
        key: TransactionKey | None = None
        if request.method != "ACK":
            key = TransactionKey(branch=request.top_via.branch or "", method=request.method)
            if owner is not None:
                self._clients[key] = owner
        self._handle(events)
        return key

    def port_for(self, transport: str) -> int:
        """Our port for ``transport``: TLS listens on its own (5061), UDP and TCP share ``port``."""
        return self.tls_port if transport.upper() == "TLS" else self.port

    async def dial_out(
        self, number: str, *, trunk: str | None = None, caller_id: str | None = None, **options: Any
    ) -> OutboundLeg:
        """Call an external ``number`` through a trunk (the first by default); returns the leg handle
        at once. Options (``offer``, ``media``, ``on_answer``...): :meth:`Trunking.dial_out`."""
        return await self.trunking.dial_out(number, trunk=trunk, caller_id=caller_id, **options)

    def _via(self, transport: str = "UDP") -> Via:
        return Via(
            transport=transport, host=self.host, port=self.port_for(transport), params=(("rport", None),)
        )

    def _contact(self, transport: str = "UDP", user: str = "frontoffice") -> NameAddress:
        uri = parse_uri(f"sip:{user}@{self.host}:{self.port_for(transport)}")
        if transport != "UDP":
            uri = uri.with_param("transport", transport.lower())
        return NameAddress(uri)

    # ---------------------------------------------------------------- steps shared with outbound.py
    async def _authenticate(
        self, request: Request, now: float
    ) -> tuple[str, SipAccount | None, AuthResult, float] | None:
        """Digest-check ``request`` against the SIP account it claims. ``None`` when it was answered
        here (a challenge, a stale one, or 500 when the look-up failed); else the claimed username,
        its account, the verdict and the time it was reached at."""
        username = self.registrar.claimed_username(request)
        if username is None:
            self._respond_with(self.registrar.challenge(request, now))
            return None
        try:
            account = await self.calls.sip_account(username)
        except Exception:
            log.exception("SIP account look-up failed")
            self._respond(request, 500)
            return None
        now = self.clock()
        result = self.registrar.authenticate(request, now, account.ha1 if account else None, username)
        if result.outcome is AuthOutcome.STALE:
            self._respond_with(self.registrar.challenge(request, now, stale=True))
            return None
        return username, account, result, now

    def _sdp_offer(self, request: Request) -> SessionDescription | None:
        """The SDP offer of a new INVITE; ``None`` when it has none we can use (answered 400 or 488)."""
        try:
            offer = parse_sdp(request.body) if request.body else None
        except ProtocolError as exc:
            self._respond(request, 400, "Bad SDP")
            log.debug("bad SDP: %s", exc)
            return None
        if offer is None:
            # Offer-less INVITE (RFC 3261 §13.2.1) would need the offer in our 200 and the answer in ACK.
            self._respond(request, 488, "SDP offer required")
        return offer

    async def _answer_offer(
        self,
        request: Request,
        offer: SessionDescription,
        on_dtmf: DtmfHandler,
        *,
        agent_side: bool = False,
        signalling_ip: str | None = None,
    ) -> tuple[MediaSession, SessionDescription, NegotiatedMedia] | None:
        """Open a media session and answer ``offer`` from its caller side (its agent side for a phone
        that dials out). ``None`` when the offer is unusable: answered (488, or the error's status)
        and the session closed. ``signalling_ip``: where the INVITE came from (RTP source latching)."""
        session = await self.media.open_session(on_dtmf)
        try:
            local_sdp, negotiated = answer_offer(
                offer,
                address=session.address,
                port=session.agent_port if agent_side else session.caller_port,
                session_id=sdp_session_id(request.call_id),
                codecs=(PCMU, PCMA, TELEPHONE_EVENT),
            )
        except ProtocolError as exc:
            await session.close()
            self._respond(request, getattr(exc, "status_code", 488))
            return None
        if agent_side:
            session.set_agent(negotiated, signalling_ip=signalling_ip)
        else:
            session.set_caller(negotiated, signalling_ip=signalling_ip)
        return session, local_sdp, negotiated

    def _sdp_response(
        self,
        request: Request,
        status: int,
        sdp: SessionDescription,
        transport: str = "UDP",
        to_tag: str | None = None,
    ) -> Response:
        """``status`` to ``request`` with our SDP and Contact (183 early media, 200 answers)."""
        return build_response(
            request,
            status,
            to_tag=to_tag,
            contact=self._contact(transport),
            body=sdp.serialize(),
            content_type="application/sdp",
        )

    def _answer_invite(
        self, invite: Request, to_tag: str, source: Destination, sdp: SessionDescription
    ) -> Dialog:
        """Send 200 with our SDP to an INVITE we are the UAS of; returns the dialog it starts."""
        response = self._sdp_response(invite, 200, sdp, source.transport, to_tag)
        dialog = Dialog.from_uas(invite, response, via=self._via(source.transport))
        self._respond_with(response)
        return dialog

    def _ack_answer(self, invite: Request, response: Response, destination: Destination) -> Dialog:
        """ACK a 2xx to our INVITE at once (RFC 3261 §13.2.2.4); returns the dialog it starts."""
        dialog = Dialog.from_uac(invite, response)
        self._request(dialog.ack(invite.cseq.seq), destination, None)
        return dialog

    def _accept_cancel(self, request: Request, event: RequestReceived) -> bool:
        """RFC 3261 §9.2: 200 to a CANCEL (the INVITE still needs its 487), 481 when it matches no
        transaction; True in the first case."""
        if event.cancels is None:
            self._respond(request, 481)
            return False
        # §9.2: with the To tag of the INVITE's responses (sent already, or to come), never a new one.
        self._respond(request, 200, to_tag=self.layer.to_tag(event.cancels))
        return True

    def _invite_phone(
        self,
        binding: Binding,
        media: MediaSession,
        sdp_key: str,
        codecs: tuple[Any, ...],
        from_addr: NameAddress,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> tuple[SessionDescription, Request]:
        """An INVITE to an agent's registered phone offering the agent side of ``media``."""
        destination = binding.source
        offer = build_offer(
            address=media.address,
            port=media.agent_port,
            session_id=sdp_session_id(sdp_key),
            codecs=codecs,
        )
        invite = build_request(
            "INVITE",
            binding.contact.uri,
            from_addr=from_addr,
            to_addr=NameAddress(binding.contact.uri),
            via=self._via(destination.transport),
            contact=self._contact(destination.transport),
            body=offer.serialize(),
            content_type="application/sdp",
            extra_headers=extra_headers,
        )
        return offer, invite

    def _record_media(
        self,
        media: MediaSession,
        interaction_id: int,
        quietly: Callable[[Coroutine[Any, Any, Any]], Coroutine[Any, Any, None]],
    ) -> None:
        """Record ``media`` (when recording is configured): one mixed mono WAV and, if configured, a
        stereo one (caller left, agent right), listed in the interaction's ``recordings`` through
        ``quietly``."""
        if self.recordings_dir is None:
            return
        stem = self.recordings_dir / str(interaction_id)
        files = [Path(f"{stem}.wav")]
        if self.stereo_recordings:
            files.append(Path(f"{stem}-stereo.wav"))
        media.record(files[0], files[1] if len(files) > 1 else None)
        self._spawn(quietly(self.calls.annotate(interaction_id, recordings=[str(f) for f in files])))

    # ================================================================ requests
    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        method = request.method
        rejection = validate_request(request, ALLOWED)  # RFC 3261 §8.2: 501, 416, 420, 415
        if rejection is not None:
            self._respond_with(rejection)
            return
        if self.trunking.screen_request(event):
            return  # a scanner (dropped), or a request of a call through a trunk
        if method == "ACK":
            return  # ACK for our 2xx: the layer stopped retransmitting it (§13.3.1.4)
        if method == "OPTIONS":
            # RFC 3261 §11.2: capabilities (also the keepalive carriers send to trunks).
            self._respond(
                request, 200, extra_headers=[("Allow", ", ".join(ALLOWED)), ("Accept", "application/sdp")]
            )
        elif method == "REGISTER":
            self._spawn(self._register(request, event.source))
        elif method == "INVITE":
            self._on_invite(request, event)
        elif method == "CANCEL":
            self._on_cancel(request, event)
        elif method == "BYE":
            self._on_bye(request)
        elif method == "REFER":
            self._on_refer(request)
        else:
            self._respond(request, 405, extra_headers=[("Allow", ", ".join(ALLOWED))])

    # ---------------------------------------------------------------- registrar
    async def _register(self, request: Request, source: Destination) -> None:
        now = self.clock()
        if self.registrar.is_scanner(request):
            self.registrar.ban(source.host, now)
            return
        checked = await self._authenticate(request, now)
        if checked is None:
            return
        username, account, result, now = checked
        if not result.ok or account is None:
            log.info("SIP registration failed for %r from %s: %s", username, source.host, result.reason)
            if self.registrar.record_failure(source.host, now):
                log.warning("SIP address %s banned after repeated failed registrations", source.host)
            # One answer for wrong passwords and unknown users alike, so names cannot be probed.
            self._respond(request, 403)
            return
        self._respond_with(self.registrar.register(request, source, account.user_id, username, now))
        if self.registrar.is_reachable(account.user_id):
            # A phone that registers is there: an agent set not ready as unreachable takes calls again
            # (also one marked so before a restart, which this registrar never saw). A no-op otherwise.
            self._spawn(self._quietly(self.calls.phones_reachable(account.user_id, True)))

    # ---------------------------------------------------------------- inbound calls
    def _on_invite(self, request: Request, event: RequestReceived) -> None:
        if request.to.tag is not None:
            self._on_reinvite(request)
            return
        if request.call_id in self._calls:
            return  # a second INVITE of a call we handle (another branch); the first one wins
        if len(self._calls) >= MAX_CALLS:
            self._respond(request, 503, extra_headers=[("Retry-After", str(RETRY_AFTER_S))])
            return
        if not self.trunking.screen_invite(request, event):
            return  # trunk limit, not a trunk and not an authenticated phone, or a call out
        offer = self._sdp_offer(request)
        if offer is None:
            return
        self._spawn(self._accept_call(request, event, offer))

    async def _accept_call(self, request: Request, event: RequestReceived, offer: SessionDescription) -> None:
        assert event.transaction is not None
        answered = await self._answer_offer(
            request,
            offer,
            lambda digit: self._on_dtmf(request.call_id, digit),
            signalling_ip=event.source.host,
        )
        if answered is None:
            return
        session, local_sdp, _ = answered
        call = _Call(
            invite=request,
            key=event.transaction,
            source=event.source,
            local_tag=self.layer.to_tag(event.transaction) or new_tag(),  # a CANCEL's 200 may have chosen it
            media=session,
            local_sdp=local_sdp,
        )
        self._calls[request.call_id] = call
        caller = request.from_
        call.record = CallLeg("caller", request.call_id, self.calls.now(), peer=caller.uri.user or "")
        dialled = request.uri.user or request.to.uri.user or ""
        try:
            entry = await self.calls.entry_for(dialled)
            choice = None
            if entry.ivr is not None:
                choice = await self._run_menu(call, entry.ivr)
                if call.state == "ended":
                    return  # hung up in the menu: no contact was queued, so nothing is abandoned
            inbound = InboundCall(
                call_id=request.call_id,
                dialled=dialled,
                caller=caller.uri.user,
                caller_name=caller.display_name or "",
                entry_point_id=entry.entry_point_id,
                ivr_choice=choice,
            )
            interaction_id = await self.calls.call_arrived(inbound)
        except NotFound:
            self._end_unanswered(call, 404)
            return
        except DomainError as exc:
            log.info("call refused: %s", exc)
            self._end_unanswered(call, 480)
            return
        except Exception:
            log.exception("recording the call failed")
            self._end_unanswered(call, 500)
            return
        if call.state == "ended":
            # The caller cancelled while the contact was being recorded: abandoned.
            self._spawn(self._quietly(self.calls.call_abandoned(interaction_id)))
            return
        call.interaction_id = interaction_id
        call.record.interaction_id = interaction_id
        self._by_interaction[interaction_id] = call
        call.state = "queued"
        self._send_progress(call)
        session.play_hold_music()
        self._start_announcements(call)
        orphan = self._orphan_offers.pop(interaction_id, None)
        if orphan is not None:
            self._ring_agents(call, orphan)
        turned_away = self._turned_away_early.pop(interaction_id, None)
        if turned_away is not None:
            self._turn_away(call, turned_away)

    async def _run_menu(self, call: _Call, menu: IvrMenu) -> str | None:
        """Prompt, then wait for one of the menu's digits (RFC 4733); repeat on silence or a wrong key."""
        call.state = "menu"
        call.had_menu = True
        self._send_progress(call)
        call.media.play_hold_music()  # the chime when no spoken prompt is configured
        menu_prompt = self.prompts.get("menu", b"")
        for _ in range(menu.repeats + 1):
            if menu_prompt:
                call.media.play_prompt(menu_prompt)
            # A digit during the prompt counts (barge-in); the timeout runs from the prompt's end.
            prompt_s = len(menu_prompt) / 2 / SAMPLE_RATE
            try:
                digit = await asyncio.wait_for(call.digits.get(), prompt_s + menu.timeout_s)
            except TimeoutError:
                continue
            if call.state == "ended":
                return None
            if digit in menu.choices:
                call.state = "arriving"
                return digit
            if "invalid" in self.prompts:
                call.media.play_prompt(self.prompts["invalid"])
        if call.state != "ended":
            call.state = "arriving"
        return menu.default_choice

    def _send_progress(self, call: _Call) -> None:
        """183 with our SDP: early media carries the music on hold (RFC 3261 §13.3.1.1, RFC 3960)."""
        if call.state not in ("menu", "queued"):
            return
        if call.refresh is not None:
            call.refresh.cancel()
        self._respond_with(
            self._sdp_response(call.invite, 183, call.local_sdp, call.source.transport, call.local_tag)
        )
        call.refresh = asyncio.get_running_loop().call_later(PROVISIONAL_REFRESH_S, self._send_progress, call)
        if call.record is not None:
            call.record.ringing(self.calls.now())

    def _on_dtmf(self, call_id: str, digit: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state in ("menu", "voicemail"):
            call.digits.put_nowait(digit)
            return
        if call.interaction_id is None or call.had_menu:
            return
        # Without a menu, a digit pressed while waiting is still recorded as the caller's choice.
        self._spawn(self._quietly(self.calls.annotate(call.interaction_id, ivr_choice=digit)))

    def _on_cancel(self, request: Request, event: RequestReceived) -> None:
        # RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE if it is still pending.
        if not self._accept_cancel(request, event):
            return
        call = self._calls.get(request.call_id)
        if call is None or call.state in ("bridged", "ended"):
            return
        self._abandon(call, 487)

    def _abandon(self, call: _Call, status: int) -> None:
        """The caller left (or is sent away) before an agent answered."""
        interaction = call.interaction_id if call.state == "queued" else None
        self._end_unanswered(call, status)
        if interaction is not None:
            self._spawn(self._quietly(self.calls.call_abandoned(interaction)))

    def _end_unanswered(self, call: _Call, status: int) -> None:
        self._cancel_agent(call, "caller_left" if status == 487 else "refused")
        call.state = "ended"
        call.digits.put_nowait("")  # wakes a menu waiting for input
        if call.dialog is not None:
            # Answered before and back in the queue (a transfer): the dialog ends with BYE.
            self._request(call.dialog.bye(), call.source, None)
            self._close_leg(call.record, "refused")
        else:
            self._respond(call.invite, status, to_tag=call.local_tag)
            self._close_leg(call.record, "cancelled" if status == 487 else "refused", status)
        self._forget(call)

    def _on_reinvite(self, request: Request) -> None:
        call = self._calls.get(request.call_id)
        if call is None or call.dialog is None or not call.dialog.matches_request(request):
            leg = self._agent_calls.get(request.call_id)
            if leg is None or leg.agent is None or leg.agent.dialog is None:
                self._respond(request, 481)
                return
            leg.agent.dialog.receive_request(request)
            leg.agent.offer = self.answer_reinvite(
                request, leg.agent.offer, leg.media, leg.agent.destination.transport, agent_side=True
            )
            return
        call.dialog.receive_request(request)
        want = "sendonly" if call.held else "sendrecv"  # while we hold the caller, we go on holding
        call.local_sdp = self.answer_reinvite(
            request, call.local_sdp, call.media, call.source.transport, want
        )

    def answer_reinvite(
        self,
        request: Request,
        local_sdp: SessionDescription,
        media: MediaSession | None,
        transport: str,
        want: str = "sendrecv",
        *,
        agent_side: bool = False,
    ) -> SessionDescription:
        """Answer a peer's re-INVITE (RFC 3264 §8) and apply it to the caller's (or the agent's) leg of
        ``media`` (none: only answer): a new address or port, a hold or a resume. Returns our SDP as it
        now stands (``local_sdp`` when the offer was refused)."""
        if not request.body:
            # No offer: ours goes in the 200 and the answer comes in the ACK (RFC 3261 §14.2).
            self._respond_with(self._sdp_response(request, 200, local_sdp, transport))
            return local_sdp
        current = None if media is None else media.agent_media if agent_side else media.caller_media
        try:
            reoffer = answer_reoffer(local_sdp, parse_sdp(request.body), current, want=want)
        except ProtocolError as exc:
            # RFC 3261 §14.2: an offer we cannot accept leaves the session as it was.
            self._respond(request, getattr(exc, "status_code", 488))
            return local_sdp
        if media is not None and reoffer.changes_media:
            (media.update_agent if agent_side else media.update_caller)(reoffer.media)
        self._respond_with(self._sdp_response(request, 200, reoffer.answer, transport))
        return reoffer.answer

    def _on_bye(self, request: Request) -> None:
        call = self._calls.get(request.call_id)
        if call is not None and call.dialog is not None and call.dialog.matches_request(request):
            call.dialog.receive_request(request)  # before the 200: a stale BYE is refused (§12.2.2)
            self._respond(request, 200)
            self._finish(call, from_caller=True)
            return
        call = self._agent_calls.get(request.call_id)
        if call is not None and call.agent is not None:
            if call.agent.dialog is not None:
                call.agent.dialog.receive_request(request)  # before the 200, as above
            self._respond(request, 200)
            call.agent.ended = True
            self._close_leg(call.agent.record, "bye_agent")
            if call.state == "bridged":
                self._finish(call, from_caller=False)
            return
        self._respond(request, 481)

    def _finish(self, call: _Call, *, from_caller: bool, cause: str | None = None) -> None:
        """An answered call ends: BYE the other leg, close media, wrap-up starts in the ACD.

        A caller back in the queue after a transfer (answered, not bridged) is abandoned instead."""
        if call.state == "ended":
            return
        was = call.state
        call.state = "ended"
        call.digits.put_nowait("")  # wakes a voicemail waiting for a key
        cause = cause or ("bye_caller" if from_caller else "bye_agent")
        if from_caller:
            self._cancel_agent(call, cause)
        elif call.dialog is not None:
            self._request(call.dialog.bye(), call.source, None)
        self._close_leg(call.record, cause, 200)
        external = call.external
        if external is not None and not external.is_over:
            self._close_leg(call.external_record, cause, 200 if external.is_answered else 487)
            external.hang_up()
        if call.interaction_id is not None:
            if was == "bridged" and (external is None or not external.is_answered):
                self._spawn(self._quietly(self.calls.call_ended(call.interaction_id)))
            elif was == "queued":
                self._spawn(self._quietly(self.calls.call_abandoned(call.interaction_id)))
            # "external": the ACD finished the contact when the external party answered.
        self._forget(call)

    def _bye_agent(self, call: _Call, cause: str = "bye_caller") -> None:
        leg = call.agent
        if leg is not None and leg.dialog is not None and not leg.ended:
            leg.ended = True
            self._request(leg.dialog.bye(), leg.destination, None)
            self._close_leg(leg.record, cause)

    def _close_leg(self, record: CallLeg | None, cause: str, status: int | None = None) -> None:
        """End a leg's record once and append it to the interaction's event log."""
        if record is None:
            return
        now = self.calls.now()
        if record.end(now, cause, status) and record.interaction_id is not None:
            self._spawn(self._quietly(self.calls.record_leg(record.interaction_id, record.data(), now)))

    def _hang_up(self, call: _Call, reason: str) -> None:
        if call.state in ("bridged", "external"):
            self._bye_agent(call, reason)
            self._finish(call, from_caller=False, cause=reason)
        elif call.state in ("queued", "arriving", "menu"):
            self._abandon(call, 480)
        log.info("call %s hung up: %s", call.invite.call_id, reason)

    def _forget(self, call: _Call) -> None:
        if call.refresh is not None:
            call.refresh.cancel()
        if call.announcer is not None:
            call.announcer.cancel()
        self._calls.pop(call.invite.call_id, None)
        if call.agent is not None:
            self._agent_calls.pop(call.agent.invite.call_id, None)
        if call.interaction_id is not None:
            self._by_interaction.pop(call.interaction_id, None)
        self.recent_media.append((call.interaction_id, call.media.stats))
        self._spawn(call.media.close())

    def _ack_timeout(self, event: AckTimeout) -> None:
        call = self._calls.get(event.call_id)
        if call is not None and call.state == "bridged":
            # RFC 3261 §13.3.1.4: no ACK for our 2xx: confirm and immediately end the session.
            self._finish(call, from_caller=True)

    # ================================================================ agent call control (CTI)
    def active_call(self, interaction_id: int) -> _Call:
        """The live call of an interaction; :class:`NotFound` when it has none on this node."""
        call = self._by_interaction.get(interaction_id)
        if call is None or call.state == "ended":
            raise NotFound("No such active call", error_id="no-such-call", interaction_id=interaction_id)
        return call

    def call_state(self, interaction_id: int) -> dict[str, Any]:
        """What the desktop's call panel shows: state, hold, caller, when it was answered."""
        call = self.active_call(interaction_id)
        record = call.record
        return {
            "interaction_id": interaction_id,
            "state": call.state,
            "held": call.held,
            "caller": record.peer if record is not None else "",
            "answered_at": None
            if record is None or record.answered_at is None
            else record.answered_at.isoformat(),
        }

    def hold(self, interaction_id: int) -> None:
        """Put the caller on hold: re-INVITE with ``a=sendonly`` (RFC 3264 §8.4) and music to them."""
        call = self.active_call(interaction_id)
        if call.state != "bridged" or call.dialog is None:
            raise Conflict("The call is not connected", error_id="call-not-connected")
        if call.held:
            return
        call.held = True
        call.media.play_hold_music()  # stops the relay both ways; the caller hears music
        self._sync_hold(call)

    def resume(self, interaction_id: int) -> None:
        """Take the caller off hold: re-INVITE with ``a=sendrecv``, relay again."""
        call = self.active_call(interaction_id)
        if call.state != "bridged" or call.dialog is None:
            raise Conflict("The call is not connected", error_id="call-not-connected")
        if call.held:
            call.media.bridge()
            self._resume(call)

    def _resume(self, call: _Call) -> None:
        call.held = False
        self._sync_hold(call)

    def _sync_hold(self, call: _Call) -> None:
        """Offer the caller the direction the hold state wants (``sendonly`` held, ``sendrecv`` not),
        one re-INVITE at a time: RFC 3261 §14.1 forbids a second while one is in progress, so a
        hold/resume pressed meanwhile is sent when the first completes."""
        if call.reinvite_pending or call.dialog is None or call.state == "ended":
            return
        want = "sendonly" if call.held else "sendrecv"
        if call.offered_direction == want:
            return
        if call.held:
            request, call.local_sdp = call.dialog.hold(call.local_sdp)
        else:
            request, call.local_sdp = call.dialog.resume(call.local_sdp)
        call.offered_direction = want
        call.reinvite_pending = True
        self._reinvite(call, request)

    def _reinvite(self, call: _Call, request: Request) -> None:
        def answered(response: Response | None) -> None:
            if response is not None and response.is_provisional:
                key = TransactionKey(branch=request.top_via.branch or "", method="INVITE")
                self._clients[key] = answered
                return
            call.reinvite_pending = False
            if response is None or call.dialog is None:
                return
            if response.is_success:
                # RFC 3261 §13.2.2.4: the UAC ACKs every 2xx to its (re-)INVITE itself.
                self._request(call.dialog.ack(request.cseq.seq), call.source, None)
            else:
                # The caller refused the new offer: the session goes on as before (RFC 3261 §14.1).
                log.info("re-INVITE of call %s refused: %s", call.invite.call_id, response.status)
            self._sync_hold(call)

        self._request(request, call.source, answered)

    def hang_up(self, interaction_id: int) -> None:
        """End the call from the desktop: BYE both legs; wrap-up starts."""
        call = self.active_call(interaction_id)
        if call.state in ("bridged", "external"):
            self._bye_agent(call, "hangup_api")
            self._finish(call, from_caller=False, cause="hangup_api")
        else:
            raise Conflict("The call is not connected", error_id="call-not-connected")

    async def transfer_out(self, interaction_id: int, number: str, *, trunk: str | None = None) -> None:
        """Blind transfer to an external ``number`` through a trunk (:meth:`dial_out`).

        The caller hears music while the number rings; the agent's phone stays up (silent) so that a
        failure (busy, no answer, trunk error) simply reconnects them. When the number answers, the
        agent's phone gets BYE, the ACD contact ends (wrap-up) and the relay bridges the caller to the
        external party on the agent side of the same media session, so the recording goes on."""
        call = self.active_call(interaction_id)
        if call.state != "bridged" or call.agent is None or call.external is not None:
            raise Conflict("The call is not connected", error_id="call-not-connected")
        # The relay does not transcode: offer the carrier only the codec the caller uses.
        offer = build_offer(
            address=call.media.address,
            port=call.media.agent_port,
            session_id=sdp_session_id(call.invite.call_id + "-external"),
            codecs=(*_codecs_for(call.local_sdp)[:1], TELEPHONE_EVENT),
        )
        record = CallLeg(
            "external",
            "",
            self.calls.now(),
            peer=number,
            interaction_id=interaction_id,
            transfer=True,
        )
        call.external_record = record
        call.media.play_hold_music()
        try:
            leg = await self.dial_out(
                number,
                trunk=trunk,
                offer=offer,
                on_progress=lambda leg: record.ringing(self.calls.now()),
                on_answer=lambda leg: self._external_answered(call, leg),
                on_end=lambda leg: self._external_ended(call, leg),
            )
        except Exception:
            call.external_record = None
            if call.state == "bridged":
                call.media.bridge()
            raise
        record.call_id = leg.call_id
        record.peer = leg.number
        call.external = leg
        if leg.is_over:  # failed at once
            self._external_ended(call, leg)

    def _external_answered(self, call: _Call, leg: OutboundLeg) -> None:
        if call.state != "bridged" or leg.answer is None:
            leg.hang_up()
            return
        if call.external_record is not None:
            call.external_record.answered(self.calls.now(), leg.status or 200)
        self._bye_agent(call, "transferred")
        if call.agent is not None:
            self._agent_calls.pop(call.agent.invite.call_id, None)
        call.state = "external"
        call.media.set_agent(leg.answer, signalling_ip=leg.destination.host)
        call.media.bridge()
        if call.held:
            self._resume(call)
        if call.interaction_id is not None:
            interaction_id = call.interaction_id
            self._spawn(self._quietly(self.calls.transferred_out(interaction_id, leg.number)))
            self._spawn(self._quietly(self.calls.call_ended(interaction_id)))

    def _external_ended(self, call: _Call, leg: OutboundLeg) -> None:
        answered = call.state == "external"
        status = leg.status or (200 if answered else 408)
        cause = "bye_external" if answered else ("failed" if status < 400 else cause_of_status(status))
        self._close_leg(call.external_record, cause, status)
        if answered:
            # The external party hung up: the caller's leg ends too.
            self._finish(call, from_caller=False, cause="bye_external")
        elif call.state == "bridged" and call.external is leg:
            # Busy, no answer, refused: the caller is back with the agent.
            call.external = None
            call.external_record = None
            if not call.held:
                call.media.bridge()

    def _back_to_queue(self, call: _Call) -> None:
        """The ACD transferred a bridged call (API or REFER): release the agent's phone, the caller
        hears music until the next agent answers (the caller's dialog stays up)."""
        leg = call.agent
        if leg is not None:
            if leg.refer and leg.dialog is not None and not leg.ended:
                # RFC 3515 §2.4.5: the transfer succeeded; the phone's implicit subscription ends.
                self._request(leg.dialog.notify_refer_progress(200, "OK"), leg.destination, None)
            self._bye_agent(call, "transferred")
            self._agent_calls.pop(leg.invite.call_id, None)
            call.agent = None
        call.state = "queued"
        call.transferred = True
        call.media.play_hold_music()
        self._start_announcements(call)

    def _on_refer(self, request: Request) -> None:
        """A blind transfer from the agent's phone (RFC 3515): ``Refer-To: <sip:queue-7@...>`` or an
        agent's SIP username. 202, NOTIFY 100 at once, NOTIFY 200 (or the error) when the ACD moved
        the call; then we BYE the phone."""
        call = self._agent_calls.get(request.call_id)
        leg = call.agent if call is not None else None
        if call is None or leg is None or leg.dialog is None or not leg.dialog.matches_request(request):
            self._respond(request, 481)
            return
        refer_to = request.headers.get("Refer-To")
        try:
            target = parse_name_addr(refer_to) if refer_to else None
        except SipParseError:
            target = None
        if target is None or not target.uri.user:
            log.info("REFER with a bad Refer-To: %r", refer_to)
            self._respond(request, 400, "Bad Refer-To")
            return
        if call.state != "bridged" or call.interaction_id is None or leg.refer:
            self._respond(request, 403)
            return
        try:
            leg.dialog.receive_request(request)
        except ProtocolError as exc:
            self._respond(request, getattr(exc, "status_code", 500))
            return
        self._respond(request, 202, contact=self._contact(leg.destination.transport))
        leg.refer = True
        self._request(leg.dialog.notify_refer_progress(100, "Trying"), leg.destination, None)
        self._spawn(self._refer_transfer(call, leg, target.uri.user))

    async def _refer_transfer(self, call: _Call, leg: _AgentLeg, user: str) -> None:
        assert call.interaction_id is not None
        queue_id, agent_id = await self.calls.refer_target(user)
        failure: tuple[int, str] | None = None
        if queue_id is None and agent_id is None:
            failure = (404, "Not Found")
        else:
            try:
                await self.calls.transfer(call.interaction_id, queue_id=queue_id, agent_id=agent_id)
            except DomainError as exc:
                log.info("REFER transfer refused: %s", exc)
                failure = (503, "Service Unavailable")
        if failure is not None and leg.dialog is not None and not leg.ended:
            leg.refer = False
            self._request(leg.dialog.notify_refer_progress(*failure), leg.destination, None)

    def _start_announcements(self, call: _Call) -> None:
        if self.announce_interval_s is None or call.announcer is not None or call.interaction_id is None:
            return
        call.announcer = asyncio.get_running_loop().create_task(self._announce(call, call.interaction_id))

    async def _announce(self, call: _Call, interaction_id: int) -> None:
        """Every ``announce_interval_s`` while waiting: "You are number N in the queue" and the
        expected wait, from the ACD engine (position, and position × the queue's recent interval
        between answers), over the music."""
        assert self.announce_interval_s is not None
        language: str | None = None  # read before the first announcement: most calls never get one
        engine = self.calls.acd
        while call.state == "queued":
            await asyncio.sleep(self.announce_interval_s)
            if call.state != "queued":
                break
            if language is None:
                try:
                    language = await self.calls.caller_language(interaction_id) or self.language
                except Exception:
                    language = self.language
            try:
                position = engine.engine.position(str(interaction_id))
                wait = engine.engine.expected_wait(str(interaction_id), engine.now())
            except r.RoutingError:
                break
            if position is None:
                continue  # ringing an agent right now
            pcm = await self.announcer.render(language, position, wait)
            if pcm and call.state == "queued":
                call.media.play_prompt(pcm)
                call.media.stats.announcements += 1
        call.announcer = None

    def _start_recording(self, call: _Call) -> None:
        """Record from the first answer on: one mixed mono WAV and, if configured, a stereo one
        (caller left, agent right), listed in the interaction's ``recordings``."""
        if self.recordings_dir is None or call.recording or call.interaction_id is None:
            return
        call.recording = True
        self._record_media(call.media, call.interaction_id, self._quietly)

    # ================================================================ the ACD side
    def _on_acd_outputs(self, outputs: list[r.Output]) -> None:
        for o in outputs:
            if isinstance(o, r.OfferContact) and o.channel == "voice" and not o.is_callback:
                call = self._by_interaction.get(int(o.contact_id))
                if call is None:
                    # Offered inside the same command that queued it: the call learns its id next.
                    self._orphan_offers[int(o.contact_id)] = o
                else:
                    self._ring_agents(call, o)
            elif isinstance(o, r.WithdrawOffer | r.OfferTimedOut):
                self._orphan_offers.pop(int(o.contact_id), None)
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.pending_offers:
                    gone = set(o.agent_ids)
                    call.pending_offers = [p for p in call.pending_offers if not gone & set(p.agent_ids)]
                if call is not None and call.agent is not None and str(call.agent.agent_id) in o.agent_ids:
                    self._cancel_agent(call, "no_answer" if isinstance(o, r.OfferTimedOut) else "withdrawn")
            elif isinstance(o, r.ContactTransferred) and o.from_agent is not None:
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.state == "bridged":
                    self._back_to_queue(call)
            elif isinstance(o, r.ContactFinished):
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.state == "bridged":
                    # Ended in the ACD while the call is up ("End conversation" / "Complete" on the
                    # desk): hang up both legs; the contact is already in wrap-up.
                    call.state = "finishing"
                    self._bye_agent(call, "hangup_api")
                    self._finish(call, from_caller=False, cause="hangup_api")
            elif isinstance(o, r.FallbackAction | r.ContactRefused | r.ContactAbandoned):
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.state == "queued":
                    self._turn_away(call, o)
                elif call is None and not isinstance(o, r.ContactAbandoned):
                    # Turned away inside the command that queued it: the call learns its id next.
                    self._turned_away_early[int(o.contact_id)] = o
                    if len(self._turned_away_early) > TURNED_AWAY_KEPT:
                        # Most are other channels' contacts, which no call will ask for.
                        del self._turned_away_early[next(iter(self._turned_away_early))]

    def _turn_away(self, call: _Call, o: r.Output) -> None:
        """The ACD sends a waiting caller away (no agents, queue closed, too long a wait): the queue's
        fallback action (voicemail, or the "closed" message: voicemail.py), else 480."""
        if isinstance(o, r.FallbackAction):
            self._spawn(self._turned_away(call, o.action))
            return
        call.interaction_id = None
        self._abandon(call, 480)

    async def _turned_away(self, call: _Call, action: str) -> None:
        """Answer a caller the ACD turned away and run the action's flow (channels/voice/voicemail.py);
        the contact is finished in the ACD already (ticket, callback: services/fallback.py)."""
        call.state = "voicemail"
        for timer in (call.refresh, call.announcer):
            if timer is not None:
                timer.cancel()
        if call.dialog is None:
            call.dialog = self._answer_invite(call.invite, call.local_tag, call.source, call.local_sdp)
            if call.record is not None:
                call.record.answered(self.calls.now())
        line = _TurnedAwayLine(self, call)
        if action == "voicemail" and self.recordings_dir is not None:
            await voicemail.leave_voicemail(line, self.prompts.get("voicemail", b""))
        else:
            await voicemail.say_closed(line, self.prompts.get("closed", b""))

    def _ring_agents(self, call: _Call, offer: r.OfferContact) -> None:
        if call.state != "queued":
            return
        previous = call.agent
        if previous is not None and (previous.cancelled or previous.ended):
            # The last agent's phone is still being released (CANCEL sent, its final answer not in
            # yet): ring the next agent when it is gone. Turning the offer down instead would make
            # the ACD offer the call to agent after agent, each turned down the same way.
            call.pending_offers = [offer]
            return
        agent_id = int(offer.agent_ids[0])
        for other in offer.agent_ids[1:]:
            # ring_all offers several agents at once; parallel forking is not built yet, so the others
            # are released at once rather than left "ringing" until the offer times out.
            self._spawn(self._quietly(self.calls.offer_declined(int(offer.contact_id), int(other))))
        bindings = self.registrar.bindings(agent_id, self.clock())
        if not bindings or call.agent is not None:
            # No phone registered: the caller keeps their place, the ACD tries the next agent.
            self._spawn(self._quietly(self.calls.offer_declined(int(offer.contact_id), agent_id)))
            return
        binding = bindings[0]
        destination = binding.source
        caller = call.invite.from_
        # The agent is offered the caller's codec first so the relay never has to transcode.
        offer_sdp, invite = self._invite_phone(
            binding,
            call.media,
            call.invite.call_id + "-agent",
            _codecs_for(call.local_sdp),
            NameAddress(caller.uri, caller.display_name),
            extra_headers=(("X-Frontoffice-Interaction", str(call.interaction_id)),),
        )
        record = CallLeg(
            "agent",
            invite.call_id,
            self.calls.now(),
            peer=str(binding.contact.uri),
            agent_id=agent_id,
            interaction_id=call.interaction_id,
            transfer=call.transferred,
        )
        key = self._request(invite, destination, lambda response: self._agent_response(call, response))
        assert key is not None
        call.agent = _AgentLeg(agent_id, invite, key, destination, offer_sdp, record=record)
        self._agent_calls[invite.call_id] = call

    def _ring_pending(self, call: _Call) -> None:
        """Ring the offer that arrived while the previous agent's phone was being released."""
        if call.agent is None and call.pending_offers:
            self._ring_agents(call, call.pending_offers.pop())

    def _cancel_agent(self, call: _Call, cause: str) -> None:
        leg = call.agent
        if leg is None or leg.cancelled or leg.ended:
            return
        leg.cancelled = True
        if leg.record is not None:
            leg.record.pending_cause = leg.record.pending_cause or cause
        if leg.answered:
            self._bye_agent(call, cause)
        else:
            # RFC 3261 §9.1: CANCEL only a pending INVITE; a 2xx that crosses it is ACKed and BYEd.
            self._request(build_cancel(leg.invite), leg.destination, None)

    def _agent_response(self, call: _Call, response: Response | None) -> None:
        leg = call.agent
        if leg is None:
            return
        if response is None or (response.is_final and not response.is_success):
            status = 408 if response is None else response.status
            self._close_leg(leg.record, cause_of_status(status), status)
            self._clients.pop(leg.key, None)
            call.agent = None
            self._agent_calls.pop(leg.invite.call_id, None)
            if not leg.cancelled and call.state == "queued" and call.interaction_id is not None:
                # Busy (486), unavailable (480), declined (603) or no answer: back to their place.
                self._spawn(self._quietly(self.calls.offer_declined(call.interaction_id, leg.agent_id)))
            self._ring_pending(call)
            return
        if response.is_provisional:
            if response.status in (180, 183) and leg.record is not None:
                leg.record.ringing(self.calls.now())
            self._clients[leg.key] = lambda next_response: self._agent_response(call, next_response)
            return
        # 2xx: ACK at once (RFC 3261 §13.2.2.4), whatever happens next.
        leg.dialog = self._ack_answer(leg.invite, response, leg.destination)
        leg.answered = True
        if leg.record is not None:
            leg.record.answered(self.calls.now(), response.status)
        if leg.cancelled or call.state != "queued" or call.interaction_id is None:
            self._bye_agent(call, "withdrawn")
            if leg.cancelled and call.state == "queued":
                # Answered as the offer was withdrawn: that phone is hung up, the next may ring.
                call.agent = None
                self._ring_pending(call)
            return
        try:
            call.media.set_agent(
                apply_answer(leg.offer, parse_sdp(response.body)), signalling_ip=leg.destination.host
            )
        except ProtocolError:
            self._bye_agent(call, "failed")
            self._spawn(self._quietly(self.calls.offer_declined(call.interaction_id, leg.agent_id)))
            call.agent = None
            return
        self._spawn(self._connect(call, leg))

    def _connected_to(self, interaction_id: int, agent_id: int) -> bool:
        try:
            status = self.calls.acd.engine.contact_status(str(interaction_id))
        except r.RoutingError:
            return False
        return status.state == "connected" and status.agent_ids == (str(agent_id),)

    async def _connect(self, call: _Call, leg: _AgentLeg) -> None:
        assert call.interaction_id is not None
        try:
            await self.calls.offer_answered(call.interaction_id, leg.agent_id)
        except DomainError:
            if not self._connected_to(call.interaction_id, leg.agent_id):
                # The offer was withdrawn meanwhile (the caller hung up, it timed out): drop the leg.
                self._bye_agent(call, "withdrawn")
                return
            # The agent pressed Accept on the desk while the phone rang: the ACD has the contact
            # connected to them already; the phone's answer bridges the call.
        if call.state != "queued" or leg.ended:
            # Either side hung up while the answer was being committed: the contact was connected,
            # so it ends like a bridged call (wrap-up); a caller still waiting is told 480.
            self._bye_agent(call, "caller_left")
            self._spawn(self._quietly(self.calls.call_ended(call.interaction_id)))
            if call.state == "queued":
                call.interaction_id = None
                self._end_unanswered(call, 480)
            return
        call.state = "bridged"
        if call.refresh is not None:
            call.refresh.cancel()
        if call.announcer is not None:
            call.announcer.cancel()
            call.announcer = None
        self._start_recording(call)
        if call.dialog is not None:
            # A transferred caller was answered long ago: only the media changes.
            call.media.bridge()
            if call.held:
                self._resume(call)
            return
        call.media.bridge()
        call.dialog = self._answer_invite(call.invite, call.local_tag, call.source, call.local_sdp)
        if call.record is not None:
            call.record.answered(self.calls.now())

    def _on_response(self, event: ResponseReceived) -> None:
        response = event.response
        if event.transaction is None:
            if self.trunking.screen_response(response):
                return
            # A retransmitted 2xx after the INVITE transaction ended: re-send the ACK (§13.2.2.4).
            call = self._agent_calls.get(response.call_id)
            if call is not None and call.agent is not None and call.agent.dialog is not None:
                self._request(call.agent.dialog.ack(response.cseq.seq), call.agent.destination, None)
            return
        owner = self._clients.pop(event.transaction, None)
        if owner is not None:
            owner(response)

    async def _quietly(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run an ACD use case whose failure must not take the call down (it is logged)."""
        try:
            await coro
        except DomainError as exc:
            log.info("voice ACD step skipped: %s", exc)


class _TurnedAwayLine:
    """A turned-away caller's answered call, as voicemail.py's flows use it (a TurnedAwayCaller)."""

    def __init__(self, service: VoiceService, call: _Call) -> None:
        self.service = service
        self.call = call

    def play(self, pcm: bytes) -> None:
        self.call.media.play_prompt(pcm)

    def silence(self) -> None:
        if self.call.state == "voicemail":
            # A bridge to no agent: the music stops, the caller's audio goes on being recorded.
            self.call.media.bridge()

    def record(self) -> None:
        if self.call.interaction_id is not None:
            self.service._record_media(self.call.media, self.call.interaction_id, self.service._quietly)

    async def digit(self, timeout_s: float) -> str | None:
        if self.call.state != "voicemail":
            return ""
        try:
            return await asyncio.wait_for(self.call.digits.get(), timeout_s)
        except TimeoutError:
            return None

    def hang_up(self) -> None:
        if self.call.state == "voicemail":
            self.service._finish(self.call, from_caller=False, cause="fallback")


def _codecs_for(local_sdp: SessionDescription) -> tuple[Any, ...]:
    """Our codecs with the one the caller leg uses first, plus telephone-event."""
    audio = local_sdp.audio()
    chosen = audio.codecs() if audio is not None else []
    first = [c for c in chosen if c.name.lower() != "telephone-event"][:1]
    return codecs_first(first[0]) if first else (PCMU, PCMA, TELEPHONE_EVENT)
