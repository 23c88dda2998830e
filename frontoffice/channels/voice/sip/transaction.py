"""The SIP transaction layer (RFC 3261 §17), sans-IO.

Feed it what arrives (:meth:`TransactionLayer.receive`), what the transaction user wants to send
(:meth:`~TransactionLayer.send_request`, :meth:`~TransactionLayer.send_response`) and the time
(:meth:`~TransactionLayer.handle_timer` when :meth:`~TransactionLayer.next_timer` is due). Every call
returns events: :class:`Transmit` for octets to put on the wire, the rest for the transaction user.
Nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import Enum

from .builders import IdGenerator, build_response, new_tag, random_id
from .exceptions import SipParseError, TransactionError
from .headers import Via
from .message import Headers, Message, Request, Response

__all__ = [
    "AckTimeout",
    "Destination",
    "RequestReceived",
    "ResponseReceived",
    "TimerSettings",
    "TransactionEvent",
    "TransactionKey",
    "TransactionLayer",
    "TransactionState",
    "TransactionTerminated",
    "TransactionTimeout",
    "Transmit",
]

DEFAULT_SIP_PORT = 5060  # RFC 3261 §19.1.2
DEFAULT_SIPS_PORT = 5061


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """RFC 3261 §17.1.1.1 timer values, configurable for links with unusual round-trip times."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # maximum duration a message remains in the network
    # RFC 3261 §16.8 Timer C (> 3 min): how long an INVITE may ring on provisionals alone before the
    # TU is told (TransactionTimeout "C") so it can CANCEL. ``None`` leaves that to the TU.
    timer_c: float | None = None

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J and the 2xx retransmission limit."""
        return 64 * self.t1


@dataclass(frozen=True, slots=True)
class Destination:
    """Where to send: host, port and transport name (``UDP``, ``TCP``, ``TLS``, ``WS``...)."""

    host: str
    port: int
    transport: str = "UDP"

    @property
    def reliable(self) -> bool:
        """Stream transports: RFC 3261 §17 sets Timers A, E, G off and D, I, J, K to zero."""
        return self.transport.upper() not in ("UDP", "DTLS")


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """Identifies a transaction (RFC 3261 §17.1.3 for clients, §17.2.3 for servers).

    ``method`` is the request method, with ACK folded into INVITE; ``sent_by`` is empty for clients.
    """

    branch: str
    method: str
    sent_by: str = ""
    server: bool = False


class TransactionState(Enum):
    """States of the four RFC 3261 §17 state machines."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"  # RFC 6026 §7.1: server INVITE after a 2xx
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``message`` to ``destination``."""

    message: Message
    destination: Destination

    @property
    def data(self) -> bytes:
        """The octets to send."""
        return self.message.serialize()


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the transaction user.

    ``transaction`` is ``None`` for an ACK to a 2xx, which is not part of any transaction (§17.1.1.1).
    For a CANCEL, ``cancels`` names the INVITE server transaction it matches (§9.2), if any.
    """

    request: Request
    transaction: TransactionKey | None
    source: Destination
    cancels: TransactionKey | None = None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the transaction user; ``transaction`` is ``None`` when nothing matched
    (a retransmitted 2xx to INVITE after the transaction ended, §13.2.2.4: the TU re-sends its ACK).
    """

    response: Response
    transaction: TransactionKey | None


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """A transaction gave up: ``timer`` is B or F (no final response; the TU treats it as 408,
    §8.1.3.1), H (no ACK), ``cancel`` (no final response 64*T1 after CANCEL, §9.1) — all of which
    terminate it — or C (ringing too long, §16.8), after which the TU should send CANCEL."""

    transaction: TransactionKey
    timer: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction is gone."""

    transaction: TransactionKey


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """No ACK arrived for a 2xx within 64*T1 (§13.3.1.4): confirm the dialog, then send BYE."""

    call_id: str
    cseq: int


TransactionEvent = (
    Transmit | RequestReceived | ResponseReceived | TransactionTimeout | TransactionTerminated | AckTimeout
)


class _Kind(Enum):
    CLIENT_INVITE = "ict"
    CLIENT_NON_INVITE = "nict"
    SERVER_INVITE = "ist"
    SERVER_NON_INVITE = "nist"


@dataclass(eq=False)
class _Transaction:
    key: TransactionKey
    kind: _Kind
    state: TransactionState
    request: Request
    destination: Destination
    timers: dict[str, float] = field(default_factory=dict)
    interval: float = 0.0
    last_response: Response | None = None
    ack: Request | None = None
    to_tag: str | None = None  # server side: the To tag of this request's responses (§8.2.6.2)


@dataclass(eq=False)
class _SuccessRetransmit:
    """UAS core retransmission of a 2xx to INVITE until the ACK arrives (§13.3.1.4)."""

    response: Response
    destination: Destination
    interval: float
    next_at: float
    give_up_at: float


def _fold(method: str) -> str:
    # RFC 3261 §17.2.3: an ACK matches the INVITE transaction it acknowledges.
    return "INVITE" if method == "ACK" else method


def _branch_of(message: Message) -> tuple[str, Via]:
    via = message.top_via
    branch = via.branch or ""
    if branch.startswith("z9hG4bK"):
        return branch, via
    # RFC 3261 §17.2.3 fallback for RFC 2543 peers: identify by the request's dialog coordinates.
    if isinstance(message, Request):
        return f"2543|{message.call_id}|{message.from_.tag}|{message.cseq.seq}|{message.uri}", via
    return branch, via


def _response_destination(via: Via, source: Destination | None) -> Destination:
    """RFC 3261 §18.2.2 with RFC 3581: answer where the request came from when we know it."""
    if source is not None:
        return source
    host = (via.received or via.host).strip("[]")  # a Destination holds a bare address
    port = via.rport or via.port or (DEFAULT_SIPS_PORT if via.transport == "TLS" else DEFAULT_SIP_PORT)
    return Destination(host=host, port=port, transport=via.transport)


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(
        self, timers: TimerSettings | None = None, *, send_trying: bool = True, ids: IdGenerator = random_id
    ) -> None:
        self.timers = timers or TimerSettings()
        self._ids = ids
        # RFC 3261 §17.2.1: 100 Trying unless the TU answers within 200 ms; we cannot know that.
        self.send_trying = send_trying
        self._transactions: dict[TransactionKey, _Transaction] = {}
        self._heap: list[tuple[float, int, TransactionKey | tuple[str, int], str]] = []
        self._sequence = 0
        self._success: dict[tuple[str, int], _SuccessRetransmit] = {}

    # ----------------------------------------------------------------- inspection

    def state(self, key: TransactionKey) -> TransactionState:
        """Current state; TERMINATED for a transaction that no longer exists."""
        txn = self._transactions.get(key)
        return txn.state if txn is not None else TransactionState.TERMINATED

    def __len__(self) -> int:
        return len(self._transactions)

    def to_tag(self, key: TransactionKey) -> str | None:
        """The To tag of the responses of server transaction ``key``: the one already sent, else one
        chosen now and kept, so every later response uses it (RFC 3261 §8.2.6.2: one tag for all
        responses to a request). ``None`` when the transaction no longer exists.

        RFC 3261 §9.2: the 200 to a CANCEL carries the To tag of the INVITE's responses, so
        ``to_tag(event.cancels)`` gives the tag for it, whether the INVITE was answered yet or not.
        """
        txn = self._transactions.get(key)
        if txn is None:
            return None
        if txn.to_tag is None:
            txn.to_tag = new_tag(self._ids)
        return txn.to_tag

    def awaiting_ack(self, call_id: str, cseq: int) -> bool:
        """Whether a 2xx to the INVITE ``call_id``/``cseq`` is still being retransmitted for want of
        its ACK (RFC 3261 §13.3.1.4)."""
        return (call_id, cseq) in self._success

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` should next be called, or ``None`` if nothing is pending."""
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    # ----------------------------------------------------------------- timers

    def _schedule(self, txn: _Transaction, name: str, at: float) -> None:
        txn.timers[name] = at
        self._sequence += 1
        heapq.heappush(self._heap, (at, self._sequence, txn.key, name))

    def _live(self, entry: tuple[float, int, TransactionKey | tuple[str, int], str]) -> bool:
        at, _, key, name = entry
        if isinstance(key, TransactionKey):
            txn = self._transactions.get(key)
            return txn is not None and txn.timers.get(name) == at
        retransmit = self._success.get(key)
        return retransmit is not None and (
            (name == "2xx" and retransmit.next_at == at)
            or (name == "2xx-end" and retransmit.give_up_at == at)
        )

    def handle_timer(self, now: float) -> list[TransactionEvent]:
        """Fire every timer due at ``now``."""
        events: list[TransactionEvent] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if not self._live(entry):
                continue
            _, _, key, name = entry
            if isinstance(key, TransactionKey):
                txn = self._transactions[key]
                del txn.timers[name]
                events.extend(self._fire(txn, name, now))
            else:
                events.extend(self._fire_success(key, name, now))
        return events

    def _fire(self, txn: _Transaction, name: str, now: float) -> list[TransactionEvent]:
        t = self.timers
        if name == "A":
            # §17.1.1.2: Timer A doubles on each retransmission (no T2 cap for INVITE).
            txn.interval *= 2
            self._schedule(txn, "A", now + txn.interval)
            return [Transmit(txn.request, txn.destination)]
        if name == "E":
            # §17.1.2.2: doubles up to T2 in Trying; in Proceeding it is always T2.
            txn.interval = min(txn.interval * 2, t.t2) if txn.state is TransactionState.TRYING else t.t2
            self._schedule(txn, "E", now + txn.interval)
            return [Transmit(txn.request, txn.destination)]
        if name == "G":
            # §17.2.1: final response retransmitted with doubling interval capped at T2.
            txn.interval = min(txn.interval * 2, t.t2)
            self._schedule(txn, "G", now + txn.interval)
            # Timer G is only armed after a final response was sent, so there is one to repeat.
            return [Transmit(txn.last_response, txn.destination)] if txn.last_response else []
        if name in ("B", "F", "H", "cancel"):
            return [TransactionTimeout(txn.key, name), *self._terminate(txn)]
        if name == "C":
            return [TransactionTimeout(txn.key, "C")]  # the TU sends CANCEL; the transaction lives on
        # D, I, J, K, L: the absorb period is over.
        return self._terminate(txn)

    def _fire_success(self, key: tuple[str, int], name: str, now: float) -> list[TransactionEvent]:
        retransmit = self._success[key]
        if name == "2xx-end":
            del self._success[key]
            return [AckTimeout(call_id=key[0], cseq=key[1])]
        retransmit.interval = min(retransmit.interval * 2, self.timers.t2)
        retransmit.next_at = now + retransmit.interval
        self._push_success(key, "2xx", retransmit.next_at)
        return [Transmit(retransmit.response, retransmit.destination)]

    def _push_success(self, key: tuple[str, int], name: str, at: float) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (at, self._sequence, key, name))

    def _terminate(self, txn: _Transaction) -> list[TransactionEvent]:
        txn.state = TransactionState.TERMINATED
        txn.timers.clear()
        self._transactions.pop(txn.key, None)
        return [TransactionTerminated(txn.key)]

    # ----------------------------------------------------------------- client side

    def send_request(self, request: Request, destination: Destination, now: float) -> list[TransactionEvent]:
        """Start a client transaction for ``request`` (or just send an ACK, which has none)."""
        if request.method == "ACK":
            # §17.1.1.3: an ACK for a 2xx is sent by the TU directly, outside any transaction.
            return [Transmit(request, destination)]
        branch, _ = _branch_of(request)
        if not branch:
            raise TransactionError("Request has no Via branch")
        key = TransactionKey(branch=branch, method=request.method)
        if key in self._transactions:
            raise TransactionError("A transaction with this branch and method exists")
        invite = request.method == "INVITE"
        txn = _Transaction(
            key=key,
            kind=_Kind.CLIENT_INVITE if invite else _Kind.CLIENT_NON_INVITE,
            state=TransactionState.CALLING if invite else TransactionState.TRYING,
            request=request,
            destination=destination,
            interval=self.timers.t1,
        )
        self._transactions[key] = txn
        if request.method == "CANCEL":
            target = self._transactions.get(TransactionKey(branch=branch, method="INVITE"))
            if target is not None and target.state in (TransactionState.CALLING, TransactionState.PROCEEDING):
                # RFC 3261 §9.1: without a final response 64*T1 after the CANCEL, the INVITE client
                # transaction is destroyed (a peer that vanished mid-ring must not leak it).
                target.timers.pop("C", None)
                self._schedule(target, "cancel", now + self.timers.timeout)
        if not destination.reliable:
            self._schedule(txn, "A" if invite else "E", now + self.timers.t1)
        self._schedule(txn, "B" if invite else "F", now + self.timers.timeout)
        return [Transmit(request, destination)]

    def _receive_response(self, response: Response, now: float) -> list[TransactionEvent]:
        branch, _ = _branch_of(response)
        key = TransactionKey(branch=branch, method=response.cseq.method)
        txn = self._transactions.get(key)
        if txn is None:
            return [ResponseReceived(response, None)]
        if txn.kind is _Kind.CLIENT_INVITE:
            return self._client_invite_response(txn, response, now)
        return self._client_non_invite_response(txn, response, now)

    def _client_invite_response(
        self, txn: _Transaction, response: Response, now: float
    ) -> list[TransactionEvent]:
        events: list[TransactionEvent] = []
        if txn.state in (TransactionState.CALLING, TransactionState.PROCEEDING):
            if response.is_provisional:
                if txn.state is TransactionState.CALLING:
                    # §17.1.1.2: leave Calling; Timers A and B apply only there.
                    txn.timers.pop("A", None)
                    txn.timers.pop("B", None)
                    txn.state = TransactionState.PROCEEDING
                if self.timers.timer_c is not None and "cancel" not in txn.timers:
                    # §16.8: every provisional response restarts Timer C.
                    self._schedule(txn, "C", now + self.timers.timer_c)
                return [ResponseReceived(response, txn.key)]
            if response.is_success:
                # §17.1.1.2: 2xx goes to the TU, which sends the ACK; the transaction ends.
                return [ResponseReceived(response, txn.key), *self._terminate(txn)]
            txn.ack = _ack_for(txn.request, response)
            events.append(Transmit(txn.ack, txn.destination))
            events.append(ResponseReceived(response, txn.key))
            txn.timers.clear()
            txn.state = TransactionState.COMPLETED
            if txn.destination.reliable:
                events.extend(self._terminate(txn))
            else:
                # Timer D: absorb final response retransmissions for at least 32 s (§17.1.1.2).
                self._schedule(txn, "D", now + max(32.0, self.timers.timeout))
            return events
        if txn.state is TransactionState.COMPLETED and response.is_final and txn.ack is not None:
            # A retransmitted final response: re-send the ACK, do not bother the TU.
            return [Transmit(txn.ack, txn.destination)]
        return []

    def _client_non_invite_response(
        self, txn: _Transaction, response: Response, now: float
    ) -> list[TransactionEvent]:
        if txn.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return []  # Completed: retransmissions are absorbed (§17.1.2.2)
        if response.is_provisional:
            txn.state = TransactionState.PROCEEDING
            return [ResponseReceived(response, txn.key)]
        events: list[TransactionEvent] = [ResponseReceived(response, txn.key)]
        txn.timers.clear()
        txn.state = TransactionState.COMPLETED
        if txn.destination.reliable:
            events.extend(self._terminate(txn))
        else:
            self._schedule(txn, "K", now + self.timers.t4)  # Timer K = T4 (§17.1.2.2)
        return events

    # ----------------------------------------------------------------- server side

    def receive(
        self, message: Message, now: float, source: Destination | None = None
    ) -> list[TransactionEvent]:
        """Process a parsed message from the transport; ``source`` is the peer it came from."""
        if isinstance(message, Response):
            return self._receive_response(message, now)
        if not isinstance(message, Request):
            raise TransactionError("Not a SIP request or response")
        branch, via = _branch_of(message)
        key = TransactionKey(branch=branch, method=_fold(message.method), sent_by=via.sent_by, server=True)
        txn = self._transactions.get(key)
        reply_to = _response_destination(via, source)
        if message.method == "ACK":
            accepted = txn is not None and txn.state is TransactionState.ACCEPTED
            if txn is not None and txn.kind is _Kind.SERVER_INVITE and not accepted:
                # The ACK of a non-2xx final response is hop-by-hop: the transaction's own (§17.2.1).
                return self._server_ack(txn, now)
            # ACK for a 2xx: stop retransmitting that 2xx and hand it to the TU (§13.3.1.4). RFC 6026
            # §7.1: in Accepted an ACK matching the transaction (an RFC 2543-style element reusing the
            # INVITE's branch) is passed to the TU too, never absorbed, or the 2xx would be repeated
            # until the call is torn down 64*T1 later.
            self._success.pop((message.call_id, message.cseq.seq), None)
            return [RequestReceived(message, None, reply_to)]
        if txn is not None:
            return self._server_retransmission(txn)
        invite = message.method == "INVITE"
        txn = _Transaction(
            key=key,
            kind=_Kind.SERVER_INVITE if invite else _Kind.SERVER_NON_INVITE,
            state=TransactionState.PROCEEDING if invite else TransactionState.TRYING,
            request=message,
            destination=reply_to,
        )
        self._transactions[key] = txn
        events: list[TransactionEvent] = []
        if invite and self.send_trying:
            trying = build_response(message, 100)
            txn.last_response = trying
            events.append(Transmit(trying, reply_to))
        cancels: TransactionKey | None = None
        if message.method == "CANCEL":
            # §9.2: the CANCEL matches the INVITE with the same branch and sent-by.
            target = TransactionKey(branch=branch, method="INVITE", sent_by=via.sent_by, server=True)
            cancels = target if target in self._transactions else None
        events.append(RequestReceived(message, key, reply_to, cancels))
        return events

    def _server_retransmission(self, txn: _Transaction) -> list[TransactionEvent]:
        # §17.2.1 / §17.2.2: a retransmitted request gets the most recent response again; Confirmed
        # and Accepted (RFC 6026 §7.1) absorb it.
        if txn.state in (TransactionState.CONFIRMED, TransactionState.ACCEPTED) or txn.last_response is None:
            return []
        return [Transmit(txn.last_response, txn.destination)]

    def _server_ack(self, txn: _Transaction, now: float) -> list[TransactionEvent]:
        if txn.state is not TransactionState.COMPLETED:
            return []  # Confirmed absorbs further ACKs; Proceeding has nothing to acknowledge
        txn.timers.clear()
        txn.state = TransactionState.CONFIRMED
        if txn.destination.reliable:
            return self._terminate(txn)
        self._schedule(txn, "I", now + self.timers.t4)  # Timer I = T4 (§17.2.1)
        return []

    def send_response(self, response: Response, now: float) -> list[TransactionEvent]:
        """Send a response through its server transaction."""
        try:
            branch, via = _branch_of(response)
            method = response.cseq.method
        except SipParseError as exc:
            raise TransactionError(f"Response cannot be matched: {exc.reason}") from None
        if not branch.startswith("z9hG4bK"):
            # An RFC 2543 request was keyed by its dialog coordinates (see _branch_of).
            branch = self._legacy_branch_for(response) or branch
        key = TransactionKey(branch=branch, method=method, sent_by=via.sent_by, server=True)
        txn = self._transactions.get(key)
        if txn is None:
            raise TransactionError("No server transaction for this response")
        if txn.state is TransactionState.ACCEPTED and response.is_success:
            # RFC 6026 §7.1: further 2xx (retransmissions, forks) pass straight to the transport.
            return [Transmit(response, txn.destination)]
        if txn.state not in (TransactionState.PROCEEDING, TransactionState.TRYING):
            raise TransactionError(f"Cannot respond in state {txn.state.value}")
        if txn.to_tag is None and response.status != 100:
            txn.to_tag = response.to.tag  # the first tagged response fixes the tag (§8.2.6.2)
        txn.last_response = response
        events: list[TransactionEvent] = [Transmit(response, txn.destination)]
        if response.is_provisional:
            if txn.kind is _Kind.SERVER_NON_INVITE:
                txn.state = TransactionState.PROCEEDING
            return events
        t = self.timers
        if txn.kind is _Kind.SERVER_INVITE:
            if response.is_success:
                # RFC 6026 §7.1 (fixing RFC 3261 §17.2.1): the transaction enters Accepted for Timer L,
                # so INVITE retransmissions are absorbed instead of reaching the TU as new calls.
                # The UAS core retransmits the 2xx until the ACK arrives (RFC 3261 §13.3.1.4).
                call_key = (response.call_id, response.cseq.seq)
                retransmit = _SuccessRetransmit(
                    response=response,
                    destination=txn.destination,
                    interval=t.t1,
                    next_at=now + t.t1,
                    give_up_at=now + t.timeout,
                )
                self._success[call_key] = retransmit
                self._push_success(call_key, "2xx", retransmit.next_at)
                self._push_success(call_key, "2xx-end", retransmit.give_up_at)
                txn.state = TransactionState.ACCEPTED
                self._schedule(txn, "L", now + t.timeout)
                return events
            txn.state = TransactionState.COMPLETED
            if not txn.destination.reliable:
                txn.interval = t.t1
                self._schedule(txn, "G", now + t.t1)
            self._schedule(txn, "H", now + t.timeout)
            return events
        txn.state = TransactionState.COMPLETED
        if txn.destination.reliable:
            return [*events, *self._terminate(txn)]
        self._schedule(txn, "J", now + t.timeout)  # Timer J = 64*T1 (§17.2.2)
        return events

    def _legacy_branch_for(self, response: Response) -> str | None:
        for key, txn in self._transactions.items():
            if (
                key.server
                and key.branch.startswith("2543|")
                and txn.request.call_id == response.call_id
                and txn.request.cseq == response.cseq
            ):
                return key.branch
        return None


def _ack_for(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", str(request.top_via))
    for route in request.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{request.cseq.seq} ACK")
    return Request(method="ACK", uri=request.uri, headers=headers)
