"""SMPP 3.4 for an ESME bound as a transceiver: the PDU codec and the session, sans-IO.

Bytes in → events out (:meth:`SmppSession.receive_data`), calls in → bytes out
(:meth:`SmppSession.data_to_send`); time is passed in (``handle_timer(now)`` / ``next_timer()``).
The asyncio transport around it (``channels/sms/smpp_client.py``) only moves bytes and waits.

Why our own: the maintained asyncio libraries on PyPI either own the socket and the retry policy
(aiosmpplib: a queue of its own, partial ESME, no say over when a deliver_sm is acknowledged — we
acknowledge only after the commit) or are a compiled engine of one vendor (smpp34, Rust). The SMPP
3.4 PDUs an ESME needs are a handful; the tests talk to an SMSC double built on ``smpplib``'s codec.

The session (SMPP 3.4 §2.3, §2.8):

* ``open`` —bind()→ ``binding`` —bind_transceiver_resp OK→ ``bound`` —unbind()→ ``unbinding`` →
  ``closed``; a refused bind, a broken PDU or an unanswered request puts it in ``error`` (the
  transport closes the connection and binds again with back-off).
* **Windowing** (§2.8): at most ``window`` requests await their response; :meth:`submit` refuses
  beyond it (:class:`WindowFull`) and the transport waits for a response to free a slot.
* **enquire_link** (§4.11) after ``enquire_link_s`` without traffic; a request unanswered for
  ``response_timeout_s`` means the link is dead.
* deliver_sm (§4.6) is handed up as :class:`MessageReceived`; the application answers it with
  :meth:`acknowledge` once it has stored it (or a temporary error, and the SMSC delivers it again).
  An SMSC delivery receipt (esm_class bits 2–5 = 0001, §5.2.12) is a :class:`ReceiptReceived`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

__all__ = [
    "DEFAULT_WINDOW",
    "ENQUIRE_LINK_S",
    "MAX_PDU_BYTES",
    "RESPONSE_TIMEOUT_S",
    "Bound",
    "CommandId",
    "CommandStatus",
    "MessageReceived",
    "Pdu",
    "ProtocolError",
    "ReceiptReceived",
    "SessionClosed",
    "SessionState",
    "ShortMessage",
    "SmppEvent",
    "SmppSession",
    "SubmitAnswered",
    "Tag",
    "WindowFull",
    "decode_pdu",
    "encode_pdu",
    "parse_receipt",
]

# §3.2: command_length covers the whole PDU. The largest legal PDU is a submit_sm with a
# message_payload TLV (up to 64 KB); anything bigger is a broken or hostile peer, not a message.
MAX_PDU_BYTES = 70_000
# §2.8 leaves the window to the two sides' agreement; 10 outstanding submit_sm is what SMSCs of
# Russian carriers and aggregators allow by default (they throttle beyond, ESME_RTHROTTLED).
DEFAULT_WINDOW = 10
# enquire_link after a minute of silence: under the idle timeouts of SMSCs (typically 90–300 s)
# and of NAT boxes on the way, and rare enough to cost nothing.
ENQUIRE_LINK_S = 60.0
# A request unanswered for 30 s: the SMSC or the path is gone (SMSCs answer in milliseconds).
RESPONSE_TIMEOUT_S = 30.0
# §5.2: interface_version 0x34 announces SMPP 3.4.
INTERFACE_VERSION = 0x34
_HEADER = struct.Struct(">IIII")


class ProtocolError(Exception):
    """The peer broke SMPP (a PDU we cannot parse, an answer to nothing, a refused bind)."""

    error_id = "smpp-protocol-error"


class WindowFull(Exception):
    """``window`` requests already await their responses."""

    error_id = "smpp-window-full"


class CommandId(IntEnum):
    """§5.1.2.1 command_id values an ESME transceiver uses."""

    GENERIC_NACK = 0x80000000
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class CommandStatus(IntEnum):
    """§5.1.3 command_status values we send or act on."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RTHROTTLED = 0x58
    # §5.1.3: "ESME Receiver Temporary App Error Code": the SMSC delivers the message again later.
    ESME_RX_T_APPN = 0x64


# Statuses after which the same submit_sm may succeed later (queue full, throttled, system error).
TEMPORARY_STATUSES = frozenset({0x08, 0x14, 0x58, 0x64})


class Tag(IntEnum):
    """§5.3.2 TLV tags we read or write."""

    RECEIPTED_MESSAGE_ID = 0x001E
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


# esm_class (§5.2.12): bit 6 UDHI; bits 2-5 the message type (0001 = SMSC delivery receipt).
ESM_UDHI = 0x40
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04
# registered_delivery (§5.2.17): 1 = a receipt on final success or failure.
REGISTERED_DELIVERY_FINAL = 0x01


@dataclass(slots=True)
class ShortMessage:
    """The body of a submit_sm or deliver_sm (§4.4.1, §4.6.1), addresses with TON/NPI."""

    source_addr: str = ""
    destination_addr: str = ""
    short_message: bytes = b""
    data_coding: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    service_type: str = ""
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    replace_if_present_flag: int = 0
    sm_default_msg_id: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def user_data(self) -> bytes:
        """short_message, or the message_payload TLV when short_message is empty (§5.3.2.32)."""
        return self.short_message or self.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")

    @property
    def is_receipt(self) -> bool:
        return self.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT


@dataclass(slots=True)
class Pdu:
    """One PDU: header fields and a body (``None`` for header-only PDUs)."""

    command_id: int
    sequence: int
    status: int = 0
    # bind: system_id, password, system_type; *_sm_resp / bind_resp: message_id / system_id.
    fields: dict[str, str] = field(default_factory=dict)
    message: ShortMessage | None = None


# ---------------------------------------------------------------------------------------- codec
def _cstring(value: str, limit: int, name: str) -> bytes:
    raw = value.encode("ascii", errors="strict")
    if len(raw) >= limit:
        raise ProtocolError(f"{name} longer than {limit - 1} octets")
    return raw + b"\x00"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def cstring(self, limit: int) -> str:
        end = self.data.find(b"\x00", self.pos, self.pos + limit)
        if end < 0:
            raise ProtocolError("C-octet string without its NUL")
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ProtocolError("PDU body too short")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError("PDU body too short")
        value = self.data[self.pos : self.pos + n]
        self.pos += n
        return value

    def tlvs(self) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        while self.pos < len(self.data):
            if self.pos + 4 > len(self.data):
                raise ProtocolError("Truncated TLV")
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            self.pos += 4
            out[tag] = self.octets(length)
        return out


def _encode_message(m: ShortMessage) -> bytes:
    if len(m.short_message) > 254:  # §4.4.1: sm_length is one octet, 254 at most
        raise ProtocolError("short_message longer than 254 octets (use message_payload)")
    out = bytearray()
    out += _cstring(m.service_type, 6, "service_type")
    out += bytes((m.source_addr_ton, m.source_addr_npi))
    out += _cstring(m.source_addr, 21, "source_addr")
    out += bytes((m.dest_addr_ton, m.dest_addr_npi))
    out += _cstring(m.destination_addr, 21, "destination_addr")
    out += bytes((m.esm_class, m.protocol_id, m.priority_flag))
    out += _cstring(m.schedule_delivery_time, 17, "schedule_delivery_time")
    out += _cstring(m.validity_period, 17, "validity_period")
    out += bytes((m.registered_delivery, m.replace_if_present_flag, m.data_coding, m.sm_default_msg_id))
    out += bytes((len(m.short_message),)) + m.short_message
    for tag, value in m.tlvs.items():
        out += struct.pack(">HH", tag, len(value)) + value
    return bytes(out)


def _decode_message(r: _Reader) -> ShortMessage:
    m = ShortMessage()
    m.service_type = r.cstring(6)
    m.source_addr_ton, m.source_addr_npi = r.byte(), r.byte()
    m.source_addr = r.cstring(21)
    m.dest_addr_ton, m.dest_addr_npi = r.byte(), r.byte()
    m.destination_addr = r.cstring(21)
    m.esm_class, m.protocol_id, m.priority_flag = r.byte(), r.byte(), r.byte()
    m.schedule_delivery_time = r.cstring(17)
    m.validity_period = r.cstring(17)
    m.registered_delivery, m.replace_if_present_flag = r.byte(), r.byte()
    m.data_coding, m.sm_default_msg_id = r.byte(), r.byte()
    m.short_message = r.octets(r.byte())
    m.tlvs = r.tlvs()
    return m


def encode_pdu(pdu: Pdu) -> bytes:
    """The PDU's octets (§3.2: a 16-octet header, then the body)."""
    cid = pdu.command_id
    body = b""
    if cid == CommandId.BIND_TRANSCEIVER:
        f = pdu.fields
        body = (
            _cstring(f.get("system_id", ""), 16, "system_id")
            + _cstring(f.get("password", ""), 9, "password")
            + _cstring(f.get("system_type", ""), 13, "system_type")
            + bytes((INTERFACE_VERSION, 0, 0))
            + _cstring(f.get("address_range", ""), 41, "address_range")
        )
    elif cid == CommandId.BIND_TRANSCEIVER_RESP:
        body = _cstring(pdu.fields.get("system_id", ""), 16, "system_id")
    elif cid in (CommandId.SUBMIT_SM, CommandId.DELIVER_SM):
        assert pdu.message is not None
        body = _encode_message(pdu.message)
    elif cid in (CommandId.SUBMIT_SM_RESP, CommandId.DELIVER_SM_RESP):
        # §4.4.2: the body of an error response may be omitted; we always send the empty id.
        body = _cstring(pdu.fields.get("message_id", ""), 65, "message_id")
    return _HEADER.pack(16 + len(body), cid, pdu.status, pdu.sequence) + body


def decode_pdu(data: bytes) -> Pdu:
    """One whole PDU (its length already checked by the caller)."""
    length, cid, status, sequence = _HEADER.unpack_from(data)
    r = _Reader(data[16:length])
    pdu = Pdu(cid, sequence, status)
    if cid in (CommandId.SUBMIT_SM, CommandId.DELIVER_SM):
        pdu.message = _decode_message(r)
    elif cid in (CommandId.SUBMIT_SM_RESP, CommandId.DELIVER_SM_RESP, CommandId.BIND_TRANSCEIVER_RESP):
        if r.pos < len(r.data):  # §4.4.2: an error response may have no body
            key = "system_id" if cid == CommandId.BIND_TRANSCEIVER_RESP else "message_id"
            pdu.fields[key] = r.cstring(66)
    elif cid == CommandId.BIND_TRANSCEIVER:
        pdu.fields["system_id"] = r.cstring(16)
        pdu.fields["password"] = r.cstring(9)
    return pdu


# --------------------------------------------------------------------------- receipts (Appendix B)
_RECEIPT_FIELD = re.compile(r"(id|stat|err):(\S*)", re.IGNORECASE)
# Appendix B stat values, and the message_state TLV values (§5.2.28) mapped to them.
_FINAL_DELIVERED = {"DELIVRD"}
_FINAL_FAILED = {"EXPIRED", "DELETED", "UNDELIV", "REJECTD"}
_MESSAGE_STATES = {
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: the SMSC's ``message_id`` of the part it reports on, the ``stat``
    (DELIVRD, UNDELIV, ...), ``error`` code, and ``final`` outcome: "delivered" / "failed" / None."""

    message_id: str
    stat: str
    error: str
    outcome: str | None


def parse_receipt(message: ShortMessage) -> Receipt:
    """A receipt's message id and state: the TLVs (§5.3.2.12, §5.3.2.35) when present, the text of
    Appendix B (``id:... sub:... dlvrd:... submit date:... done date:... stat:DELIVRD err:000``) else."""
    text = message.user_data.decode("latin-1")
    found = {k.lower(): v for k, v in _RECEIPT_FIELD.findall(text)}
    raw_id = message.tlvs.get(Tag.RECEIPTED_MESSAGE_ID)
    message_id = raw_id.rstrip(b"\x00").decode("latin-1") if raw_id is not None else found.get("id", "")
    state = message.tlvs.get(Tag.MESSAGE_STATE)
    stat = _MESSAGE_STATES.get(state[0], "UNKNOWN") if state else found.get("stat", "UNKNOWN").upper()
    outcome = "delivered" if stat in _FINAL_DELIVERED else "failed" if stat in _FINAL_FAILED else None
    return Receipt(message_id, stat, found.get("err", ""), outcome)


# ------------------------------------------------------------------------------------- session
class SessionState(Enum):
    OPEN = "open"
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    CLOSED = "closed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Bound:
    """bind_transceiver was accepted by ``system_id``."""

    system_id: str


@dataclass(frozen=True, slots=True)
class SubmitAnswered:
    """The submit_sm ``sequence`` was answered: ``status`` 0 and the SMSC's ``message_id``, or an
    error status (``temporary``: worth trying again later)."""

    sequence: int
    status: int
    message_id: str

    @property
    def temporary(self) -> bool:
        return self.status in TEMPORARY_STATUSES


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A deliver_sm with a customer's message; answer with ``acknowledge(sequence)``."""

    sequence: int
    message: ShortMessage


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    """A deliver_sm carrying a delivery receipt; answer with ``acknowledge(sequence)``."""

    sequence: int
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session ended (unbind, a refused bind, a protocol error, a dead link): ``reason``;
    ``unanswered``: the sequences of submit_sm that got no response (their fate is unknown)."""

    reason: str
    unanswered: tuple[int, ...]


SmppEvent = Bound | SubmitAnswered | MessageReceived | ReceiptReceived | SessionClosed


class SmppSession:
    """One ESME transceiver session over one connection (see the module's docstring)."""

    def __init__(
        self,
        system_id: str,
        password: str,
        *,
        system_type: str = "",
        window: int = DEFAULT_WINDOW,
        enquire_link_s: float = ENQUIRE_LINK_S,
        response_timeout_s: float = RESPONSE_TIMEOUT_S,
    ) -> None:
        self.system_id, self.password, self.system_type = system_id, password, system_type
        self.window = window
        self.enquire_link_s = enquire_link_s
        self.response_timeout_s = response_timeout_s
        self.state = SessionState.OPEN
        self._buffer = bytearray()
        self._out = bytearray()
        self._sequence = 0
        # sequence -> (command_id, deadline) of our requests awaiting a response
        self._outstanding: dict[int, tuple[int, float]] = {}
        self._last_traffic = 0.0

    # ---------------------------------------------------------------- calls in
    def _next_sequence(self) -> int:
        # §5.1.4: 0x00000001 to 0x7FFFFFFF, wrapping.
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def _request(self, command_id: int, now: float, **kw: object) -> int:
        seq = self._next_sequence()
        self._out += encode_pdu(Pdu(command_id, seq, **kw))  # type: ignore[arg-type]
        self._outstanding[seq] = (command_id, now + self.response_timeout_s)
        self._last_traffic = now
        return seq

    def bind(self, now: float) -> None:
        """Send bind_transceiver (§4.1.5) with our credentials."""
        if self.state is not SessionState.OPEN:
            raise ProtocolError(f"bind in state {self.state.value}")
        self.state = SessionState.BINDING
        self._request(
            CommandId.BIND_TRANSCEIVER,
            now,
            fields={"system_id": self.system_id, "password": self.password, "system_type": self.system_type},
        )

    @property
    def outstanding_submits(self) -> int:
        return sum(1 for cid, _ in self._outstanding.values() if cid == CommandId.SUBMIT_SM)

    @property
    def can_submit(self) -> bool:
        return self.state is SessionState.BOUND and len(self._outstanding) < self.window

    def submit(self, message: ShortMessage, now: float) -> int:
        """Send a submit_sm; return its sequence number (its answer: :class:`SubmitAnswered`)."""
        if self.state is not SessionState.BOUND:
            raise ProtocolError(f"submit_sm in state {self.state.value}")
        if len(self._outstanding) >= self.window:
            raise WindowFull(f"{self.window} requests await their responses")
        return self._request(CommandId.SUBMIT_SM, now, message=message)

    def acknowledge(self, sequence: int, status: int = CommandStatus.ESME_ROK) -> None:
        """Answer a deliver_sm (after the message is stored; a temporary error status has the SMSC
        deliver it again)."""
        if self.state in (SessionState.CLOSED, SessionState.ERROR):
            return  # the connection is gone; the SMSC delivers it again on the next bind
        self._out += encode_pdu(Pdu(CommandId.DELIVER_SM_RESP, sequence, status))

    def unbind(self, now: float) -> None:
        """Send unbind (§4.2.1); the session closes on its response."""
        if self.state is SessionState.BOUND:
            self.state = SessionState.UNBINDING
            self._request(CommandId.UNBIND, now)

    def data_to_send(self) -> bytes:
        """Octets for the peer since the last call."""
        out, self._out = bytes(self._out), bytearray()
        return out

    # ---------------------------------------------------------------- bytes in
    def receive_data(self, data: bytes, now: float) -> list[SmppEvent]:
        """Feed octets from the peer; return what they meant."""
        if self.state in (SessionState.CLOSED, SessionState.ERROR):
            return []
        self._buffer += data
        self._last_traffic = now
        events: list[SmppEvent] = []
        try:
            while len(self._buffer) >= 16:
                (length,) = struct.unpack_from(">I", self._buffer)
                if length < 16 or length > MAX_PDU_BYTES:
                    raise ProtocolError(f"command_length {length} out of range")
                if len(self._buffer) < length:
                    break
                raw = bytes(self._buffer[:length])
                del self._buffer[:length]
                events += self._handle(raw, now)
                if self.state in (SessionState.CLOSED, SessionState.ERROR):
                    break
        except ProtocolError as exc:
            events.append(self._fail(str(exc)))
        return events

    def _fail(self, reason: str, state: SessionState = SessionState.ERROR) -> SessionClosed:
        self.state = state
        unanswered = tuple(s for s, (cid, _) in self._outstanding.items() if cid == CommandId.SUBMIT_SM)
        self._outstanding.clear()
        return SessionClosed(reason, unanswered)

    def _handle(self, raw: bytes, now: float) -> list[SmppEvent]:
        cid, status, seq = struct.unpack_from(">III", raw, 4)
        if cid & 0x80000000:  # a response
            request = self._outstanding.pop(seq, None)
            if cid == CommandId.GENERIC_NACK:
                if request is None:
                    return []
                return self._answered(request[0], seq, status or CommandStatus.ESME_RSYSERR, "", now)
            if request is None:
                return []  # §2.7: a response to nothing we sent (late, after a timeout): ignored
            pdu = decode_pdu(raw)
            key = "system_id" if cid == CommandId.BIND_TRANSCEIVER_RESP else "message_id"
            return self._answered(request[0], seq, status, pdu.fields.get(key, ""), now)
        if cid == CommandId.ENQUIRE_LINK:
            self._out += encode_pdu(Pdu(CommandId.ENQUIRE_LINK_RESP, seq))
            return []
        if cid == CommandId.UNBIND:
            self._out += encode_pdu(Pdu(CommandId.UNBIND_RESP, seq))
            return [self._fail("the SMSC unbound", SessionState.CLOSED)]
        if cid == CommandId.DELIVER_SM:
            if self.state is not SessionState.BOUND:
                self._out += encode_pdu(Pdu(CommandId.DELIVER_SM_RESP, seq, CommandStatus.ESME_RINVBNDSTS))
                return []
            try:
                pdu = decode_pdu(raw)
            except ProtocolError:
                # §3.3: a body we cannot parse is answered with generic_nack; the session goes on.
                self._out += encode_pdu(Pdu(CommandId.GENERIC_NACK, seq, CommandStatus.ESME_RINVMSGLEN))
                return []
            assert pdu.message is not None
            if pdu.message.is_receipt:
                return [ReceiptReceived(seq, parse_receipt(pdu.message))]
            return [MessageReceived(seq, pdu.message)]
        # §3.3: any other request (we are no SMSC): generic_nack, invalid command id.
        self._out += encode_pdu(Pdu(CommandId.GENERIC_NACK, seq, CommandStatus.ESME_RINVCMDID))
        return []

    def _answered(self, request: int, seq: int, status: int, value: str, now: float) -> list[SmppEvent]:
        if request == CommandId.BIND_TRANSCEIVER:
            if status != CommandStatus.ESME_ROK:
                return [self._fail(f"bind refused (status 0x{status:02x})")]
            self.state = SessionState.BOUND
            return [Bound(value)]
        if request == CommandId.SUBMIT_SM:
            return [SubmitAnswered(seq, status, value)]
        if request == CommandId.UNBIND:
            return [self._fail("unbound", SessionState.CLOSED)]
        return []  # enquire_link_resp: the link is alive (traffic time already noted)

    # ---------------------------------------------------------------- time
    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` has something to do (None: closed)."""
        if self.state in (SessionState.CLOSED, SessionState.ERROR):
            return None
        times = [deadline for _, deadline in self._outstanding.values()]
        if self.state is SessionState.BOUND:
            times.append(self._last_traffic + self.enquire_link_s)
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[SmppEvent]:
        """A response overdue → the session fails; a quiet link → enquire_link."""
        if self.state in (SessionState.CLOSED, SessionState.ERROR):
            return []
        late = [seq for seq, (_, deadline) in self._outstanding.items() if deadline <= now]
        if late:
            return [self._fail(f"no response from the SMSC within {self.response_timeout_s:.0f} s")]
        if self.state is SessionState.BOUND and now >= self._last_traffic + self.enquire_link_s:
            self._request(CommandId.ENQUIRE_LINK, now)
        return []

    def connection_lost(self) -> list[SmppEvent]:
        """The transport lost the connection."""
        if self.state in (SessionState.CLOSED, SessionState.ERROR):
            return []
        return [self._fail("connection lost")]


def build_submits(
    source: str,
    destination: str,
    parts: Iterable[tuple[int, bytes, bool]],
    *,
    receipt: bool = True,
    source_ton: int = 0,
    source_npi: int = 0,
    dest_ton: int = 1,
    dest_npi: int = 1,
) -> list[ShortMessage]:
    """submit_sm bodies for a text split into ``(data_coding, short_message, udh)`` parts; TON/NPI:
    the destination an international number (1/1, E.164 without '+'), the source as configured
    (0/0 unknown lets the SMSC decide; 5/0 for an alphanumeric sender name)."""
    return [
        ShortMessage(
            source_addr=source,
            destination_addr=destination.lstrip("+"),
            short_message=data,
            data_coding=coding,
            esm_class=ESM_UDHI if udh else 0,
            registered_delivery=REGISTERED_DELIVERY_FINAL if receipt else 0,
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
        )
        for coding, data, udh in parts
    ]
