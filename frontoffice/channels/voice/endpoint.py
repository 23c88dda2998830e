"""The SIP endpoint of one node: transports, the transaction layer, its timers, ``request``/``respond``.

Everything that speaks SIP - the inbound B2BUA (``service.py``), trunking (``outbound.py`` and the
modules it composes) and in-call features - sends and receives through one :class:`Endpoint`, by its
public methods. It decides nothing about calls: what arrives goes to the handlers it was started with
(:class:`EndpointHandlers`), what a transaction we started gets back goes to the owner passed to
:meth:`Endpoint.request`.

Timers run from an injected monotonic clock: one loop timer sleeps until the layer's ``next_timer()``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Collection, Coroutine
from typing import Any, Protocol

from .sip import (
    AckTimeout,
    Destination,
    Dialog,
    DialogError,
    MalformedRequests,
    Message,
    NameAddress,
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
    build_response,
    new_tag,
    parse_uri,
    session_timer_headers,
    validate_request,
)
from .tls import TlsTransport
from .transport import TcpTransport, UdpTransport

__all__ = ["Endpoint", "EndpointHandlers", "MonotonicClock", "ResponseOwner"]

log = logging.getLogger("frontoffice.voice.endpoint")

MonotonicClock = Callable[[], float]
ResponseOwner = Callable[[Response | None], None]
"""Gets each response to a request we sent (provisional ones too), or ``None`` when it timed out."""
# Transaction timers whose expiry means "no final answer": Timers B and F (RFC 3261 §17.1.1.2,
# §17.1.2.2) and the CANCEL's own, for which the owner learns ``None``.
_NO_ANSWER_TIMERS = frozenset({"B", "F", "cancel"})


class EndpointHandlers(Protocol):
    """What the endpoint's user is told: requests, responses outside any transaction, ACK timeouts."""

    def on_message(self, message: Message | SipParseError, source: Destination) -> None:
        """Everything the transports deliver; the handler screens it and calls :meth:`Endpoint.receive`."""

    def on_request(self, event: RequestReceived) -> None: ...

    def on_stray_response(self, response: Response) -> None:
        """A response that matches no client transaction (a 2xx retransmitted after it ended)."""

    def on_ack_timeout(self, event: AckTimeout) -> None: ...


class Endpoint:
    """One node's SIP endpoint: UDP and TCP on ``host:port``, TLS on ``tls_port``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        clock: MonotonicClock = time.monotonic,
        timers: TimerSettings | None = None,
        tcp: bool = True,
        tls_context: ssl.SSLContext | None = None,
        tls_port: int = 5061,
        wire: Callable[[Transmit], None] | None = None,
        allowed_methods: Collection[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.clock = clock
        self.layer = TransactionLayer(timers)
        # RFC 3261 §8.2 / RFC 4475: answers to requests that did not parse, limited per source.
        self.malformed = MalformedRequests()
        # The methods a request may carry before the handlers see it (RFC 3261 §8.2.1: 405 / 501).
        self.allowed_methods = allowed_methods
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self.tls: TlsTransport | None = None
        self._want_tcp = tcp
        self._tls_context = tls_context
        self._handlers: EndpointHandlers | None = None
        # Instead of sockets: what would be sent goes here (unit tests of the B2BUA without sockets).
        self._wire = wire
        # Tasks started for the endpoint's users (ACD commits, media set-up); awaited on stop.
        self.tasks: set[asyncio.Task[Any]] = set()
        # The transaction layer's next timer, as one loop timer rescheduled only when an earlier one
        # appears (a wake-up per SIP message cost a task and a timeout handle each).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._owners: dict[TransactionKey, ResponseOwner] = {}
        self.running = False

    # ================================================================ life cycle
    async def start(self, handlers: EndpointHandlers) -> None:
        """Listen on UDP (and TCP on the same port, TLS on its own) and deliver to ``handlers``."""
        self._handlers = handlers
        self.running = True
        if self._wire is not None:
            return
        on_message = handlers.on_message
        self.udp = await UdpTransport.listen(self.host, self.port, on_message)
        self.port = self.udp.address[1]  # port 0 means "any free port" (tests)
        if self._want_tcp:
            self.tcp = await TcpTransport.listen(self.host, self.port, on_message)
        if self._tls_context is not None:
            self.tls = await TlsTransport.listen_tls(self.host, self.tls_port, on_message, self._tls_context)
            self.tls_port = self.tls.address[1]

    def close_transports(self) -> None:
        """Close the listening transports (those a failed start opened, or all on stop)."""
        for transport in (self.udp, self.tcp, self.tls):
            if transport is not None:
                transport.close()
        self.udp = self.tcp = self.tls = None

    def stop_timers(self) -> None:
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_due = None

    async def drain(self, grace_s: float) -> None:
        """Let running tasks finish for up to ``grace_s``, cancel the rest, close the transports."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace_s)
        for task in list(self.tasks):
            task.cancel()
        for transport in (self.udp, self.tcp, self.tls):
            if transport is not None:
                transport.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task the endpoint tracks (its failure is logged, not lost)."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("voice task failed", exc_info=task.exception())

    @property
    def is_idle(self) -> bool:
        """No task of the endpoint's users is running (tests wait for this after a SIP exchange)."""
        return not self.tasks

    # ================================================================ wire in, wire out
    def receive(self, message: Message | SipParseError, source: Destination) -> None:
        """Pass a screened message to the transaction layer and act on what it says. A request that
        did not parse gets its RFC 3261 §8.2 answer (400, 505, 513; limited per source) instead."""
        if isinstance(message, SipParseError):
            error = self.malformed.answer(message, source.host, self.clock())
            if error is not None:
                # RFC 3261 §8.2: a request we cannot parse gets 400 (or 505/513), never silence.
                self.send(Transmit(error, source))
            return
        try:
            events = self.layer.receive(message, self.clock(), source)
        except ProtocolError as exc:
            log.debug("dropped message from %s: %s", source, exc)
            return
        self.handle(events)

    def send(self, transmit: Transmit) -> None:
        if self._wire is not None:
            self._wire(transmit)
            return
        destination = transmit.destination
        data = transmit.data
        if destination.transport.upper() == "TLS":
            if self.tls is not None:
                self.tls.send(data, destination)
        elif destination.reliable and self.tcp is not None:
            self.tcp.send(data, destination)
        elif self.udp is not None:
            self.udp.send(data, destination)

    def handle(self, events: list[Any]) -> None:
        """Act on the transaction layer's events: send, deliver to the handlers and owners."""
        handlers = self._handlers
        try:
            for event in events:
                if isinstance(event, Transmit):
                    self.send(event)
                elif isinstance(event, RequestReceived):
                    if handlers is not None:
                        self._deliver_request(handlers, event)
                elif isinstance(event, ResponseReceived):
                    self._on_response(event)
                elif isinstance(event, TransactionTimeout):
                    if event.timer in _NO_ANSWER_TIMERS:
                        owner = self._owners.pop(event.transaction, None)
                        if owner is not None:
                            owner(None)
                elif isinstance(event, AckTimeout) and handlers is not None:
                    handlers.on_ack_timeout(event)
        finally:
            self._arm_timer()  # also when a handler failed: the other transactions' timers go on

    def _deliver_request(self, handlers: EndpointHandlers, event: RequestReceived) -> None:
        """Hand a request to the handlers once it passed RFC 3261 §8.2's checks (501, 416, 420, 415
        are answered here); a request that does not fit its dialog (a lower CSeq, §12.2.2) is answered
        with the status the dialog core chose (500) and the call is left as it was."""
        request = event.request
        rejection = validate_request(request, self.allowed_methods)
        if rejection is not None:
            self.respond_with(rejection)
            return
        try:
            handlers.on_request(event)
        except DialogError as exc:
            log.info(
                "%s of call %s from %s refused with %d: %s",
                request.method,
                request.call_id,
                event.source.host,
                exc.status_code,
                exc.reason,
            )
            if request.method != "ACK":
                self.respond(request, exc.status_code, exc.reason)

    def _on_response(self, event: ResponseReceived) -> None:
        if event.transaction is None:
            if self._handlers is not None:
                self._handlers.on_stray_response(event.response)
            return
        owner = self._owners.pop(event.transaction, None)
        if owner is not None:
            owner(event.response)
            if event.response.is_provisional and event.transaction not in self._owners:
                # The owner keeps hearing about its transaction until the final answer.
                self._owners[event.transaction] = owner

    def fire_timers(self, now: float) -> None:
        """Run the transaction timers due at ``now`` (the loop timer does this; tests may too)."""
        self.handle(self.layer.handle_timer(now))

    def _arm_timer(self) -> None:
        """Make the loop timer fire at the transaction layer's next timer (earlier ones only: a timer
        that fires early finds nothing due and re-arms)."""
        due = self.layer.next_timer()
        if due is None or not self.running:
            return
        if self._timer is not None and self._timer_due is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(max(0.0, due - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_due = None
        self.fire_timers(self.clock())

    def respond(self, request: Request, status: int, reason: str | None = None, **kwargs: Any) -> None:
        """Answer ``request`` (through its server transaction)."""
        self.respond_with(build_response(request, status, reason, **kwargs))

    def respond_with(self, response: Response) -> None:
        try:
            self.handle(self.layer.send_response(response, self.clock()))
        except ProtocolError as exc:
            log.debug("response not sent: %s", exc)

    def request(
        self, request: Request, destination: Destination, owner: ResponseOwner | None
    ) -> TransactionKey | None:
        """Send ``request`` in a new client transaction (an ACK without one); ``owner`` hears its
        responses until the final one. Returns the transaction's key (``None`` for an ACK)."""
        events = self.layer.send_request(request, destination, self.clock())
        key: TransactionKey | None = None
        if request.method != "ACK":
            key = TransactionKey(branch=request.top_via.branch or "", method=request.method)
            if owner is not None:
                self._owners[key] = owner
        self.handle(events)
        return key

    def forget(self, key: TransactionKey) -> None:
        """Stop telling the owner of ``key`` about its responses."""
        self._owners.pop(key, None)

    # ================================================================ addresses and common messages
    def port_for(self, transport: str) -> int:
        """Our port for ``transport``: TLS listens on its own (5061), UDP and TCP share ``port``."""
        return self.tls_port if transport.upper() == "TLS" else self.port

    def via(self, transport: str = "UDP") -> Via:
        return Via(
            transport=transport, host=self.host, port=self.port_for(transport), params=(("rport", None),)
        )

    def contact(self, transport: str = "UDP", user: str = "frontoffice") -> NameAddress:
        uri = parse_uri(f"sip:{user}@{self.host}:{self.port_for(transport)}")
        if transport != "UDP":
            uri = uri.with_param("transport", transport.lower())
        return NameAddress(uri)

    def sdp_response(
        self,
        request: Request,
        status: int,
        sdp: SessionDescription,
        transport: str = "UDP",
        to_tag: str | None = None,
    ) -> Response:
        """``status`` to ``request`` with our SDP and Contact (183 early media, 200 answers); a 2xx
        carries the session timer the request asked for (RFC 4028 §9)."""
        return build_response(
            request,
            status,
            to_tag=to_tag,
            contact=self.contact(transport),
            body=sdp.serialize(),
            content_type="application/sdp",
            extra_headers=session_timer_headers(request) if 200 <= status < 300 else (),
        )

    def answer_invite(
        self, invite: Request, to_tag: str, source: Destination, sdp: SessionDescription
    ) -> Dialog:
        """Send 200 with our SDP to an INVITE we are the UAS of; returns the dialog it starts."""
        response = self.sdp_response(invite, 200, sdp, source.transport, to_tag)
        dialog = Dialog.from_uas(invite, response, via=self.via(source.transport))
        self.respond_with(response)
        return dialog

    def ack_answer(self, invite: Request, response: Response, destination: Destination) -> Dialog:
        """ACK a 2xx to our INVITE at once (RFC 3261 §13.2.2.4); returns the dialog it starts."""
        dialog = Dialog.from_uac(invite, response)
        self.request(dialog.ack(invite.cseq.seq), destination, None)
        return dialog

    def accept_cancel(self, request: Request, event: RequestReceived) -> bool:
        """RFC 3261 §9.2: 200 to a CANCEL (the INVITE still needs its 487), 481 when it matches no
        transaction; True in the first case."""
        if event.cancels is None:
            self.respond(request, 481)
            return False
        # §9.2: with the To tag of the INVITE's responses (sent already, or to come), never a new one.
        self.respond(request, 200, to_tag=self.layer.to_tag(event.cancels))
        return True

    def to_tag(self, key: TransactionKey) -> str:
        """The To tag for the responses of server transaction ``key`` (the one a CANCEL's 200 may
        have chosen already, RFC 3261 §9.2), or a new one when the transaction is gone."""
        return self.layer.to_tag(key) or new_tag()
