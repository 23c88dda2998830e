"""The asyncio transport of the SMPP session: connect, bind, reconnect with back-off, submit with
the window, hand inbound messages and receipts up, acknowledge after the handler returned.

All protocol decisions live in :class:`~frontoffice.channels.sms.smpp.SmppSession`; this file moves
octets and waits. Long messages are split (``encoding.split_message``) and reassembled
(``encoding.Reassembler``) here because both need the clock and the connection.

Acknowledgement: a complete message's (last) deliver_sm is answered after :meth:`SmsInbound.message`
returned (the message is committed); if it raised, with ESME_RX_T_APPN, so the SMSC delivers it
again. The earlier parts of a long message are answered when they arrive: SMSCs time out unanswered
deliver_sm within seconds and drop the bind, so holding them for the last part is not an option; a
restart between the parts of one message delivers the parts that come after it as a message
marked incomplete.

The SMS center's host is an administrator's input: the client connects only to the addresses
``egress`` allows (public ones and ``integrations_allowed_networks``;
:meth:`~frontoffice.services.egress.EgressPolicy.open_connection`): the host is resolved at each
attempt, every address is checked, and the connection goes to a checked address (a second lookup
could answer differently: DNS rebinding). A refused attempt connects nothing; it is logged, kept as
:attr:`SmppClient.refused`, tried again with the back-off like an unreachable SMS center, and a
submit meanwhile fails at once as temporary (``smpp-not-allowed: refused: …``), so the outbox keeps
the message queued and retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from frontoffice.aio import wake_or_timeout
from frontoffice.services.egress import AddressRefused, EgressPolicy

from .encoding import (
    REASSEMBLY_TIMEOUT_S,
    EncodingError,
    Reassembled,
    Reassembler,
    decode,
    parse_udh,
    split_message,
)
from .smpp import (
    DEFAULT_WINDOW,
    ENQUIRE_LINK_S,
    ESM_UDHI,
    RESPONSE_TIMEOUT_S,
    Bound,
    CommandStatus,
    MessageReceived,
    Receipt,
    ReceiptReceived,
    SessionClosed,
    SessionState,
    ShortMessage,
    SmppEvent,
    SmppSession,
    SubmitAnswered,
    build_submits,
)

__all__ = [
    "RECONNECT_MAX_S",
    "RECONNECT_MIN_S",
    "InboundSms",
    "SmppClient",
    "SmppLink",
    "SmppSubmitError",
    "SmsInbound",
]

log = logging.getLogger("frontoffice.sms.smpp")

# Back-off between connection attempts: a second first (an SMSC restarting is back in seconds),
# doubling to a minute (an SMSC down for maintenance is not hammered; a minute is the longest an
# agent's reply waits for a link that came back).
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
# Connecting and the bind's answer: an SMSC answers bind_transceiver in milliseconds.
CONNECT_TIMEOUT_S = 10.0
# How long a submit waits for the link to be bound before it gives up (the outbox retries later).
BIND_WAIT_S = 30.0


class SmppSubmitError(Exception):
    """The SMSC refused a part (``status``) or the link was lost before its answer (``temporary``)."""

    error_id = "smpp-submit-failed"

    def __init__(self, reason: str, *, status: int | None, temporary: bool) -> None:
        super().__init__(reason)
        self.reason, self.status, self.temporary = reason, status, temporary


@dataclass(frozen=True, slots=True)
class SmppLink:
    """One SMSC account (an SMS entry point's ``config.smpp``)."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = DEFAULT_WINDOW
    enquire_link_s: float = ENQUIRE_LINK_S
    response_timeout_s: float = RESPONSE_TIMEOUT_S
    reassembly_timeout_s: float = REASSEMBLY_TIMEOUT_S
    # Source TON/NPI: 1/1 for a number in international format, 5/0 for an alphanumeric name.
    source_ton: int = 1
    source_npi: int = 1
    reconnect_min_s: float = RECONNECT_MIN_S
    reconnect_max_s: float = RECONNECT_MAX_S


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A customer's SMS: ``sender`` (E.164 with '+' when the SMSC said international), the
    ``recipient`` (our number), the text; ``complete`` False when parts of it never came."""

    sender: str
    recipient: str
    text: str
    complete: bool = True


class SmsInbound(Protocol):
    """Where the client hands what arrives (the SMS channel's service, wired in ``bootstrap.py``)."""

    async def message(self, sms: InboundSms) -> None:
        """Store the message; return after the commit (raise: the SMSC delivers it again)."""

    async def receipt(self, receipt: Receipt) -> bool:
        """Record a delivery receipt; False: not known yet (the SMSC delivers it again)."""


def _e164(address: str, ton: int) -> str:
    # §5.2.5: TON 1 = international: the number without '+'.
    return f"+{address}" if ton == 1 and address.isdigit() else address


class SmppClient:
    """One bound transceiver to one SMSC, kept bound (see the module's docstring)."""

    def __init__(
        self,
        link: SmppLink,
        inbound: SmsInbound,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "smpp",
        egress: EgressPolicy | None = None,
    ) -> None:
        self.link, self.inbound, self.clock, self.name = link, inbound, clock, name
        # Where the SMS center may be (module docstring); by default public addresses only.
        self.egress = egress or EgressPolicy()
        self._session: SmppSession | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._answers: dict[int, asyncio.Future[SubmitAnswered]] = {}
        self._reassembler = Reassembler(link.reassembly_timeout_s)
        self._handlers: set[asyncio.Task[None]] = set()
        self._reference = random.randrange(256)
        self.binds = 0  # successful binds since start (a reconnect shows as a second)
        # The link's state for people: why the last connection attempt failed or the link was lost
        # (None once bound), and the refusal when that attempt went to an address not allowed.
        self.last_error: str | None = None
        self.refused: str | None = None

    # ---------------------------------------------------------------- life
    @property
    def bound(self) -> bool:
        return self._session is not None and self._session.state is SessionState.BOUND

    async def start(self) -> None:
        """Connect and keep the link bound in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"smpp-{self.name}")

    async def stop(self) -> None:
        """Unbind (politely, when bound) and close."""
        task, self._task = self._task, None
        if self.bound and self._session is not None and self._writer is not None:
            self._session.unbind(self.clock())
            self._flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._wait(lambda: not self.bound), 2.0)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._handlers):
            t.cancel()

    async def _run(self) -> None:
        delay = self.link.reconnect_min_s
        while True:
            try:
                if await self._connect_once():
                    delay = self.link.reconnect_min_s  # it was bound: start the back-off over
            except asyncio.CancelledError:
                raise
            except AddressRefused as exc:
                # Nothing was connected. Tried again like an unreachable SMSC: the name may resolve
                # to an allowed address later (an operator allowing the network restarts the node).
                self.refused = self.last_error = str(exc)
                log.warning("SMPP %s: %s", self.name, exc)
            except Exception as exc:
                self.refused, self.last_error = None, f"{type(exc).__name__}: {exc}"
                log.warning("SMPP %s: %s", self.name, exc)
            self._lost("connection lost")
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(self.link.reconnect_max_s, delay * 2)

    async def _connect_once(self) -> bool:
        link = self.link
        # Resolved, checked and connected to the checked address (no second lookup).
        reader, writer = await asyncio.wait_for(
            self.egress.open_connection(link.host, link.port), CONNECT_TIMEOUT_S
        )
        self.refused = None
        session = SmppSession(
            link.system_id,
            link.password,
            system_type=link.system_type,
            window=link.window,
            enquire_link_s=link.enquire_link_s,
            response_timeout_s=link.response_timeout_s,
        )
        self._session, self._writer = session, writer
        was_bound = False
        # Reading and the timers are two tasks: a wait_for around read() could drop data that
        # arrived as the timeout fired (Python < 3.12), and a lost response stalls the window.
        kick = asyncio.Event()
        timers = asyncio.create_task(self._timers(session, writer, kick))
        try:
            session.bind(self.clock())
            self._flush()
            while session.state not in (SessionState.CLOSED, SessionState.ERROR):
                data = await reader.read(65536)
                if not data:
                    self._dispatch(session.connection_lost())
                    break
                self._dispatch(session.receive_data(data, self.clock()))
                was_bound = was_bound or session.state is SessionState.BOUND
                self._flush()
                kick.set()  # the next timer may have moved
        finally:
            # Not ``suppress(CancelledError)`` around ``await timers``: when this task itself is being
            # cancelled (stop()), that would swallow its own cancellation and the reconnect loop would
            # go on sleeping (stop() then waited for ever). gather returns the timers' CancelledError
            # and still raises ours.
            timers.cancel()
            await asyncio.gather(timers, return_exceptions=True)
            self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return was_bound

    async def _timers(self, session: SmppSession, writer: asyncio.StreamWriter, kick: asyncio.Event) -> None:
        while True:
            await wake_or_timeout(kick, self._next_wait())
            kick.clear()
            now = self.clock()
            self._dispatch(session.handle_timer(now))
            for message in self._reassembler.expire(now):
                self._spawn(self._deliver(message, None))
            self._flush()
            if session.state in (SessionState.CLOSED, SessionState.ERROR):
                writer.close()  # the reading loop ends
                return

    def _next_wait(self) -> float:
        now = self.clock()
        timers = [
            t
            for t in (self._session.next_timer() if self._session else None, self._reassembler.next_timer())
            if t is not None
        ]
        return max(0.0, min(timers) - now) if timers else 60.0

    def _flush(self) -> None:
        if self._session is not None and self._writer is not None:
            data = self._session.data_to_send()
            if data:
                self._writer.write(data)

    def _lost(self, reason: str) -> None:
        for future in self._answers.values():
            if not future.done():
                future.set_exception(SmppSubmitError(reason, status=None, temporary=True))
        self._answers.clear()
        self._pulse()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()

    # ---------------------------------------------------------------- events
    def _dispatch(self, events: list[SmppEvent]) -> None:
        for event in events:
            if isinstance(event, Bound):
                self.binds += 1
                self.last_error = None
                log.info("SMPP %s: bound to %s", self.name, event.system_id)
            elif isinstance(event, SubmitAnswered):
                future = self._answers.pop(event.sequence, None)
                if future is not None and not future.done():
                    future.set_result(event)
            elif isinstance(event, MessageReceived):
                self._received(event)
            elif isinstance(event, ReceiptReceived):
                self._spawn(self._receipt(event))
            elif isinstance(event, SessionClosed):
                log.warning("SMPP %s: %s", self.name, event.reason)
                self.last_error = event.reason
                self._lost(event.reason)
        if events:
            self._pulse()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def _received(self, event: MessageReceived) -> None:
        assert self._session is not None
        m = event.message
        sender = _e164(m.source_addr, m.source_addr_ton)
        recipient = _e164(m.destination_addr, m.dest_addr_ton)
        data = m.user_data
        if m.esm_class & ESM_UDHI:
            try:
                concat, data = parse_udh(data)
            except EncodingError:
                self._session.acknowledge(event.sequence, CommandStatus.ESME_RINVMSGLEN)
                return
            if concat is not None and concat.total > 1:
                done = self._reassembler.add(
                    self.clock(), sender, recipient, concat, m.data_coding, data, str(event.sequence)
                )
                if not done:
                    self._session.acknowledge(event.sequence)  # an earlier part: see the docstring
                for message in done:
                    self._spawn(self._deliver(message, event.sequence))
                return
        text = decode(data, m.data_coding)
        self._spawn(self._deliver(Reassembled(sender, recipient, text, True, ()), event.sequence))

    async def _deliver(self, message: Reassembled, sequence: int | None) -> None:
        session = self._session
        status: int = CommandStatus.ESME_ROK
        try:
            await self.inbound.message(
                InboundSms(message.sender, message.recipient, message.text, message.complete)
            )
        except Exception:
            log.exception("SMPP %s: an inbound SMS was not stored; the SMSC will deliver it again", self.name)
            status = CommandStatus.ESME_RX_T_APPN
        if sequence is not None and session is self._session and session is not None:
            session.acknowledge(sequence, status)
            self._flush()

    async def _receipt(self, event: ReceiptReceived) -> None:
        session = self._session
        try:
            known = await self.inbound.receipt(event.receipt)
            status = CommandStatus.ESME_ROK if known else CommandStatus.ESME_RX_T_APPN
        except Exception:
            log.exception("SMPP %s: a delivery receipt was not recorded", self.name)
            status = CommandStatus.ESME_RX_T_APPN
        if session is self._session and session is not None:
            session.acknowledge(event.sequence, status)
            self._flush()

    # ---------------------------------------------------------------- submit
    async def submit_text(
        self, source: str, destination: str, text: str, *, receipt: bool = True
    ) -> list[str]:
        """Send ``text`` (split into concatenated parts when long); return the SMSC's message id of
        each part. Raises :class:`SmppSubmitError` (``temporary``: try again later) or
        :class:`EncodingError` (too long)."""
        self._reference = (self._reference + 1) % 256
        parts = split_message(text, self._reference)
        link = self.link
        bodies = build_submits(
            source.lstrip("+") if link.source_ton == 1 else source,
            destination,
            [(p.data_coding, p.short_message, p.udh) for p in parts],
            receipt=receipt,
            source_ton=link.source_ton,
            source_npi=link.source_npi,
        )
        try:
            await asyncio.wait_for(self._wait(lambda: self.bound or self.refused is not None), BIND_WAIT_S)
        except TimeoutError:
            raise SmppSubmitError("the SMSC link is not bound", status=None, temporary=True) from None
        if not self.bound and self.refused is not None:
            # Waiting for a bind that the check refuses is pointless: the outbox retries later.
            raise SmppSubmitError(f"smpp-not-allowed: {self.refused}", status=None, temporary=True)
        futures: list[asyncio.Future[SubmitAnswered]] = []
        try:
            await self._submit_parts(bodies, futures)
        except BaseException:
            for future in futures:
                if future.done() and not future.cancelled():
                    future.exception()
            raise
        try:
            answers = await asyncio.gather(*futures)
        finally:
            for future in futures:  # every outcome is retrieved, even after the first failure
                if future.done() and not future.cancelled():
                    future.exception()
        for answer in answers:
            if answer.status != CommandStatus.ESME_ROK:
                raise SmppSubmitError(
                    f"the SMSC refused the message (command_status 0x{answer.status:08x})",
                    status=answer.status,
                    temporary=answer.temporary,
                )
        return [a.message_id for a in answers]

    async def _submit_parts(
        self, bodies: list[ShortMessage], futures: list[asyncio.Future[SubmitAnswered]]
    ) -> None:
        for body in bodies:
            # Windowing: wait for a free slot (a response frees one).
            await self._wait(
                lambda: self._session is not None and (self._session.can_submit or not self.bound)
            )
            session = self._session
            if session is None or not self.bound:
                raise SmppSubmitError("the SMSC link was lost", status=None, temporary=True)
            seq = session.submit(body, self.clock())
            future: asyncio.Future[SubmitAnswered] = asyncio.get_running_loop().create_future()
            self._answers[seq] = future
            futures.append(future)
            self._flush()
