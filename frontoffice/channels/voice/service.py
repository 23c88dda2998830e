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
import contextlib
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, DomainError, NotFound
from frontoffice.services.voice_calls import (
    ConferenceTarget,
    InboundCall,
    IvrMenu,
    LiveCall,
    StoredRegistration,
    TrunkState,
    VoiceCalls,
)

from . import voicemail
from .announcements import Announcer
from .call_records import CallLeg, cause_of_status
from .call_setup import CallSetup, PendingInvite, info_digit
from .call_state import (
    Action,
    CallEvent,
    CallMachine,
    CallState,
    CallStateError,
    LegEvent,
    LegMachine,
    LegState,
    ReinviteEvent,
    ReinviteMachine,
    ReinviteState,
    reinvite_backoff_range,
)
from .campaign_calls import CampaignCalls
from .endpoint import Endpoint, MonotonicClock, ResponseOwner
from .extensions import ExtensionCall, ExtensionCalls
from .media import SAMPLE_RATE, MediaBackend, MediaSession, MediaStats
from .offers import codecs_first, sdp_session_id
from .outbound import OutboundLeg, Trunking
from .registrar import Binding, Registrar, RegistrationLimits
from .session_timers import SessionTimers
from .sip import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    AckTimeout,
    Destination,
    Dialog,
    DigestAuthenticator,
    MalformedRequests,
    Message,
    NameAddress,
    NegotiatedMedia,
    ProtocolError,
    Request,
    RequestReceived,
    Response,
    SessionDescription,
    SessionTimer,
    SipParseError,
    TimerSettings,
    TransactionKey,
    Transmit,
    answer_offer,
    apply_answer,
    build_cancel,
    build_offer,
    parse_name_addr,
    parse_sdp,
    parse_uri,
)
from .tls import TlsTransport
from .transport import TcpTransport, UdpTransport
from .trunks import Trunk

__all__ = ["VoiceService"]

log = logging.getLogger("frontoffice.voice")

# Methods we answer (RFC 3261 §20.5 Allow); anything else is 405.
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "REFER", "INFO", "UPDATE")
# RFC 3261 §20.37 Supported: the option tags we implement (sip/validation.py SUPPORTED_OPTION_TAGS).
SUPPORTED = "replaces, timer"
# RFC 3261 §13.3.1.1: a UAS should send a provisional at least every minute so proxies (Timer C,
# > 3 min) keep the transaction while the caller waits in the queue.
PROVISIONAL_REFRESH_S = 60.0
# How often expired registrations and bans are swept.
SWEEP_INTERVAL_S = 30.0
# Calls this node carries at once; beyond it a new INVITE gets 503 (RFC 3261 §21.5.4) with Retry-After.
MAX_CALLS = 2000
RETRY_AFTER_S = 30
RECENT_MEDIA = 1000
# The status of a refusal whose answer was sent already (by the step that failed, e.g. 488).
ANSWERED_ALREADY = 0
# On shutdown, how long hang-ups may take to be committed before their tasks are cancelled.
STOP_GRACE_S = 5.0
# A standby voice node tries to bind the SIP address this often: most of its takeover time after the
# address arrives (a failed bind costs a system call).
TAKE_ADDRESS_POLL_S = 0.2
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
# States in which the caller talks to someone (the desk may hang up).
_CONNECTED = frozenset(
    {
        CallState.BRIDGED,
        CallState.EXTERNAL,
        CallState.CONFERENCE,
        CallState.CONSULTING,
        CallState.HANDED_OVER,
        CallState.REPLACED,
    }
)
# RFC 3891 §3: the Replaces value names a dialog by Call-ID, to-tag and from-tag.
_REPLACES_TAGS = ("to-tag", "from-tag")


@dataclass(eq=False)
class _AgentLeg:
    """One INVITE to one registered phone of an agent: a branch of the (parallel) fork."""

    agent_id: int
    invite: Request
    key: TransactionKey
    destination: Destination
    offer: SessionDescription
    core: LegMachine = field(default_factory=LegMachine)
    dialog: Dialog | None = None
    record: CallLeg | None = None
    refer: bool = False  # the phone asked for this transfer (REFER): NOTIFY its outcome
    # The phone holds the caller with its own re-INVITE (a=sendonly / inactive). The hold is this
    # phone's: once another phone takes the caller (a transfer, a take-over), it is gone with it.
    holds: bool = False

    @property
    def call_id(self) -> str:
        return self.invite.call_id


@dataclass(eq=False)
class _ThirdParty:
    """Whom the agent brings into a three-way conference (``CallState.CONFERENCE``): a colleague's
    phone (``leg``: we are its UAC) or an external number (``external``: through a trunk). It has a
    media session of its own; its agent leg joins the caller's session's two legs in the mixer."""

    media: MediaSession
    conference_id: str
    record: CallLeg
    leg: _AgentLeg | None = None  # the colleague's phone that answered
    external: OutboundLeg | None = None
    consult: bool = False  # an attended transfer's consultation, not a conference
    # Every registered phone of the colleague rings at once (parallel forking); the first to answer
    # becomes ``leg``, the others get CANCEL.
    ringing: list[_AgentLeg] = field(default_factory=list)


@dataclass(eq=False)
class _Call:
    invite: Request
    key: TransactionKey
    source: Destination
    local_tag: str
    media: MediaSession | None = None  # opened right after the INVITE is registered
    local_sdp: SessionDescription | None = None
    core: CallMachine = field(default_factory=CallMachine)
    interaction_id: int | None = None
    dialog: Dialog | None = None
    agent: _AgentLeg | None = None  # the phone that answered (the bridged leg)
    ringing: list[_AgentLeg] = field(default_factory=list)  # branches of the offer being rung
    pending_offers: list[r.OfferContact] = field(default_factory=list)
    refresh: asyncio.TimerHandle | None = None
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    had_menu: bool = False
    record: CallLeg | None = None
    held: bool = False
    offered_direction: str = "sendrecv"  # what our last offer to the caller asked for
    reinvite: ReinviteMachine = field(default_factory=ReinviteMachine)
    backoff: asyncio.TimerHandle | None = None
    # A session refresh (RFC 4028) that could not go now: another re-INVITE was in progress, or ours
    # got 491 (RFC 3261 §14.1 / RFC 3311 §5.2). It goes once the re-INVITE is over or the back-off ran out.
    refresh_wanted: bool = False
    refresh_retry: asyncio.TimerHandle | None = None
    transferred: bool = False
    recording: bool = False
    fallback: str | None = None  # the ACD's fallback action for a turned-away caller (voicemail.py)
    announcer: asyncio.Task[None] | None = None
    external: OutboundLeg | None = None  # a blind transfer to an external number (through a trunk)
    external_record: CallLeg | None = None
    third: _ThirdParty | None = None  # a conference's third party, ringing or in the mix
    status: int = 487  # the final failure status when the call is refused
    # Attended transfer from the phone (REPLACED): the colleague the contact goes to in the ACD, whether
    # the ACD offered it to them yet, the transferring phone's consultation dialog (BYEd once the ACD
    # committed) and the dialog its REFER came on (NOTIFY 200 goes there).
    handover_agent: int | None = None
    handover_offered: bool = False
    handover_committed: bool = False  # the ACD moved the contact; a later offer is accepted at once
    transferor: tuple[Dialog, Destination] | None = None
    notify_to: tuple[Dialog, Destination] | None = None

    @property
    def state(self) -> CallState:
        return self.core.state

    @property
    def talking_leg(self) -> _AgentLeg | None:
        """The phone the caller talks to: after an attended transfer (``REPLACED``) the colleague's,
        otherwise the agent's (bridged, or being bridged)."""
        if self.state is CallState.REPLACED:
            return self.third.leg if self.third is not None else None
        return self.agent

    @property
    def phone_held(self) -> bool:
        """Whether the phone the caller talks to holds them with its own re-INVITE. Kept on that
        phone's leg, not on the call: a phone that holds and then transfers must not leave the next
        agent's phone held (the caller on music, the agent hearing nothing)."""
        leg = self.talking_leg
        return leg is not None and leg.holds


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
        wire: Callable[[Transmit], None] | None = None,
        qualify_interval_s: float | None = None,
        standby: bool = False,
    ) -> None:
        self.calls = calls
        # A standby voice node (docs/scaling.md, "Voice nodes"): start() returns at once and the node
        # takes the SIP address when it can bind it (keepalived moved it here, or the node holding
        # it died); see _take_address.
        self.standby = standby
        self._address_task: asyncio.Task[None] | None = None
        self._lost_calls_task: asyncio.Task[None] | None = None
        self._node_ready = asyncio.Event()
        self.listening = False
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
        self.endpoint = Endpoint(
            host=host,
            port=port,
            clock=clock,
            timers=timers,
            tcp=tcp,
            tls_context=tls_context,
            tls_port=tls_port,
            wire=wire,
            allowed_methods=ALLOWED,
        )
        self.layer = self.endpoint.layer
        self.tls_port = tls_port
        self.registrar = Registrar(
            DigestAuthenticator(realm, secret, algorithms=digest_algorithms),
            limits=limits,
            banned_networks=banned_networks,
        )
        self.setup = CallSetup(
            self.endpoint,
            self.registrar,
            calls,
            media,
            recordings_dir=recordings_dir,
            stereo_recordings=stereo_recordings,
        )
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self.tls: TlsTransport | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        # Qualify: OPTIONS to every registered phone each interval (None: off); see _qualify.
        self.qualify_interval_s = qualify_interval_s
        self._qualifier: asyncio.TimerHandle | None = None
        self._running = False
        self._calls: dict[str, _Call] = {}  # caller's Call-ID
        self._agent_calls: dict[str, _Call] = {}  # agent legs' Call-IDs (each branch of a fork)
        self._released_legs: dict[str, _AgentLeg] = {}  # phones BYEd after a late 2xx, for re-ACKs
        self._by_interaction: dict[int, _Call] = {}
        self._orphan_offers: dict[int, r.OfferContact] = {}
        self._turned_away_early: dict[int, r.FallbackAction | r.ContactRefused] = {}
        # Media counters of the last finished calls (interaction id, stats), for diagnostics and bench/.
        self.recent_media: deque[tuple[int | None, MediaStats]] = deque(maxlen=RECENT_MEDIA)
        # On every node: a voice node that does not route hears the leader's offers of its calls.
        calls.acd.add_listener(self._on_acd_outputs, on_every_node=True)
        # Carrier trunks (screening, registrations out, calls out): outbound.py. TLS: tls.py.
        self.trunking = Trunking(self.endpoint, self.setup, self, trunks, region=region)
        # Outbound campaigns' calls (campaign_calls.py): the dialler's DialPort; they hear the ACD's
        # offers of their own contacts, which this B2BUA leaves alone.
        self.campaign_calls = CampaignCalls(
            self.endpoint, self.setup, self.trunking.lines, self.trunking.dialler, calls
        )
        calls.acd.add_listener(self.campaign_calls.on_acd_outputs, on_every_node=True)
        # Phones calling a colleague's extension (extensions.py); the transferring phones' consultation
        # dialogs after an attended transfer, by Call-ID, until they are BYEd.
        self.extensions = ExtensionCalls(self.endpoint, self.setup)
        self._transferors: dict[str, _Call] = {}
        # RFC 3261 §14.1 back-off after a 491: drawn from this (a test passes a fixed one).
        self.backoff_random = random.Random()
        # RFC 4028 session timers of the callers' dialogs (session_timers.py): one loop timer wakes
        # up at the earliest deadline, as the endpoint's does for the transaction timers.
        self.session_timers = SessionTimers()
        self._session_wakeup: asyncio.TimerHandle | None = None
        self._session_wakeup_at: float | None = None

    # ================================================================ life cycle
    async def start(self) -> None:
        """Listen on UDP (and TCP on the same port), take the phones' registrations from the
        database and start the timer task. A standby returns at once and listens once it can bind the
        address (:meth:`_take_address`)."""
        if self.standby:
            self._address_task = asyncio.get_running_loop().create_task(
                self._take_address(), name="sip-take-address"
            )
            return
        await self._bind()
        await self._serve()

    async def _bind(self) -> None:
        try:
            await self.endpoint.start(self)
        except OSError:
            self.endpoint.close_transports()  # UDP bound, TCP refused: nothing half-open stays
            raise

    async def _serve(self) -> None:
        """What follows the bind: registrations, timers, media, trunks, the lost calls' closing."""
        # Read once the address is ours (a standby's phones registered with the active node until
        # now). A call arriving during the read (milliseconds) rings phones only after the ACD's offer,
        # which comes after it; a REGISTER handled meanwhile is kept (restore keeps newer bindings).
        await self._restore_registrations()
        self.port = self.endpoint.port
        self.tls_port = self.endpoint.tls_port
        self.udp, self.tcp, self.tls = self.endpoint.udp, self.endpoint.tcp, self.endpoint.tls
        self.calls.sip_address = f"{self.host}:{self.port}"
        self._running = True
        self.listening = True
        self._sweep()
        self._qualify()
        await self.media.start()
        await self.trunking.start()
        self.campaign_calls.serving = True  # the dialler may place calls through this node now
        log.info("SIP listening on %s:%s", self.host, self.port)
        self._lost_calls_task = asyncio.get_running_loop().create_task(
            self._close_lost_calls(), name="sip-lost-calls"
        )

    async def _take_address(self) -> None:
        """Bind the SIP address as soon as it can be bound: with keepalived (or a carrier's fail-over)
        the address arrives on this host when the active voice node fails (the bind fails with
        EADDRNOTAVAIL until then); on one host, the active node's socket closes when it dies
        (EADDRINUSE until then)."""
        while True:
            try:
                await self._bind()
            except OSError as exc:
                log.debug("the SIP address is not ours yet: %s", exc)
                await asyncio.sleep(TAKE_ADDRESS_POLL_S)
                continue
            log.warning("this voice node took the SIP address %s:%s over", self.host, self.port)
            await self._serve()
            return

    def node_ready(self) -> None:
        """The node's services run (``Container.start`` calls this): commands reach the ACD, so the
        calls lost with a dead voice node can be closed once this node holds the address."""
        self._node_ready.set()

    async def _close_lost_calls(self) -> None:
        await self._node_ready.wait()
        try:
            await self.calls.close_lost_calls()
        except Exception:
            log.exception("closing the calls lost with a voice node failed")

    async def _restore_registrations(self) -> None:
        """The registrations in the database (made with this node before a restart, or with the voice
        node whose address this one takes over) join the registrar."""
        try:
            stored = await self.calls.stored_registrations()
        except Exception:
            log.exception("the stored registrations could not be read")
            return
        now, wall = self.clock(), self.calls.now()
        bindings = []
        for reg in stored:
            try:
                contact = parse_name_addr(reg.contact)
            except SipParseError:
                continue
            bindings.append(
                Binding(
                    user_id=reg.user_id,
                    username=reg.username,
                    contact=contact,
                    source=Destination(reg.host, reg.port, reg.transport),
                    expires_at=now + (reg.expires_at - wall).total_seconds(),
                    call_id=reg.call_id,
                    cseq=reg.cseq,
                    registered_at=now + (reg.registered_at - wall).total_seconds(),
                )
            )
        self.registrar.restore(bindings, now)
        if bindings:
            log.info("%d phone registrations taken from the database", len(bindings))

    async def _save_registrations(self, user_id: int, now: float) -> None:
        """Keep the agent's live bindings in the database (see :meth:`_restore_registrations`)."""
        wall = self.calls.now()
        await self.calls.save_registrations(
            user_id,
            [
                StoredRegistration(
                    user_id=b.user_id,
                    username=b.username,
                    contact=str(b.contact),
                    transport=b.source.transport,
                    host=b.source.host,
                    port=b.source.port,
                    call_id=b.call_id[:500],
                    cseq=b.cseq,
                    registered_at=wall + timedelta(seconds=b.registered_at - now),
                    expires_at=wall + timedelta(seconds=b.expires_at - now),
                )
                for b in self.registrar.bindings(user_id, now)
            ],
        )

    async def stop(self) -> None:
        """Hang up every call, close transports and media."""
        for task in (self._address_task, self._lost_calls_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self.listening:
            return  # a standby that never took the address over
        self.campaign_calls.stop()
        await self.trunking.stop()
        self.extensions.hang_up_all()
        for call in list(self._calls.values()):
            self._hang_up(call, "shutdown")
        self._running = False
        for handle in (self._sweeper, self._qualifier, self._session_wakeup):
            if handle is not None:
                handle.cancel()
        self._sweeper = self._qualifier = self._session_wakeup = None
        self.endpoint.stop_timers()
        # Let the hang-ups reach the ACD and the wire (bounded), then cancel what is left.
        await self.endpoint.drain(STOP_GRACE_S)
        await self.media.close()

    @property
    def malformed(self) -> MalformedRequests:
        """What the endpoint answered to requests that did not parse (counts: ``malformed.counts``)."""
        return self.endpoint.malformed

    @property
    def is_idle(self) -> bool:
        """Nothing the last SIP messages started is still running (tests wait for this)."""
        return self.endpoint.is_idle

    def live_call_ids(self) -> Collection[str]:
        """Call-IDs of the inbound calls in progress (trunking counts a trunk's calls with them)."""
        return self._calls.keys()

    def calls_in(self, state: CallState | str) -> int:
        """How many inbound calls are in ``state`` now (``"bridged"`` ...): for bench/ and diagnostics."""
        return sum(1 for call in self._calls.values() if call.state == state)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.endpoint.spawn(coro)

    def _sweep(self) -> None:
        """Expire registrations and bans, every SWEEP_INTERVAL_S while running."""
        self.registrar.expire(self.clock())
        if self._running:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)

    # ---------------------------------------------------------------- qualify (OPTIONS to each phone)
    def _qualify(self) -> None:
        """OPTIONS to every registered phone, every ``qualify_interval_s`` while running; a phone that
        does not answer within the transaction timeout (Timer F) is unreachable (registrar.py)."""
        if not self.qualify_interval_s or not self._running:
            return
        sender = NameAddress(parse_uri(f"sip:frontoffice@{self.host}"))
        for binding in self.registrar.qualify_due(self.clock()):
            request = self.registrar.options_for(binding, self.endpoint.via(binding.source.transport), sender)
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

    # ================================================================ wire in, wire out
    def on_message(self, message: Message | SipParseError, source: Destination) -> None:
        """What the transports deliver (:class:`~.endpoint.EndpointHandlers`)."""
        self._on_message(message, source)

    def _on_message(self, message: Message | SipParseError, source: Destination) -> None:
        if isinstance(message, SipParseError):
            # RFC 3261 §8.2: the endpoint answers 400 (or 505/513), limited per source.
            self.endpoint.receive(message, source)
            return
        if isinstance(message, Request) and self.registrar.is_banned(source.host, self.clock()):
            return
        if isinstance(message, Request) and self.trunking.drop_scanner(message, source):
            return  # before the transaction layer, so not even a 100 Trying goes back
        self.endpoint.receive(message, source)

    # Kept as this file's own names for the request dispatch below.
    def _respond(self, request: Request, status: int, reason: str | None = None, **kwargs: Any) -> None:
        self.endpoint.respond(request, status, reason, **kwargs)

    def _respond_with(self, response: Response) -> None:
        self.endpoint.respond_with(response)

    def _request(
        self, request: Request, destination: Destination, owner: ResponseOwner | None
    ) -> TransactionKey | None:
        return self.endpoint.request(request, destination, owner)

    def port_for(self, transport: str) -> int:
        """Our port for ``transport``: TLS listens on its own (5061), UDP and TCP share ``port``."""
        return self.endpoint.port_for(transport)

    async def dial_out(
        self, number: str, *, trunk: str | None = None, caller_id: str | None = None, **options: Any
    ) -> OutboundLeg:
        """Call an external ``number`` through a trunk (the first by default); returns the leg handle
        at once. Options (``offer``, ``media``, ``on_answer``...): :meth:`Trunking.dial_out`."""
        return await self.trunking.dial_out(number, trunk=trunk, caller_id=caller_id, **options)

    # ================================================================ requests
    def on_request(self, event: RequestReceived) -> None:
        """A request from the transaction layer (:class:`~.endpoint.EndpointHandlers`)."""
        self._on_request(event)

    def _on_request(self, event: RequestReceived) -> None:
        request = event.request
        method = request.method
        # RFC 3261 §8.2 (501, 416, 420, 415) was checked by the endpoint before it got here.
        if self.trunking.screen_request(event):
            return  # a scanner (dropped), or a request of a call through a trunk
        if self.extensions.claim_request(event):
            return  # a phone's call to a colleague's extension
        if self.campaign_calls.claim_request(event):
            return  # an agent's phone on a campaign call
        if method == "ACK":
            return  # ACK for our 2xx: the layer stopped retransmitting it (§13.3.1.4)
        if method == "OPTIONS":
            # RFC 3261 §11.2: capabilities (also the keepalive carriers send to trunks).
            self._respond(
                request,
                200,
                extra_headers=[
                    ("Allow", ", ".join(ALLOWED)),
                    ("Accept", "application/sdp"),
                    ("Supported", SUPPORTED),
                ],
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
        elif method == "INFO":
            self._on_info(request)
        elif method == "UPDATE":
            self._on_update(request)
        else:
            self._respond(request, 405, extra_headers=[("Allow", ", ".join(ALLOWED))])

    # ---------------------------------------------------------------- registrar
    async def _register(self, request: Request, source: Destination) -> None:
        now = self.clock()
        if self.registrar.is_scanner(request):
            self.registrar.ban(source.host, now)
            return
        checked = await self.setup.authenticate(request, now)
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
        response = self.registrar.register(request, source, account.user_id, username, now)
        if response.status == 200:
            # Stored before the answer: a phone told it is registered is registered on every voice
            # node that takes this one's address over.
            try:
                await self._save_registrations(account.user_id, now)
            except Exception:
                log.exception("a registration could not be stored")
        self._respond_with(response)
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
        offer = self.setup.sdp_offer(request)
        if offer is None:
            self.trunking.release(request.call_id)
            return
        self.accept_call(request, event, offer)

    def accept_call(self, request: Request, event: RequestReceived, offer: SessionDescription) -> None:
        """Take a screened INVITE to an entry point as an inbound call (:class:`~.outbound.InboundCalls`).

        The call is registered at once, before any await: a CANCEL that follows the INVITE by a
        millisecond finds it (in ``ARRIVING``) and ends it with 487."""
        assert event.transaction is not None
        # A CANCEL's 200 may have chosen the To tag already (RFC 3261 §9.2): the INVITE's answers use it.
        local_tag = self.endpoint.to_tag(event.transaction)
        call = _Call(invite=request, key=event.transaction, source=event.source, local_tag=local_tag)
        self._calls[request.call_id] = call
        call.record = CallLeg("caller", request.call_id, self.calls.now(), peer=request.from_.uri.user or "")
        self._spawn(self._set_up_call(call, offer))

    async def call_extension(
        self,
        pending: PendingInvite,
        event: RequestReceived,
        offer: SessionDescription,
        caller_agent_id: int,
        callee_agent_id: int,
    ) -> None:
        """A phone calls a colleague's extension (:class:`~.outbound.InboundCalls`; extensions.py)."""
        await self.extensions.call(pending, event.source, offer, caller_agent_id, callee_agent_id)

    async def replace_dialog(
        self, pending: PendingInvite, event: RequestReceived, offer: SessionDescription, agent_id: int
    ) -> None:
        """An INVITE with Replaces (RFC 3891) from a phone of agent ``agent_id``: when it names the
        agent leg of a connected call of the same agent (its desk phone, say), the new phone takes the
        call over and the old one gets BYE; a dialog we do not have gets 481 (§3), another agent's 403
        (a colleague takes a call over by the attended transfer, which hands the contact over)."""
        request = pending.request
        endpoint = self.endpoint
        to_tag = endpoint.to_tag(pending.key)
        replaces = parse_replaces(request.headers.get("Replaces") or "")
        call = self._agent_calls.get(replaces[0]) if replaces is not None else None
        leg = call.agent if call is not None else None
        if (
            replaces is None
            or call is None
            or leg is None
            or leg.dialog is None
            or leg.call_id != replaces[0]
            or {replaces[1], replaces[2]} != {leg.dialog.local_tag, leg.dialog.remote_tag}
            or call.state is not CallState.BRIDGED
            or call.media is None
            or call.local_sdp is None
        ):
            endpoint.respond(request, 481, to_tag=to_tag)
            return
        if leg.agent_id != agent_id:
            endpoint.respond(request, 403, to_tag=to_tag)
            return
        try:
            local_sdp, negotiated = answer_offer(
                offer,
                address=call.media.address,
                port=call.media.agent_port,
                session_id=sdp_session_id(request.call_id),
                codecs=_codecs_for(call.local_sdp),
            )
        except ProtocolError as exc:
            endpoint.respond(request, getattr(exc, "status_code", 488), to_tag=to_tag)
            return
        if pending.cancelled:
            return
        call.media.set_agent(negotiated, signalling_ip=event.source.host)
        dialog = endpoint.answer_invite(request, to_tag, event.source, local_sdp)
        record = CallLeg(
            "agent",
            request.call_id,
            self.calls.now(),
            peer=str(request.from_.uri),
            agent_id=agent_id,
            interaction_id=call.interaction_id,
        )
        record.answered(self.calls.now())
        new = _AgentLeg(agent_id, request, pending.key, event.source, local_sdp, dialog=dialog, record=record)
        new.core.handle(LegEvent.ANSWERED)
        self._move(call, CallEvent.PHONE_REPLACED, cause="replaced")
        self._agent_calls.pop(leg.call_id, None)
        call.agent = new
        self._agent_calls[request.call_id] = call

    async def _set_up_call(self, call: _Call, offer: SessionDescription) -> None:
        request = call.invite
        answered = await self.setup.answer_offer(
            request,
            offer,
            lambda digit: self._on_dtmf(request.call_id, digit),
            signalling_ip=call.source.host,
        )
        if answered is None:
            call.status = ANSWERED_ALREADY  # answer_offer sent the 488
            self._refuse(call, ANSWERED_ALREADY)
            return
        session, local_sdp, _ = answered
        if call.core.is_over:
            # Cancelled (487 sent) while the media session was opening.
            self._spawn(session.close())
            return
        call.media = session
        call.local_sdp = local_sdp
        caller = request.from_
        dialled = request.uri.user or request.to.uri.user or ""
        try:
            entry = await self.calls.entry_for(dialled)
            choice = None
            if entry.ivr is not None and not call.core.is_over:
                choice = await self._run_menu(call, entry.ivr)
            if call.core.is_over:
                return  # cancelled before it was queued: no contact was recorded, nothing is abandoned
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
            self._refuse(call, 404)
            return
        except DomainError as exc:
            log.info("call refused: %s", exc)
            self._refuse(call, 480)
            return
        except Exception:
            log.exception("recording the call failed")
            self._refuse(call, 500)
            return
        if call.core.is_over:
            # The caller cancelled while the contact was being recorded: abandoned, not left queued.
            self._spawn(self._quietly(self.calls.call_abandoned(interaction_id)))
            return
        call.interaction_id = interaction_id
        assert call.record is not None
        call.record.interaction_id = interaction_id
        self._by_interaction[interaction_id] = call
        self._move(call, CallEvent.QUEUED)
        orphan = self._orphan_offers.pop(interaction_id, None)
        if orphan is not None:
            self._ring_agents(call, orphan)
        turned_away = self._turned_away_early.pop(interaction_id, None)
        if turned_away is not None:
            self._turn_away(call, turned_away)

    async def _run_menu(self, call: _Call, menu: IvrMenu) -> str | None:
        """Prompt, then wait for one of the menu's digits (RFC 4733); repeat on silence or a wrong key."""
        assert call.media is not None
        call.had_menu = True
        self._move(call, CallEvent.MENU_STARTED)
        call.media.play_hold_music()  # the chime when no spoken prompt is configured
        menu_prompt = self.prompts.get("menu", b"")
        choice = menu.default_choice
        for _ in range(menu.repeats + 1):
            if menu_prompt:
                call.media.play_prompt(menu_prompt)
            # A digit during the prompt counts (barge-in); the timeout runs from the prompt's end.
            prompt_s = len(menu_prompt) / 2 / SAMPLE_RATE
            try:
                digit = await asyncio.wait_for(call.digits.get(), prompt_s + menu.timeout_s)
            except TimeoutError:
                continue
            if call.core.is_over:
                return None
            if digit in menu.choices:
                choice = digit
                break
            if "invalid" in self.prompts:
                call.media.play_prompt(self.prompts["invalid"])
        if call.core.is_over:
            return None
        self._move(call, CallEvent.MENU_DONE)
        return choice

    def _send_progress(self, call: _Call) -> None:
        """183 with our SDP: early media carries the music on hold (RFC 3261 §13.3.1.1, RFC 3960)."""
        if call.state is not CallState.MENU and call.state is not CallState.QUEUED:
            return
        if call.dialog is not None or call.local_sdp is None:
            return  # a transferred caller waiting again: answered long ago
        if call.refresh is not None:
            call.refresh.cancel()
        self._respond_with(
            self.endpoint.sdp_response(
                call.invite, 183, call.local_sdp, call.source.transport, call.local_tag
            )
        )
        call.refresh = asyncio.get_running_loop().call_later(PROVISIONAL_REFRESH_S, self._send_progress, call)
        if call.record is not None:
            call.record.ringing(self.calls.now())

    def _on_dtmf(self, call_id: str, digit: str) -> None:
        call = self._calls.get(call_id)
        if call is None:
            return
        if call.state is CallState.MENU or call.state is CallState.TURNED_AWAY:
            call.digits.put_nowait(digit)
            return
        if call.interaction_id is None or call.had_menu:
            return
        # Without a menu, a digit pressed while waiting is still recorded as the caller's choice.
        self._spawn(self._quietly(self.calls.annotate(call.interaction_id, ivr_choice=digit)))

    def _on_cancel(self, request: Request, event: RequestReceived) -> None:
        # RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE if it is still pending - at any
        # moment before the final answer, from the INVITE's arrival on.
        if not self.endpoint.accept_cancel(request, event):
            return
        call = self._calls.get(request.call_id)
        if call is None or call.dialog is not None or not call.core.is_waiting:
            return
        self._move(call, CallEvent.CANCEL, cause="caller_left")

    def _refuse(self, call: _Call, status: int) -> None:
        """Answer the caller's INVITE with a failure (or BYE a transferred caller) and end the call."""
        if call.core.is_over:
            return
        call.status = status
        self._move(call, CallEvent.REFUSED, cause="refused")

    # ---------------------------------------------------------------- the call core's moves
    def _move(self, call: _Call, event: CallEvent, *, cause: str | None = None) -> None:
        """Feed ``event`` to the call's core and carry out the actions of the move (call_state.py)."""
        try:
            actions = call.core.handle(event)
        except CallStateError:
            log.exception("call %s: illegal move; hanging up", call.invite.call_id)
            self._cancel_agents(call, "failed")
            if call.dialog is not None:
                self._request(call.dialog.bye(), call.source, None)
            self._forget(call)
            return
        cause = cause or event.value
        for action in actions:
            if action is Action.SEND_PROGRESS:
                self._send_progress(call)
            elif action is Action.PLAY_HOLD_MUSIC:
                assert call.media is not None
                call.media.play_hold_music()
                self._start_announcements(call)
            elif action is Action.RECORD:
                self._start_recording(call)
            elif action is Action.BRIDGE:
                assert call.media is not None
                call.media.bridge()
            elif action is Action.ANSWER_CALLER:
                self._answer_caller(call)
            elif action is Action.RESPOND_487:
                self._end_invite(call, 487, "cancelled")
            elif action is Action.RESPOND_FAILURE:
                self._end_invite(call, call.status, "refused")
            elif action is Action.CANCEL_AGENTS:
                self._cancel_agents(call, cause)
            elif action is Action.BYE_AGENT:
                self._bye_agent(call, cause)
            elif action is Action.BYE_CALLER:
                if call.dialog is not None:
                    self._request(call.dialog.bye(), call.source, None)
            elif action is Action.BYE_EXTERNAL:
                external = call.external
                if external is not None and not external.is_over:
                    self._close_leg(call.external_record, cause, 200 if external.is_answered else 487)
                    external.hang_up()
            elif action is Action.ABANDON_CONTACT:
                if call.interaction_id is not None:
                    self._spawn(self._quietly(self.calls.call_abandoned(call.interaction_id)))
            elif action is Action.END_CONTACT:
                if call.interaction_id is not None:
                    self._spawn(self._quietly(self.calls.call_ended(call.interaction_id)))
            elif action is Action.RUN_FALLBACK:
                if call.refresh is not None:
                    call.refresh.cancel()
                    call.refresh = None
                if call.announcer is not None:
                    call.announcer.cancel()
                    call.announcer = None
                self._spawn(self._run_fallback(call))
            elif action is Action.MIX:
                self._mix(call)
            elif action is Action.MIX_CONSULTATION:
                third = call.third
                assert third is not None and call.media is not None
                for session in (call.media, third.media):
                    self.media.join_conference(third.conference_id, session, "agent")
            elif action is Action.CALLER_JOINS_MIX:
                if call.third is not None and call.media is not None:
                    self.media.join_conference(call.third.conference_id, call.media, "caller")
            elif action is Action.CALLER_LEAVES_MIX:
                if call.third is not None and call.media is not None:
                    self.media.leave_conference(call.third.conference_id, call.media, "caller")
            elif action is Action.RESUME_CALLER:
                if call.held:
                    self._resume(call)
            elif action is Action.AGENT_LEAVES_MIX:
                if call.third is not None and call.media is not None:
                    self.media.leave_conference(call.third.conference_id, call.media, "agent")
            elif action is Action.DROP_THIRD_PARTY:
                self._drop_third_party(call, cause)
            elif action is Action.MIX_REPLACEMENT:
                third = call.third
                assert third is not None and call.media is not None
                self.media.join_conference(third.conference_id, call.media, "caller")
                self.media.join_conference(third.conference_id, third.media, "agent")
            elif action is Action.HAND_OVER_CONTACT:
                self._spawn(self._hand_over_contact(call))
            elif action is Action.RECORD_THIRD_PARTY:
                if call.recording and call.third is not None and call.media is not None:
                    # What the third party says is part of the customer's call (agent side).
                    self.media.record_with(call.third.media, call.media)
            elif action is Action.REFRESH_SESSION:
                self._refresh_session(call)
            elif action is Action.NOTIFY_TRANSFEROR:
                if call.notify_to is not None:
                    dialog, destination = call.notify_to
                    call.notify_to = None
                    # RFC 3515 §2.4.5: the transfer succeeded; the implicit subscription ends.
                    self._request(dialog.notify_refer_progress(200, "OK"), destination, None)
            elif action is Action.BYE_TRANSFEROR:
                self._bye_transferor(call)
            elif action is Action.CLOSE:
                self._forget(call, cause)

    def _end_invite(self, call: _Call, status: int, cause: str) -> None:
        """The caller's INVITE gets its final failure; a caller answered before (back in the queue
        after a transfer) gets BYE instead."""
        if call.dialog is not None:
            self._request(call.dialog.bye(), call.source, None)
            self._close_leg(call.record, "refused")
            return
        if status != ANSWERED_ALREADY:
            self._respond(call.invite, status, to_tag=call.local_tag)
        self._close_leg(call.record, cause, status or None)

    def _answer_caller(self, call: _Call) -> None:
        """200 to the caller's INVITE; a transferred caller (answered before) is only taken off hold."""
        if call.dialog is not None:
            if call.held:
                self._resume(call)
            return
        assert call.local_sdp is not None
        call.dialog = self.endpoint.answer_invite(call.invite, call.local_tag, call.source, call.local_sdp)
        if call.record is not None:
            call.record.answered(self.calls.now())
        self._arm_session(call, SessionTimer.for_uas(call.invite, now=self.clock()))

    def _on_reinvite(self, request: Request) -> None:
        call = self._calls.get(request.call_id)
        if call is None or call.dialog is None or not call.dialog.matches_request(request):
            owner = self._agent_calls.get(request.call_id)
            leg = self._leg_of(owner, request.call_id) if owner is not None else None
            if owner is None or leg is None or leg.dialog is None:
                self._respond(request, 481)
                return
            leg.dialog.receive_request(request)  # DialogError: the endpoint answers 500 (§12.2.2)
            leg.offer = self.setup.answer_reinvite(
                request, leg.offer, self._media_of(owner, leg), leg.destination.transport, agent_side=True
            )
            self._agent_phone_hold(owner, leg)
            return
        call.dialog.receive_request(request)  # DialogError: the endpoint answers 500 (§12.2.2)
        if call.reinvite.handle(ReinviteEvent.THEIRS) == "reject_491":
            # RFC 3261 §14.2: our own re-INVITE is pending: the far end retries after its back-off.
            self._respond(request, 491)
            return
        # Hold, resume, moved media or a session refresh (RFC 3264 §8): while we hold the caller, we
        # go on holding.
        assert call.local_sdp is not None
        want = "sendonly" if call.held else "sendrecv"
        call.local_sdp = self.setup.answer_reinvite(
            request, call.local_sdp, call.media, call.source.transport, want
        )
        # RFC 4028 §10: the peer's re-INVITE refreshes the session (without Session-Expires: §9, no
        # timer any more).
        self._arm_session(call, SessionTimer.for_uas(request, now=self.clock()))

    def _on_info(self, request: Request) -> None:
        """INFO (RFC 6086) in a caller's dialog (early too: the menu plays as early media) or an agent
        leg's: 200; a DTMF digit (application/dtmf-relay, application/dtmf) counts as a key press while
        the caller is in a menu or a voicemail flow, and is ignored otherwise."""
        call = self._calls.get(request.call_id)
        if call is not None and request.to.tag == call.local_tag:
            if call.dialog is not None:
                call.dialog.receive_request(request)  # DialogError: the endpoint answers 500 (§12.2.2)
            self._respond(request, 200)
            digit = info_digit(request)
            if digit is not None and call.state in (CallState.MENU, CallState.TURNED_AWAY):
                self._on_dtmf(request.call_id, digit)
            return
        owner = self._agent_calls.get(request.call_id)
        leg = self._leg_of(owner, request.call_id)
        if leg is None or leg.dialog is None or not leg.dialog.matches_request(request):
            self._respond(request, 481)
            return
        leg.dialog.receive_request(request)
        self._respond(request, 200)

    def _on_update(self, request: Request) -> None:
        """UPDATE (RFC 3311) in a confirmed dialog: without SDP a 200 (a session refresh); with an
        offer, answered like a re-INVITE (hold, resume, moved media), 491 while ours is pending."""
        call = self._calls.get(request.call_id)
        if call is not None and call.dialog is not None and call.dialog.matches_request(request):
            call.dialog.receive_request(request)  # DialogError: the endpoint answers 500 (§12.2.2)
            if request.body and call.reinvite.state is ReinviteState.PENDING:
                self._respond(request, 491)  # RFC 3311 §5.2: an offer while ours is outstanding
                return
            assert call.local_sdp is not None
            want = "sendonly" if call.held else "sendrecv"
            call.local_sdp = self.setup.answer_update(
                request, call.local_sdp, call.media, call.source.transport, want
            )
            self._arm_session(call, SessionTimer.for_uas(request, now=self.clock()))  # as a re-INVITE
            return
        owner = self._agent_calls.get(request.call_id)
        leg = self._leg_of(owner, request.call_id)
        if owner is None or leg is None or leg.dialog is None or not leg.dialog.matches_request(request):
            self._respond(request, 481)  # RFC 3311 §5.2: UPDATE outside a dialog we have
            return
        leg.dialog.receive_request(request)
        leg.offer = self.setup.answer_update(
            request, leg.offer, self._media_of(owner, leg), leg.destination.transport, agent_side=True
        )
        if request.body:
            self._agent_phone_hold(owner, leg)

    @staticmethod
    def _media_of(call: _Call, leg: _AgentLeg) -> MediaSession | None:
        """The media session a phone's leg runs in: a third party's (a conference's, a consultation's,
        the colleague's after an attended transfer) is its own, not the caller's."""
        third = call.third
        if third is not None and (leg is third.leg or leg in third.ringing):
            return third.media
        return call.media

    def _agent_phone_hold(self, call: _Call, leg: _AgentLeg) -> None:
        """The phone the caller talks to held them (its offer a=sendonly / inactive, so our answer
        does not send) or took them back: music on hold to the caller, or the relay (the mix) again
        (RFC 3264 §8.4). Another phone's re-INVITE (the transferring agent's after the hand-over, a
        conference's third party) changes only its own leg's media."""
        if leg is not call.talking_leg:
            return
        audio = leg.offer.audio()
        direction = (audio.direction if audio is not None else None) or "sendrecv"
        held = direction in ("recvonly", "inactive")  # our answer's direction: we may not send
        if held == leg.holds:
            return
        # Remembered also before the bridge (a phone may hold right after its 200, while the answer is
        # being committed): the bridge then starts on hold (see _connect).
        leg.holds = held
        event = CallEvent.AGENT_HELD if held else CallEvent.AGENT_RESUMED
        if call.core.can(event):
            self._move(call, event, cause=event.value)

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
        """Answer a peer's re-INVITE and apply it to ``media`` (:meth:`CallSetup.answer_reinvite`)."""
        return self.setup.answer_reinvite(request, local_sdp, media, transport, want, agent_side=agent_side)

    def _on_bye(self, request: Request) -> None:
        transferred = self._transferors.get(request.call_id)
        if transferred is not None and transferred.transferor is not None:
            dialog = transferred.transferor[0]
            if dialog.matches_request(request):
                # The transferring phone ends its consultation dialog itself (RFC 5589 §7.1).
                dialog.receive_request(request)
                self._respond(request, 200)
                transferred.transferor = None
                del self._transferors[request.call_id]
                return
        call = self._calls.get(request.call_id)
        if call is not None and call.dialog is not None and call.dialog.matches_request(request):
            call.dialog.receive_request(request)  # before the 200: a stale BYE is refused (§12.2.2)
            self._respond(request, 200)
            if call.core.can(CallEvent.BYE_CALLER):
                self._move(call, CallEvent.BYE_CALLER, cause="bye_caller")
            return
        call = self._agent_calls.get(request.call_id)
        leg = self._leg_of(call, request.call_id) if call is not None else None
        if call is not None and leg is not None:
            if leg.dialog is not None:
                leg.dialog.receive_request(request)  # before the 200, as above
            self._respond(request, 200)
            if leg.core.state is LegState.ANSWERED:
                leg.core.handle(LegEvent.BYE_RECEIVED)
                third = call.third
                if third is not None and third.leg is leg:
                    # After a phone's attended transfer the colleague is the call's agent.
                    replaced = call.state is CallState.REPLACED
                    self._close_leg(third.record, "bye_agent" if replaced else "bye_third_party")
                    self._third_left(call)
                    return
                # Hanging up during a consultation completes the attended transfer (as PBXs do).
                consulting = call.agent is leg and call.state is CallState.CONSULTING
                self._close_leg(leg.record, "transferred" if consulting else "bye_agent")
                if call.agent is leg and call.core.can(CallEvent.BYE_AGENT):
                    self._move(call, CallEvent.BYE_AGENT, cause="bye_agent")
            return
        self._respond(request, 481)

    @staticmethod
    def _leg_of(call: _Call | None, call_id: str) -> _AgentLeg | None:
        if call is None:
            return None
        if call.agent is not None and call.agent.call_id == call_id:
            return call.agent
        for leg in call.ringing:
            if leg.call_id == call_id:
                return leg
        if call.third is not None:
            for third in (call.third.leg, *call.third.ringing):
                if third is not None and third.call_id == call_id:
                    return third
        return None

    def _close_leg(self, record: CallLeg | None, cause: str, status: int | None = None) -> None:
        """End a leg's record once and append it to the interaction's event log."""
        if record is None:
            return
        if record.end(self.calls.now(), cause, status):
            self._write_leg(record)

    def _write_leg(self, record: CallLeg | None) -> None:
        """Append an ended leg's record to its interaction's event log (legs of no contact have none)."""
        if record is None or record.interaction_id is None or record.ended_at is None:
            return
        self._spawn(
            self._quietly(self.calls.record_leg(record.interaction_id, record.data(), record.ended_at))
        )

    def _hang_up(self, call: _Call, reason: str) -> None:
        if not call.core.is_over:
            call.status = 480
            self._move(call, CallEvent.HANG_UP, cause=reason)
        log.info("call %s hung up: %s", call.invite.call_id, reason)

    def _forget(self, call: _Call, cause: str | None = None) -> None:
        """Drop the call, close its media and, with ``cause`` (the core's CLOSE), end the caller's leg:
        its record is written once the media session closed, with the session's foreign packets."""
        for handle in (call.refresh, call.backoff, call.refresh_retry):
            if handle is not None:
                handle.cancel()
        if call.announcer is not None:
            call.announcer.cancel()
        call.digits.put_nowait("")  # wakes a menu waiting for input
        if call.third is not None:
            self._drop_third_party(call, cause or "failed")
        call_id = call.invite.call_id
        if self._calls.get(call_id) is call:
            del self._calls[call_id]
            self.session_timers.disarm(call_id)
        self.trunking.release(call_id)
        if call.agent is not None:
            self._agent_calls.pop(call.agent.call_id, None)
        for leg in call.ringing:
            if leg.core.state is LegState.ENDED:
                self._agent_calls.pop(leg.call_id, None)
        if call.interaction_id is not None:
            self._by_interaction.pop(call.interaction_id, None)
        record = call.record
        closing = cause is not None and record is not None and record.end(self.calls.now(), cause, 200)
        if call.media is not None:
            self.recent_media.append((call.interaction_id, call.media.stats))
            self._spawn(self._close_media(call.media, record if closing else None))
        elif closing:
            self._write_leg(record)

    async def _close_media(self, media: MediaSession, record: CallLeg | None) -> None:
        """Close a call's media session; then write the caller's leg (ended already) with the counters
        the session ends with: a relay's last counts arrive as it closes."""
        stats = await media.close()
        if record is not None:
            record.foreign_packets = stats.foreign_packets
            self._write_leg(record)

    def on_ack_timeout(self, event: AckTimeout) -> None:
        """RFC 3261 §13.3.1.4: no ACK for our 2xx (Timer H): the session is confirmed and at once
        ended - BYE to the caller as well as to the agent; the record says ``ack_timeout``."""
        if self.extensions.on_ack_timeout(event):
            return
        call = self._calls.get(event.call_id)
        if call is not None and call.core.can(CallEvent.ACK_TIMEOUT):
            self._move(call, CallEvent.ACK_TIMEOUT, cause="ack_timeout")

    # ================================================================ agent call control (CTI)
    def active_call(self, interaction_id: int) -> _Call:
        """The live call of an interaction; :class:`NotFound` when it has none on this node."""
        call = self._by_interaction.get(interaction_id)
        if call is None or call.core.is_over:
            raise NotFound("No such active call", error_id="no-such-call", interaction_id=interaction_id)
        return call

    def call_state(self, interaction_id: int) -> LiveCall:
        """What the desktop's call panel shows: state, hold, caller, when it was answered."""
        call = self.active_call(interaction_id)
        record = call.record
        return LiveCall(
            interaction_id=interaction_id,
            state=call.state.value,
            held=call.held,
            # The caller's session agrees with ``held``: no re-INVITE pending or backing off.
            hold_synced=call.reinvite.state is ReinviteState.IDLE
            and call.offered_direction == ("sendonly" if call.held else "sendrecv"),
            caller=record.peer if record is not None else "",
            answered_at=record.answered_at if record is not None else None,
        )

    async def click_to_call(
        self, user_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        """Click-to-call through a trunk (:meth:`Trunking.click_to_call`)."""
        return await self.trunking.click_to_call(user_id, number, customer_id=customer_id, trunk=trunk)

    def trunk_states(self) -> list[TrunkState]:
        """The carrier trunks' registration state and calls in progress."""
        now = self.clock()
        return [
            TrunkState(
                name=s.name,
                host=s.host,
                port=s.port,
                transport=s.transport,
                registers=s.registers,
                registered=s.registered,
                registration_state=s.registration_state,
                registered_for_s=round(s.registered_until - now, 1)
                if s.registered and s.registered_until
                else None,
                last_error=s.last_error,
                active_calls=s.active_calls,
                max_calls=s.max_calls,
            )
            for s in self.trunking.statuses()
        ]

    def _connected_call(self, interaction_id: int) -> _Call:
        call = self.active_call(interaction_id)
        if call.state is not CallState.BRIDGED or call.dialog is None:
            raise Conflict("The call is not connected", error_id="call-not-connected")
        return call

    def _holdable_call(self, interaction_id: int) -> _Call:
        """A call whose caller the contact's agent may hold: bridged to the agent's phone, or handed
        over to a colleague by an attended transfer (``REPLACED``: the caller and the colleague talk in
        a two-party mix, and the contact is the colleague's)."""
        call = self.active_call(interaction_id)
        if call.dialog is None or not (
            call.state is CallState.BRIDGED or (call.state is CallState.REPLACED and call.third is not None)
        ):
            raise Conflict("The call is not connected", error_id="call-not-connected")
        return call

    def hold(self, interaction_id: int) -> None:
        """Put the caller on hold: re-INVITE with ``a=sendonly`` (RFC 3264 §8.4) and music to them."""
        call = self._holdable_call(interaction_id)
        if call.held:
            return
        call.held = True
        assert call.media is not None
        if call.state is CallState.REPLACED and call.third is not None:
            # The caller leaves the two-party mix (the colleague hears silence, not the music).
            self.media.leave_conference(call.third.conference_id, call.media, "caller")
        call.media.play_hold_music()  # stops the relay both ways; the caller hears music
        self._sync_hold(call)

    def resume(self, interaction_id: int) -> None:
        """Take the caller off hold: re-INVITE with ``a=sendrecv``, relay (or mix) again."""
        call = self._holdable_call(interaction_id)
        if call.held:
            assert call.media is not None
            if call.state is CallState.REPLACED and call.third is not None:
                self.media.join_conference(call.third.conference_id, call.media, "caller")  # music stops
            else:
                call.media.bridge()
            self._resume(call)

    def _resume(self, call: _Call) -> None:
        call.held = False
        self._sync_hold(call)

    def _sync_hold(self, call: _Call) -> None:
        """Offer the caller the direction the hold state wants (``sendonly`` held, ``sendrecv`` not),
        one re-INVITE at a time: RFC 3261 §14.1 forbids a second while one is in progress, so a
        hold/resume pressed meanwhile (or during the back-off after a 491) is sent when it is over."""
        if call.reinvite.state is not ReinviteState.IDLE or call.dialog is None or call.core.is_over:
            return
        want = "sendonly" if call.held else "sendrecv"
        if call.offered_direction == want:
            return
        assert call.local_sdp is not None
        previous = call.offered_direction
        if call.held:
            request, call.local_sdp = call.dialog.hold(call.local_sdp)
        else:
            request, call.local_sdp = call.dialog.resume(call.local_sdp)
        call.offered_direction = want
        call.reinvite.handle(ReinviteEvent.SEND)
        self._reinvite(call, request, previous)

    def _reinvite(self, call: _Call, request: Request, previous: str, *, refresh: bool = False) -> None:
        def answered(response: Response | None) -> None:
            if response is not None and response.is_provisional:
                return  # the endpoint keeps telling us until the final answer
            if call.core.is_over or call.reinvite.state is not ReinviteState.PENDING:
                return
            glare = response is not None and response.status == 491
            if refresh:
                if glare:
                    call.refresh_wanted = True  # the refresh did not happen: it goes after the back-off
                else:
                    self._session_refresh_answered(call, response)
            if glare:
                # RFC 3261 §14.1 glare: the far end sent its own re-INVITE meanwhile. Ours did not
                # happen; it goes again after the back-off (see reinvite_backoff_range).
                call.reinvite.handle(ReinviteEvent.GLARE)
                call.offered_direction = previous
                low, high = reinvite_backoff_range(owns_call_id=False)  # the caller started the dialog
                delay = round(self.backoff_random.uniform(low, high), 2)  # in units of 10 ms
                call.backoff = asyncio.get_running_loop().call_later(delay, self._backoff_over, call)
                return
            call.reinvite.handle(ReinviteEvent.ANSWERED)
            if response is not None and response.is_success and call.dialog is not None:
                # RFC 3261 §13.2.2.4: the UAC ACKs every 2xx to its (re-)INVITE itself.
                self._request(call.dialog.ack(request.cseq.seq), call.source, None)
            elif response is not None:
                # The caller refused the new offer: the session goes on as before (RFC 3261 §14.1).
                log.info("re-INVITE of call %s refused: %s", call.invite.call_id, response.status)
            self._next_reinvite(call)

        self._request(request, call.source, answered)

    def _backoff_over(self, call: _Call) -> None:
        call.backoff = None
        if call.core.is_over:
            return
        call.reinvite.handle(ReinviteEvent.BACKOFF_OVER)
        self._next_reinvite(call)

    def _next_reinvite(self, call: _Call) -> None:
        """The re-INVITE in progress is over: a session refresh that had to wait goes first (the
        session's expiry is running), then the hold state's offer if it still differs."""
        if call.refresh_wanted:
            call.refresh_wanted = False
            self._refresh_session(call)
        self._sync_hold(call)

    # ---------------------------------------------------------------- session timers (RFC 4028)
    def session_timer(self, interaction_id: int) -> SessionTimer | None:
        """The session timer of the call's caller dialog (None: the carrier asked for none): for
        diagnostics and tests (``we_refresh``, ``refresh_at()``, ``expires_at()``)."""
        return self.session_timers.timer(self.active_call(interaction_id).invite.call_id)

    def fire_session_timers(self, now: float) -> None:
        """Feed the session timers due at ``now`` to their calls' cores (the loop timer does this at
        the earliest deadline; tests may too, with the clock they inject)."""
        for call_id, event in self.session_timers.handle_timer(now):
            call = self._calls.get(call_id)
            if call is not None and call.core.can(event):
                expired = event is CallEvent.SESSION_EXPIRED
                if expired:
                    log.info("call %s: session expired (RFC 4028 §10): hanging up", call_id)
                    call.status = 408
                self._move(call, event, cause="session_expired" if expired else "session_refresh")
        self._arm_session_wakeup()

    def _arm_session(self, call: _Call, timer: SessionTimer | None) -> None:
        """The caller dialog's session timer from now on (agreed, refreshed, or none)."""
        if self.session_timers.timer(call.invite.call_id) is None and timer is None:
            return  # most calls: no session timer, nothing to do
        self.session_timers.arm(call.invite.call_id, timer)
        self._arm_session_wakeup()

    def _arm_session_wakeup(self) -> None:
        due = self.session_timers.next_timer()
        if due is None or not self._running:
            return
        if self._session_wakeup is not None:
            if self._session_wakeup_at is not None and self._session_wakeup_at <= due:
                return
            self._session_wakeup.cancel()
        self._session_wakeup_at = due
        self._session_wakeup = asyncio.get_running_loop().call_later(
            max(0.0, due - self.clock()), self._session_wakeup_fired
        )

    def _session_wakeup_fired(self) -> None:
        self._session_wakeup = self._session_wakeup_at = None
        self.fire_session_timers(self.clock())

    def _refresh_session(self, call: _Call) -> None:
        """The core's REFRESH_SESSION (RFC 4028 §10, we are the refresher): UPDATE without a body when
        the caller allows it (RFC 3311; no offer, so it never collides with a hold), else a re-INVITE
        with our SDP unchanged. Either says ``refresher=uac``: we, its UAC, go on refreshing."""
        timer = self.session_timers.timer(call.invite.call_id)
        if call.dialog is None or timer is None:
            return
        headers = [("Session-Expires", f"{timer.interval};refresher=uac"), ("Supported", SUPPORTED)]
        allowed = ",".join(call.invite.headers.get_all("Allow")).upper()
        if "UPDATE" in {method.strip() for method in allowed.split(",")}:
            request = call.dialog.create_request("UPDATE", extra_headers=headers)
            self._request(request, call.source, partial(self._update_refresh_answered, call))
            return
        if call.local_sdp is None:
            return
        if call.reinvite.state is not ReinviteState.IDLE:
            call.refresh_wanted = True  # one re-INVITE at a time (§14.1): it goes when this one is over
            return
        request = call.dialog.create_request(
            "INVITE", body=call.local_sdp.serialize(), content_type="application/sdp", extra_headers=headers
        )
        call.reinvite.handle(ReinviteEvent.SEND)
        self._reinvite(call, request, call.offered_direction, refresh=True)

    def _update_refresh_answered(self, call: _Call, response: Response | None) -> None:
        """The answer to our refreshing UPDATE: a 491 (RFC 3311 §5.2, the caller's own offer crossed
        it) means the refresh did not happen, so it goes again after the RFC 3261 §14.1 back-off;
        anything else is any refresh's answer."""
        if response is not None and response.status == 491 and not call.core.is_over:
            low, high = reinvite_backoff_range(owns_call_id=False)  # the caller started the dialog
            delay = round(self.backoff_random.uniform(low, high), 2)
            call.refresh_retry = asyncio.get_running_loop().call_later(delay, self._retry_refresh, call)
            return
        self._session_refresh_answered(call, response)

    def _retry_refresh(self, call: _Call) -> None:
        call.refresh_retry = None
        if not call.core.is_over:
            self._refresh_session(call)

    def _session_refresh_answered(self, call: _Call, response: Response | None) -> None:
        """The answer to our refresh: a 2xx re-arms with what it agreed (RFC 4028 §7.4: the 2xx names
        the refresher, ``uac`` being us); no answer, 408 or 481 ends the session (§10); another error
        leaves the expiry to decide."""
        if response is not None and response.is_provisional:
            return
        if call.core.is_over:
            return
        if response is None or response.status in (408, 481):
            self.session_timers.disarm(call.invite.call_id)
            if call.core.can(CallEvent.SESSION_EXPIRED):
                call.status = 408
                self._move(call, CallEvent.SESSION_EXPIRED, cause="session_expired")
            return
        if response.is_success:
            try:
                timer = SessionTimer.negotiate(response, we_are_uac=True, now=self.clock())
            except SipParseError:
                timer = None
            self._arm_session(call, timer)
        else:
            log.info("session refresh of call %s refused: %s", call.invite.call_id, response.status)

    def hang_up(self, interaction_id: int) -> None:
        """End the call from the desktop: BYE both legs; wrap-up starts."""
        call = self.active_call(interaction_id)
        if call.state not in _CONNECTED:
            raise Conflict("The call is not connected", error_id="call-not-connected")
        self._move(call, CallEvent.HANG_UP, cause="hangup_api")

    async def transfer_out(self, interaction_id: int, number: str, *, trunk: str | None = None) -> None:
        """Blind transfer to an external ``number`` through a trunk (:meth:`dial_out`).

        The caller hears music while the number rings; the agent's phone stays up (silent) so that a
        failure (busy, no answer, trunk error) simply reconnects them. When the number answers, the
        agent's phone gets BYE, the ACD contact ends (wrap-up) and the relay bridges the caller to the
        external party on the agent side of the same media session, so the recording goes on."""
        call = self.active_call(interaction_id)
        if call.state is not CallState.BRIDGED or call.agent is None or call.external is not None:
            raise Conflict("The call is not connected", error_id="call-not-connected")
        media = call.media
        assert media is not None and call.local_sdp is not None
        # The relay does not transcode: offer the carrier only the codec the caller uses.
        offer = build_offer(
            address=media.address,
            port=media.agent_port,
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
        media.play_hold_music()
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
            if call.state is CallState.BRIDGED:
                media.bridge()
            raise
        record.call_id = leg.call_id
        record.peer = leg.number
        call.external = leg
        if leg.is_over:  # failed at once
            self._external_ended(call, leg)

    # ---------------------------------------------------------------- three-way conference
    async def conference(self, interaction_id: int, target: ConferenceTarget) -> None:
        """Bring a third party into the connected call: a colleague (``target.agent_id``: their newest
        registered phone rings) or an external number (through the first trunk). Caller and agent
        keep talking while it rings; when it answers, the caller's and the agent's legs and the third
        party's leave the relay for one conference of the mixer (each hears the two others). A third
        party that does not answer changes nothing. Raises :class:`Conflict` when the call is not
        bridged, is held, or has a third party (or a transfer out) under way already."""
        call = self._connected_call(interaction_id)
        if call.held:
            raise Conflict("A third party cannot be brought in now", error_id="conference-not-possible")
        await self._invite_third_party(call, target, consult=False)

    async def consult(self, interaction_id: int, target: ConferenceTarget) -> None:
        """Attended (consultative) transfer, first step: hold the caller (re-INVITE ``a=sendonly``) and
        call ``target`` (a colleague's phone or an external number); once it answers the agent and
        the third party talk in the mixer (``CONSULTING``). Then :meth:`complete_transfer` or
        :meth:`cancel_consultation`; a third party that does not answer takes the caller off hold."""
        call = self._connected_call(interaction_id)
        if call.agent is None or call.third is not None or call.external is not None:
            raise Conflict("A third party cannot be brought in now", error_id="conference-not-possible")
        was_held = call.held
        if not was_held:
            self.hold(interaction_id)
        try:
            await self._invite_third_party(call, target, consult=True)
        except DomainError:
            if not was_held and call.state is CallState.BRIDGED:
                self.resume(interaction_id)
            raise

    def complete_transfer(self, interaction_id: int) -> None:
        """Attended transfer, last step: the caller is joined to the consulted party and taken off
        hold, the agent's phone gets BYE and the contact is handed over as the phone's attended
        transfer hands it (:meth:`_hand_over_contact`): a colleague becomes busy with it (the
        interaction names them), the transferring agent goes to wrap-up. A colleague who is not signed
        in to the ACD is refused before anything changes (:class:`Conflict` ``colleague-not-signed-in``:
        the consultation goes on; cancel it, or make it a conference). An external number takes the
        call and the contact ends with the agent (``HANDED_OVER``)."""
        call = self.active_call(interaction_id)
        if call.state is not CallState.CONSULTING:
            raise Conflict("No consultation is in progress", error_id="no-consultation")
        third = call.third
        if third is not None and third.leg is not None:
            self.calls.check_transfer_target(third.leg.agent_id)
        self._move(call, CallEvent.TRANSFER_COMPLETED, cause="transferred")

    def cancel_consultation(self, interaction_id: int) -> None:
        """Give up the attended transfer: the consulted party is hung up (CANCEL while it rings) and
        the agent is back with the caller, off hold."""
        call = self.active_call(interaction_id)
        third = call.third
        if third is None or not third.consult:
            raise Conflict("No consultation is in progress", error_id="no-consultation")
        if call.state is CallState.CONSULTING:
            self._move(call, CallEvent.CONSULT_ENDED, cause="consultation_cancelled")
            return
        self._drop_third_party(call, "consultation_cancelled")
        self._back_from_consultation(call)

    def _back_from_consultation(self, call: _Call) -> None:
        """The consultation never got going: the agent is back with the caller, off hold."""
        if call.state is CallState.BRIDGED and call.held:
            assert call.media is not None
            call.media.bridge()
            self._resume(call)

    async def _invite_third_party(self, call: _Call, target: ConferenceTarget, *, consult: bool) -> None:
        interaction_id = call.interaction_id
        assert interaction_id is not None
        if call.agent is None or call.third is not None or call.external is not None:
            raise Conflict("A third party cannot be brought in now", error_id="conference-not-possible")
        bindings: list[Binding] = []
        if target.agent_id is not None:
            bindings = list(self.registrar.bindings(target.agent_id, self.clock()))
            if not bindings:
                raise Conflict(
                    "That agent's phone is not registered",
                    error_id="phone-not-registered",
                    agent_id=target.agent_id,
                )
        media = await self.media.open_session(lambda digit: None)
        if call.state is not CallState.BRIDGED or call.third is not None or call.external is not None:
            self._spawn(media.close())  # the call moved on while the session opened
            raise Conflict("A third party cannot be brought in now", error_id="conference-not-possible")
        assert call.local_sdp is not None
        codecs = _codecs_for(call.local_sdp)  # the mixer decodes each party's own codec
        sdp_key = call.invite.call_id + "-conference"
        record = CallLeg(
            "conference",
            "",
            self.calls.now(),
            peer=target.number or "",
            agent_id=target.agent_id,
            interaction_id=interaction_id,
        )
        third = _ThirdParty(media, f"conference-{call.invite.call_id}", record, consult=consult)
        call.third = third
        if target.agent_id is not None:
            caller = call.invite.from_
            for binding in bindings:
                offer, invite = self.setup.invite_phone(
                    binding,
                    media,
                    sdp_key,
                    codecs,
                    NameAddress(caller.uri, caller.display_name),
                    extra_headers=(("X-Frontoffice-Interaction", str(interaction_id)),),
                )
                holder: list[_AgentLeg] = []
                key = self._request(invite, binding.source, partial(self._third_branch, call, third, holder))
                assert key is not None
                branch = _AgentLeg(target.agent_id, invite, key, binding.source, offer)
                holder.append(branch)
                third.ringing.append(branch)
                self._agent_calls[invite.call_id] = call
            record.call_id, record.peer = third.ringing[0].call_id, str(bindings[0].contact.uri)
            return
        assert target.number is not None
        offer = build_offer(
            address=media.address, port=media.agent_port, session_id=sdp_session_id(sdp_key), codecs=codecs
        )
        try:
            leg = await self.dial_out(
                target.number,
                offer=offer,
                on_progress=lambda leg: record.ringing(self.calls.now()),
                on_answer=lambda leg: self._third_external_answered(call, third, leg),
                on_end=lambda leg: self._third_external_ended(call, third, leg),
            )
        except Exception:
            if call.third is third:
                call.third = None
            self._spawn(media.close())
            raise
        record.call_id, record.peer = leg.call_id, leg.number
        third.external = leg
        if leg.is_over:  # failed at once
            self._third_external_ended(call, third, leg)

    def third_party_media(self, interaction_id: int) -> MediaSession | None:
        """The media session of the call's conference third party (ringing or joined), if any: for
        diagnostics and tests (its counters say whether the mix reaches the third party)."""
        third = self.active_call(interaction_id).third
        return third.media if third is not None else None

    def _third_branch(
        self, call: _Call, third: _ThirdParty, holder: list[_AgentLeg], response: Response | None
    ) -> None:
        self._third_response(call, third, holder[0], response)

    def _third_response(
        self, call: _Call, third: _ThirdParty, leg: _AgentLeg, response: Response | None
    ) -> None:
        """Responses to our INVITE to one of the colleague's phones (the conference's third party, or
        the consulted colleague): the first 2xx wins, the other phones get CANCEL."""
        if response is not None and response.is_provisional:
            if leg.core.state is not LegState.ENDED:
                leg.core.handle(LegEvent.PROVISIONAL)
            if response.status in (180, 183):
                third.record.ringing(self.calls.now())
            return
        if response is None or not response.is_success:
            if leg.core.state is not LegState.ENDED:
                leg.core.handle(LegEvent.FAILED)
            self._agent_calls.pop(leg.call_id, None)
            if third.leg is None and not any(other.core.is_pending for other in third.ringing):
                # Every phone of the colleague said no (or was cancelled): the third party failed.
                status = 408 if response is None else response.status
                self._close_leg(third.record, cause_of_status(status), status)
                if call.third is third:
                    self._third_party_failed(call, third)
            return
        # 2xx: ACK at once (RFC 3261 §13.2.2.4), whatever happens next.
        action = leg.core.handle(LegEvent.ANSWERED)
        leg.dialog = self.endpoint.ack_answer(leg.invite, response, leg.destination)
        answer: NegotiatedMedia | None = None
        if action == "" and third.leg is None and call.third is third and call.state is CallState.BRIDGED:
            try:
                answer = apply_answer(leg.offer, parse_sdp(response.body))
            except ProtocolError:
                answer = None
        if answer is None:
            # Lost the fork, given up on meanwhile (a CANCEL crossed its 200), or the call moved on:
            # BYE (§15).
            if leg.core.state is LegState.ANSWERED:
                leg.core.handle(LegEvent.BYE_SENT)
            self._request(leg.dialog.bye(), leg.destination, None)
            self._agent_calls.pop(leg.call_id, None)
            if (
                third.leg is None
                and call.third is third
                and not any(o.core.is_pending for o in third.ringing)
            ):
                self._close_leg(third.record, "failed", response.status)
                self._third_party_failed(call, third)
            return
        third.leg = leg
        third.ringing.remove(leg)
        for other in third.ringing:
            self._cancel_leg(other, "answered_elsewhere")
        third.record.call_id, third.record.peer = leg.call_id, str(leg.invite.uri)
        third.record.answered(self.calls.now(), response.status)
        third.media.set_agent(answer, signalling_ip=leg.destination.host)
        self._third_joined(call, third)

    def _third_joined(self, call: _Call, third: _ThirdParty) -> None:
        event = CallEvent.CONSULT_ANSWERED if third.consult else CallEvent.CONFERENCE_JOINED
        self._move(call, event, cause="consultation" if third.consult else "conference")

    def _third_left(self, call: _Call) -> None:
        """The third party hung up: out of the conference, or the consultation is over."""
        if call.core.can(CallEvent.THIRD_PARTY_LEFT):
            self._move(call, CallEvent.THIRD_PARTY_LEFT, cause="bye_third_party")
        elif call.core.can(CallEvent.CONSULT_ENDED):
            self._move(call, CallEvent.CONSULT_ENDED, cause="bye_third_party")

    def _third_external_answered(self, call: _Call, third: _ThirdParty, leg: OutboundLeg) -> None:
        if call.third is not third or call.state is not CallState.BRIDGED or leg.answer is None:
            leg.hang_up()
            return
        third.record.answered(self.calls.now(), leg.status or 200)
        third.media.set_agent(leg.answer, signalling_ip=leg.destination.host)
        self._third_joined(call, third)

    def _third_external_ended(self, call: _Call, third: _ThirdParty, leg: OutboundLeg) -> None:
        if call.third is not third:
            return  # dropped by us (DROP_THIRD_PARTY): nothing more to do
        status = leg.status or (200 if leg.is_answered else 408)
        if leg.is_answered and call.state is not CallState.BRIDGED:
            self._close_leg(third.record, "bye_third_party", status)
            self._third_left(call)
            return
        self._close_leg(third.record, "failed" if status < 400 else cause_of_status(status), status)
        self._third_party_failed(call, third)

    def _third_party_failed(self, call: _Call, third: _ThirdParty) -> None:
        """The third party never joined (busy, no answer, unusable SDP): caller and agent talk on."""
        call.third = None
        for leg in (third.leg, *third.ringing):
            if leg is not None:
                self._agent_calls.pop(leg.call_id, None)
                self._cancel_leg(leg, "failed")
        self._spawn(third.media.close())
        if third.consult:
            self._back_from_consultation(call)

    def _mix(self, call: _Call) -> None:
        """The core's MIX: caller, agent and third party into one conference of the mixer."""
        third = call.third
        assert third is not None and call.media is not None
        for session, side in ((call.media, "caller"), (call.media, "agent"), (third.media, "agent")):
            self.media.join_conference(third.conference_id, session, side)

    def _drop_third_party(self, call: _Call, cause: str) -> None:
        """The core's DROP_THIRD_PARTY: everyone out of the mixer, the third party's phone CANCELled
        or BYEd (or its trunk leg hung up), its media closed. The BRIDGE that may follow relays the
        caller and the agent again."""
        third = call.third
        if third is None:
            return
        call.third = None
        for session, side in ((call.media, "caller"), (call.media, "agent"), (third.media, "agent")):
            if session is not None:
                self.media.leave_conference(third.conference_id, session, side)
        for leg in (third.leg, *third.ringing):
            if leg is not None:
                self._agent_calls.pop(leg.call_id, None)
                self._cancel_leg(leg, cause)
        external = third.external
        if external is not None and not external.is_over:
            external.hang_up()
        self._close_leg(third.record, cause, 200 if third.record.answered_at is not None else 487)
        self._spawn(third.media.close())

    def _external_answered(self, call: _Call, leg: OutboundLeg) -> None:
        if call.state is not CallState.BRIDGED or leg.answer is None:
            leg.hang_up()
            return
        if call.external_record is not None:
            call.external_record.answered(self.calls.now(), leg.status or 200)
        assert call.media is not None
        call.media.set_agent(leg.answer, signalling_ip=leg.destination.host)
        self._move(call, CallEvent.EXTERNAL_ANSWERED, cause="transferred")
        if call.agent is not None:
            self._agent_calls.pop(call.agent.call_id, None)
        if call.held:
            self._resume(call)
        if call.interaction_id is not None:
            interaction_id = call.interaction_id
            self._spawn(self._quietly(self.calls.transferred_out(interaction_id, leg.number)))
            self._spawn(self._quietly(self.calls.call_ended(interaction_id)))

    def _external_ended(self, call: _Call, leg: OutboundLeg) -> None:
        answered = call.state is CallState.EXTERNAL
        status = leg.status or (200 if answered else 408)
        cause = "bye_external" if answered else ("failed" if status < 400 else cause_of_status(status))
        self._close_leg(call.external_record, cause, status)
        if answered:
            # The external party hung up: the caller's leg ends too.
            self._move(call, CallEvent.BYE_EXTERNAL, cause="bye_external")
        elif call.state is CallState.BRIDGED and call.external is leg:
            # Busy, no answer, refused: the caller is back with the agent.
            call.external = None
            call.external_record = None
            if not call.held:
                assert call.media is not None
                call.media.bridge()

    def _back_to_queue(self, call: _Call) -> None:
        """The ACD transferred a bridged call (API or REFER): release the agent's phone, the caller
        hears music until the next agent answers (the caller's dialog stays up)."""
        leg = call.agent
        if leg is not None and leg.refer and leg.dialog is not None and leg.core.state is LegState.ANSWERED:
            # RFC 3515 §2.4.5: the transfer succeeded; the phone's implicit subscription ends.
            self._request(leg.dialog.notify_refer_progress(200, "OK"), leg.destination, None)
        call.transferred = True
        self._move(call, CallEvent.BACK_TO_QUEUE, cause="transferred")
        if leg is not None:
            self._agent_calls.pop(leg.call_id, None)
            call.agent = None

    def _on_refer(self, request: Request) -> None:
        """REFER from an agent's phone (RFC 3515). On the caller's call: a blind transfer
        (``Refer-To: <sip:queue-7@...>`` or an agent's SIP username; 202, NOTIFY 100, NOTIFY 200 or the
        error when the ACD moved the call, then BYE), or an attended one (``?Replaces=`` naming the
        phone's call to a colleague, RFC 5589 §7). On the phone's call to a colleague: an attended
        transfer whose Replaces names the caller's call (the other order phones use)."""
        refer_to = request.headers.get("Refer-To")
        try:
            target = parse_name_addr(refer_to) if refer_to else None
        except SipParseError:
            target = None
        consultation = self.extensions.by_dialog(request)
        if consultation is not None:
            assert consultation.dialog is not None
            self._refer_on_consultation(request, consultation, target)
            return
        call = self._agent_calls.get(request.call_id)
        leg = call.agent if call is not None else None
        if call is None or leg is None or leg.dialog is None or not leg.dialog.matches_request(request):
            self._respond(request, 481)
            return
        if target is None or not target.uri.user:
            log.info("REFER with a bad Refer-To: %r", refer_to)
            self._respond(request, 400, "Bad Refer-To")
            return
        if call.state is not CallState.BRIDGED or call.interaction_id is None or leg.refer:
            self._respond(request, 403)
            return
        header = _replaces_header(target)
        try:
            leg.dialog.receive_request(request)
        except ProtocolError as exc:
            self._respond(request, getattr(exc, "status_code", 500))
            return
        self._respond(request, 202, contact=self.endpoint.contact(leg.destination.transport))
        self._request(leg.dialog.notify_refer_progress(100, "Trying"), leg.destination, None)
        if header is not None:
            # RFC 5589 §7: the phone's consultation with a colleague replaces its own leg.
            replaces = parse_replaces(header)
            found = self.extensions.find(*replaces) if replaces is not None else None
            if found is None or found.caller_agent_id != leg.agent_id:
                self._replaces_unknown(leg.dialog, leg.destination, replaces)
                return
            self._phone_transfer(call, found, (leg.dialog, leg.destination))
            return
        leg.refer = True
        self._spawn(self._refer_transfer(call, leg, target.uri.user))

    def _refer_on_consultation(
        self, request: Request, consultation: ExtensionCall, target: NameAddress | None
    ) -> None:
        """A REFER on the phone's call to a colleague, its Replaces naming the phone's leg of a
        caller's call: the caller goes to the colleague (RFC 5589 §7, the transferor REFERs the target)."""
        dialog = consultation.dialog
        assert dialog is not None
        header = _replaces_header(target) if target is not None else None
        replaces = parse_replaces(header) if header is not None else None
        if replaces is None:
            # Only attended transfers are taken on this dialog (the phone's own colleague call).
            self._respond(request, 403 if header is None else 400)
            return
        dialog.receive_request(request)  # DialogError: the endpoint answers 500 (§12.2.2)
        self._respond(request, 202, contact=self.endpoint.contact(consultation.source.transport))
        self._request(dialog.notify_refer_progress(100, "Trying"), consultation.source, None)
        call_id, tag_a, tag_b = replaces
        call = self._agent_calls.get(call_id)
        leg = call.agent if call is not None else None
        if (
            call is None
            or leg is None
            or leg.dialog is None
            or leg.call_id != call_id
            or {tag_a, tag_b} != {leg.dialog.local_tag, leg.dialog.remote_tag}
            or leg.agent_id != consultation.caller_agent_id
            or call.state is not CallState.BRIDGED
            or call.interaction_id is None
        ):
            self._replaces_unknown(dialog, consultation.source, replaces)
            return
        self._phone_transfer(call, consultation, (dialog, consultation.source))

    def _replaces_unknown(
        self, dialog: Dialog, destination: Destination, replaces: tuple[str, str, str] | None
    ) -> None:
        """RFC 3891 §3: a Replaces naming no dialog we have fails with 481; the phone hears it as the
        REFER's outcome (RFC 3515 §2.4.5) and keeps its calls."""
        log.info("attended transfer refused: no dialog %r to replace", replaces)
        self._request(dialog.notify_refer_progress(481, "Call/Transaction Does Not Exist"), destination, None)

    def _phone_transfer(
        self, call: _Call, consultation: ExtensionCall, notify_to: tuple[Dialog, Destination]
    ) -> None:
        """The attended transfer from the phone: the colleague's leg of the consultation (and its
        media session) becomes the caller's other party, in a 2-party mix; the ACD hands the contact
        to the colleague; then NOTIFY 200 and BYE to both of the transferring phone's dialogs."""
        assert call.interaction_id is not None and consultation.dialog is not None
        try:
            # Refused before anything changes, as from the desk: the phone keeps both of its calls.
            self.calls.check_transfer_target(consultation.callee_agent_id)
        except DomainError as exc:
            log.info("attended transfer from the phone refused: %s", exc)
            dialog, destination = notify_to
            self._request(dialog.notify_refer_progress(480, "Temporarily Unavailable"), destination, None)
            return
        branch = self.extensions.hand_over(consultation)
        now = self.calls.now()
        record = CallLeg(
            "agent",
            branch.call_id,
            now,
            peer=str(branch.invite.uri),
            agent_id=branch.agent_id,
            interaction_id=call.interaction_id,
            transfer=True,
        )
        record.answered(now)
        leg = _AgentLeg(
            branch.agent_id,
            branch.invite,
            branch.key,
            branch.destination,
            branch.offer,
            core=branch.core,
            dialog=branch.dialog,
            record=record,
        )
        call.third = _ThirdParty(consultation.media, f"replaced-{call.invite.call_id}", record, leg=leg)
        self._agent_calls[branch.call_id] = call
        call.transferor = (consultation.dialog, consultation.source)
        self._transferors[consultation.call_id] = call
        call.notify_to = notify_to
        self._move(call, CallEvent.PHONE_TRANSFERRED, cause="transferred")

    async def _hand_over_contact(self, call: _Call) -> None:
        """The core's HAND_OVER_CONTACT, the one hand-over of every attended transfer (from the desk
        and from the phone): the ACD moves the contact to the colleague the caller now talks to, who
        is on the call already, so its offer is accepted at once (the colleague is busy with it, the
        interaction names them, the transferring agent goes to wrap-up); then HANDOVER_DONE. The other
        side being an external number, or a colleague the ACD cannot give it to (signed out since the
        check before the transfer), the contact ends with the transferring agent: CONTACT_STAYED."""
        interaction_id, third = call.interaction_id, call.third
        if interaction_id is None or third is None:
            return
        leg = third.leg
        if leg is None:
            if third.external is not None:
                await self._quietly(self.calls.transferred_out(interaction_id, third.external.number))
            self._contact_stayed(call)
            return
        # The colleague's leg is the contact's agent leg from now on (the records say so).
        third.record.leg, third.record.transfer = "agent", True
        call.handover_agent, call.handover_offered = leg.agent_id, False
        try:
            await self.calls.transfer(interaction_id, queue_id=None, agent_id=leg.agent_id)
            call.handover_committed = True
            if call.handover_offered:
                await self.calls.offer_answered(interaction_id, leg.agent_id)
            else:
                # At capacity (a colleague in wrap-up): the ACD offers it when they have room, and
                # that offer is accepted at once (_on_acd_outputs).
                log.info("call %s: agent %s has no room for the contact yet", interaction_id, leg.agent_id)
        except (DomainError, r.RoutingError) as exc:
            log.info("attended transfer: the contact stays with the transferring agent: %s", exc)
            call.handover_agent = None
            self._contact_stayed(call)
            return
        if call.core.can(CallEvent.HANDOVER_DONE):
            self._move(call, CallEvent.HANDOVER_DONE, cause="transferred")

    def _contact_stayed(self, call: _Call) -> None:
        if call.core.can(CallEvent.CONTACT_STAYED):
            self._move(call, CallEvent.CONTACT_STAYED, cause="transferred")

    def _bye_transferor(self, call: _Call) -> None:
        """The core's BYE_TRANSFEROR: BYE the transferring phone's consultation dialog."""
        if call.transferor is None:
            return
        dialog, destination = call.transferor
        call.transferor = None
        self._transferors.pop(dialog.call_id, None)
        self._request(dialog.bye(), destination, None)

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
        if failure is not None and leg.dialog is not None and leg.core.state is LegState.ANSWERED:
            leg.refer = False
            self._request(leg.dialog.notify_refer_progress(*failure), leg.destination, None)

    def _start_announcements(self, call: _Call) -> None:
        if call.state is not CallState.QUEUED:
            return  # music to a held caller (consultation, the phone's hold): no queue to announce
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
        while call.state is CallState.QUEUED:
            await asyncio.sleep(self.announce_interval_s)
            if call.state is not CallState.QUEUED:
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
            if pcm and call.state is CallState.QUEUED and call.media is not None:
                call.media.play_prompt(pcm)
                call.media.stats.announcements += 1
        call.announcer = None

    def _start_recording(self, call: _Call) -> None:
        """Record from the first answer on: one mixed mono WAV and, if configured, a stereo one
        (caller left, agent right), listed in the interaction's ``recordings``."""
        if self.recordings_dir is None or call.recording or call.interaction_id is None:
            return
        call.recording = True
        assert call.media is not None
        self.setup.record_media(call.media, call.interaction_id, self._quietly)

    # ================================================================ the ACD side
    def _on_acd_outputs(self, outputs: list[r.Output]) -> None:
        campaign_calls = self.campaign_calls
        for o in outputs:
            contact_id = getattr(o, "contact_id", None)
            if contact_id is not None and campaign_calls.owns(int(contact_id)):
                continue  # a campaign call's (campaign_calls.py)
            if isinstance(o, r.ContactConnected | r.ContactFinished | r.ContactAbandoned):
                # An offer kept for a call that never learnt its id here (another voice node's call:
                # every voice node hears every offer) is over.
                self._orphan_offers.pop(int(o.contact_id), None)
            if isinstance(o, r.OfferContact) and o.channel == "voice" and not o.is_callback:
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.handover_agent is not None:
                    # The colleague an attended transfer handed the call to: on the phone already.
                    if str(call.handover_agent) in o.agent_ids:
                        call.handover_offered = True
                        if call.handover_committed:
                            accepted = self.calls.offer_answered(int(o.contact_id), call.handover_agent)
                            self._spawn(self._quietly(accepted))
                    continue
                if call is None:
                    # Offered inside the same command that queued it: the call learns its id next.
                    self._orphan_offers[int(o.contact_id)] = o
                else:
                    self._ring_agents(call, o)
            elif isinstance(o, r.WithdrawOffer | r.OfferTimedOut):
                self._orphan_offers.pop(int(o.contact_id), None)
                call = self._by_interaction.get(int(o.contact_id))
                if call is None:
                    continue
                gone = set(o.agent_ids)
                if call.pending_offers:
                    call.pending_offers = [p for p in call.pending_offers if not gone & set(p.agent_ids)]
                cause = "no_answer" if isinstance(o, r.OfferTimedOut) else "withdrawn"
                for leg in [*call.ringing, *([call.agent] if call.agent is not None else [])]:
                    if str(leg.agent_id) in gone:
                        self._cancel_leg(leg, cause)
            elif isinstance(o, r.ContactTransferred) and o.from_agent is not None:
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.state is CallState.BRIDGED:
                    self._back_to_queue(call)
            elif isinstance(o, r.ContactFinished):
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.core.can(CallEvent.ACD_FINISHED):
                    # Ended in the ACD while the call is up ("End conversation" / "Complete" on the
                    # desk): hang up both legs; the contact is already in wrap-up.
                    self._move(call, CallEvent.ACD_FINISHED, cause="hangup_api")
            elif isinstance(o, r.FallbackAction | r.ContactRefused | r.ContactAbandoned):
                call = self._by_interaction.get(int(o.contact_id))
                if call is not None and call.state is CallState.QUEUED:
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
            call.fallback = o.action
            self._move(call, CallEvent.TURNED_AWAY, cause="fallback")
            return
        call.interaction_id = None
        self._refuse(call, 480)

    async def _run_fallback(self, call: _Call) -> None:
        """Run the flow of a turned-away caller, answered already (channels/voice/voicemail.py); the
        contact is finished in the ACD already (ticket, callback: services/fallback.py)."""
        line = _TurnedAwayLine(self, call)
        if call.fallback == "voicemail" and self.recordings_dir is not None:
            await voicemail.leave_voicemail(line, self.prompts.get("voicemail", b""))
        else:
            await voicemail.say_closed(line, self.prompts.get("closed", b""))

    def _ring_agents(self, call: _Call, offer: r.OfferContact) -> None:
        """Ring every registered phone of every agent of the offer at once (parallel forking: one
        agent, or the ring_all group). The first phone to answer wins; the others get CANCEL."""
        if call.state is not CallState.QUEUED:
            return
        if any(leg.core.state is LegState.CANCELLING for leg in call.ringing):
            # The last offer's phones are still being released (CANCEL sent, their final answer not
            # in yet): ring this offer when they are gone. Turning it down instead would make the ACD
            # offer the call to agent after agent, each turned down the same way.
            call.pending_offers = [offer]
            return
        contact_id = int(offer.contact_id)
        busy = call.agent is not None or bool(call.ringing)
        now = self.clock()
        for agent in offer.agent_ids:
            agent_id = int(agent)
            bindings = () if busy else self.registrar.bindings(agent_id, now)
            if not bindings:
                # No phone registered: the caller keeps their place, the ACD tries the next agent.
                self._spawn(self._quietly(self.calls.offer_declined(contact_id, agent_id)))
                continue
            for binding in bindings:
                self._ring_phone(call, agent_id, binding)

    def _ring_phone(self, call: _Call, agent_id: int, binding: Binding) -> None:
        assert call.media is not None and call.local_sdp is not None
        caller = call.invite.from_
        # The agent is offered the caller's codec first so the relay never has to transcode.
        offer_sdp, invite = self.setup.invite_phone(
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
        leg: _AgentLeg | None = None

        def owner(response: Response | None) -> None:
            assert leg is not None
            self._agent_response(call, leg, response)

        key = self._request(invite, binding.source, owner)
        assert key is not None
        leg = _AgentLeg(agent_id, invite, key, binding.source, offer_sdp, record=record)
        call.ringing.append(leg)
        self._agent_calls[invite.call_id] = call

    def _ring_pending(self, call: _Call) -> None:
        """Ring the offer that arrived while the previous offer's phones were being released."""
        if call.agent is None and not call.ringing and call.pending_offers:
            self._ring_agents(call, call.pending_offers.pop())

    def _cancel_leg(self, leg: _AgentLeg, cause: str) -> None:
        """Give up on one phone: CANCEL it while it rings (RFC 3261 §9.1), BYE it once answered."""
        if leg.core.state is LegState.ENDED:
            return
        if leg.record is not None:
            leg.record.pending_cause = leg.record.pending_cause or cause
        action = leg.core.handle(LegEvent.CANCEL)
        if action == "cancel":
            self._request(build_cancel(leg.invite), leg.destination, None)
        elif action == "bye" and leg.dialog is not None:
            self._request(leg.dialog.bye(), leg.destination, None)
            self._close_leg(leg.record, cause)

    def _cancel_agents(self, call: _Call, cause: str) -> None:
        for leg in call.ringing:
            self._cancel_leg(leg, cause)
        if call.agent is not None:
            self._cancel_leg(call.agent, cause)

    def _bye_agent(self, call: _Call, cause: str) -> None:
        """BYE the agent's phone that answered (the bridged leg)."""
        leg = call.agent
        if leg is not None and leg.core.state is LegState.ANSWERED and leg.dialog is not None:
            leg.core.handle(LegEvent.BYE_SENT)
            self._request(leg.dialog.bye(), leg.destination, None)
            self._close_leg(leg.record, cause)

    def _agent_response(self, call: _Call, leg: _AgentLeg, response: Response | None) -> None:
        if response is not None and response.is_provisional:
            if leg.core.state is not LegState.ENDED:
                leg.core.handle(LegEvent.PROVISIONAL)
            if response.status in (180, 183) and leg.record is not None:
                leg.record.ringing(self.calls.now())
            return
        if response is None or not response.is_success:
            self._agent_failed(call, leg, 408 if response is None else response.status)
            return
        # 2xx: ACK at once (RFC 3261 §13.2.2.4), whatever happens next.
        action = leg.core.handle(LegEvent.ANSWERED)
        leg.dialog = self.endpoint.ack_answer(leg.invite, response, leg.destination)
        if leg.record is not None:
            leg.record.answered(self.calls.now(), response.status)
        wanted = (
            action == ""
            and call.agent is None
            and call.state is CallState.QUEUED
            and call.interaction_id is not None
        )
        if not wanted:
            # A phone that answered too late: another won the fork, the offer was withdrawn or the
            # caller left. ACK (above) and BYE (RFC 3261 §15).
            if leg.core.state is LegState.ANSWERED:
                leg.core.handle(LegEvent.BYE_SENT)
            self._request(leg.dialog.bye(), leg.destination, None)
            self._close_leg(leg.record, "withdrawn")
            self._drop_leg(call, leg)
            return
        assert call.interaction_id is not None and call.media is not None
        call.agent = leg
        call.ringing.remove(leg)
        for other in call.ringing:
            self._cancel_leg(other, "answered_elsewhere")
        try:
            call.media.set_agent(
                apply_answer(leg.offer, parse_sdp(response.body)), signalling_ip=leg.destination.host
            )
        except ProtocolError:
            self._bye_agent(call, "failed")
            self._spawn(self._quietly(self.calls.offer_declined(call.interaction_id, leg.agent_id)))
            self._agent_calls.pop(leg.call_id, None)
            call.agent = None
            return
        self._spawn(self._connect(call, leg))

    def _agent_failed(self, call: _Call, leg: _AgentLeg, status: int) -> None:
        """A phone's final failure (busy 486, unavailable 480, declined 603, 487 to our CANCEL) or no
        answer at all (408)."""
        if leg.core.state is LegState.ENDED:
            return
        wanted = leg.core.is_pending
        leg.core.handle(LegEvent.FAILED)
        self._close_leg(leg.record, cause_of_status(status), status)
        self._drop_leg(call, leg)
        if (
            wanted
            and call.agent is None
            and call.state is CallState.QUEUED
            and call.interaction_id is not None
            and not any(other.agent_id == leg.agent_id for other in call.ringing)
        ):
            # Every phone of this agent said no: the caller goes back to their place.
            self._spawn(self._quietly(self.calls.offer_declined(call.interaction_id, leg.agent_id)))
        self._ring_pending(call)

    def _drop_leg(self, call: _Call, leg: _AgentLeg) -> None:
        if leg in call.ringing:
            call.ringing.remove(leg)
        if call.agent is leg:
            call.agent = None
        if self._agent_calls.get(leg.call_id) is call:
            del self._agent_calls[leg.call_id]
        if leg.dialog is not None:
            # A phone hung up after a late 2xx: keep re-ACKing its retransmitted 2xx (our ACK may be
            # lost) until it can no longer send one (64*T1, RFC 3261 §13.3.1.4).
            self._released_legs[leg.call_id] = leg
            asyncio.get_running_loop().call_later(
                self.layer.timers.timeout, self._released_legs.pop, leg.call_id, None
            )

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
                if call.agent is leg:
                    call.agent = None
                    self._ring_pending(call)
                return
            # The agent pressed Accept on the desk while the phone rang: the ACD has the contact
            # connected to them already; the phone's answer bridges the call.
        if call.state is not CallState.QUEUED or leg.core.state is not LegState.ANSWERED:
            # Either side hung up while the answer was being committed: the contact was connected,
            # so it ends like a bridged call (wrap-up); a caller still waiting is told 480.
            self._bye_agent(call, "caller_left")
            self._spawn(self._quietly(self.calls.call_ended(call.interaction_id)))
            if call.state is CallState.QUEUED:
                call.interaction_id = None
                self._refuse(call, 480)
            return
        if call.refresh is not None:
            call.refresh.cancel()
        if call.announcer is not None:
            call.announcer.cancel()
            call.announcer = None
        self._move(call, CallEvent.AGENT_CONNECTED)
        if call.phone_held and call.core.can(CallEvent.AGENT_HELD):
            self._move(call, CallEvent.AGENT_HELD, cause="agent_held")

    def on_stray_response(self, response: Response) -> None:
        """A response outside any transaction: a 2xx retransmitted after its INVITE transaction
        ended is ACKed again (RFC 3261 §13.2.2.4)."""
        if (
            self.trunking.screen_response(response)
            or self.extensions.claim_response(response)
            or self.campaign_calls.claim_response(response)
        ):
            return
        call = self._agent_calls.get(response.call_id)
        leg = self._leg_of(call, response.call_id) if call is not None else None
        if leg is None:
            leg = self._released_legs.get(response.call_id)
        if leg is not None and leg.dialog is not None and response.cseq.method == "INVITE":
            self._request(leg.dialog.ack(response.cseq.seq), leg.destination, None)

    async def _quietly(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run an ACD use case whose failure must not take the call down (it is logged)."""
        try:
            await coro
        except DomainError as exc:
            log.info("voice ACD step skipped: %s", exc)


class _TurnedAwayLine:
    """A turned-away caller's answered call, as voicemail.py's flows use it (a TurnedAwayCaller).
    Every move goes through the call core: the flow's hang-up is a ``HANG_UP`` in ``TURNED_AWAY``."""

    def __init__(self, service: VoiceService, call: _Call) -> None:
        self.service = service
        self.call = call

    @property
    def _live(self) -> bool:
        return self.call.state is CallState.TURNED_AWAY

    def play(self, pcm: bytes) -> None:
        if self._live and self.call.media is not None:
            self.call.media.play_prompt(pcm)

    def silence(self) -> None:
        if self._live and self.call.media is not None:
            # A bridge to no agent: the music stops, the caller's audio goes on being recorded.
            self.call.media.bridge()

    def record(self) -> None:
        if self._live:
            self.service._start_recording(self.call)

    async def digit(self, timeout_s: float) -> str | None:
        if not self._live:
            return ""
        try:
            return await asyncio.wait_for(self.call.digits.get(), timeout_s)
        except TimeoutError:
            return None

    def hang_up(self) -> None:
        if self._live:
            self.service._move(self.call, CallEvent.HANG_UP, cause="fallback")


def _replaces_header(target: NameAddress) -> str | None:
    """The ``?Replaces=`` header of a Refer-To URI (RFC 3515 §2.1: escaped in the URI), if any."""
    return next((unquote(v) for name, v in target.uri.headers if name.lower() == "replaces"), None)


def parse_replaces(value: str) -> tuple[str, str, str] | None:
    """The dialog a Replaces value names (RFC 3891 §3): ``(call_id, to_tag, from_tag)``; ``None``
    when it is unreadable."""
    call_id, *params = value.split(";")
    tags = {}
    for param in params:
        name, _, tag = param.partition("=")
        tags[name.strip().lower()] = tag.strip()
    if not call_id.strip() or any(not tags.get(name) for name in _REPLACES_TAGS):
        return None
    return call_id.strip(), tags["to-tag"], tags["from-tag"]


def _codecs_for(local_sdp: SessionDescription) -> tuple[Any, ...]:
    """Our codecs with the one the caller leg uses first, plus telephone-event."""
    audio = local_sdp.audio()
    chosen = audio.codecs() if audio is not None else []
    first = [c for c in chosen if c.name.lower() != "telephone-event"][:1]
    return codecs_first(first[0]) if first else (PCMU, PCMA, TELEPHONE_EVENT)
