"""SMS text: GSM 03.38 and UCS-2, segment counting, UDH concatenation and reassembly (sans-IO).

* **GSM 03.38** (3GPP TS 23.038 §6.2.1): the 7-bit default alphabet and its extension table (``{``,
  ``€``, ``[`` ... are two septets: ESC + code). Over SMPP, ``data_coding`` 0 carries the septets one
  per octet (unpacked); the SMSC packs them for the air interface.
* **UCS-2** (``data_coding`` 8): two octets per character, big-endian. Cyrillic is not in GSM 03.38,
  so a Russian text is UCS-2. Characters outside the BMP (emoji) take two UTF-16 code units, as
  every handset counts them.
* **Segments** (3GPP TS 23.040 §9.2.3.24.1): one SMS carries 140 octets: 160 GSM septets or 70 UCS-2
  characters; a concatenated part loses 6 octets to the user data header (UDH, 8-bit reference):
  153 septets or 67 characters. A part never ends between an ESC and its code, nor inside a surrogate pair.
* **Reassembly**: parts of one message share (sender, reference, total); a message whose parts do not
  all arrive within ``REASSEMBLY_TIMEOUT_S`` is delivered with what came, marked incomplete, rather
  than lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DATA_CODING_GSM",
    "DATA_CODING_UCS2",
    "GSM7_PART",
    "GSM7_SINGLE",
    "MAX_PARTS",
    "REASSEMBLY_TIMEOUT_S",
    "UCS2_PART",
    "UCS2_SINGLE",
    "EncodingError",
    "Part",
    "Reassembler",
    "SegmentCount",
    "count_segments",
    "decode",
    "encode_gsm",
    "is_gsm7",
    "parse_udh",
    "split_message",
]

# SMPP 3.4 §5.2.19 data_coding: 0 SMSC default alphabet (GSM 03.38 here), 8 UCS-2 (ISO/IEC 10646).
DATA_CODING_GSM = 0
DATA_CODING_UCS2 = 8
# 3GPP TS 23.040 §9.2.3.16: 140 octets of user data = 160 septets = 70 UCS-2 characters.
GSM7_SINGLE = 160
UCS2_SINGLE = 70
# With the 6-octet concatenation UDH (05 00 03 ref total seq): 134 octets = 153 septets / 67 chars.
GSM7_PART = 153
UCS2_PART = 67
# The 8-bit reference's "total" field is one octet; carriers refuse far fewer in practice, and an
# agent's reply of more than 10 SMS (~700 Cyrillic characters) is a letter, not a text message.
MAX_PARTS = 10
# Parts of one message arrive within seconds; SMSCs retry a lost part for minutes. After five
# minutes the customer has waited long enough: what arrived is delivered, marked incomplete.
REASSEMBLY_TIMEOUT_S = 300.0
# Incomplete messages held at once; beyond this the oldest is delivered as it is (a flood of
# first parts must not grow memory without bound).
MAX_PENDING_MESSAGES = 10_000

_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# TS 23.038 §6.2.1.1: the extension table reached by ESC (0x1B).
_GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_ESC = 0x1B
_TO_GSM = {ch: i for i, ch in enumerate(_GSM_BASIC) if i != _ESC}
_FROM_GSM = dict(enumerate(_GSM_BASIC))
_FROM_GSM_EXT = {code: ch for ch, code in _GSM_EXTENSION.items()}
assert len(_GSM_BASIC) == 128


class EncodingError(ValueError):
    """Text that cannot be sent as SMS (too long), or bytes that are no valid SMS user data."""

    error_id = "sms-encoding"


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in GSM 03.38 (basic or extension table)."""
    return all(ch in _TO_GSM or ch in _GSM_EXTENSION for ch in text)


def encode_gsm(text: str) -> bytes:
    """``text`` as unpacked GSM 03.38 septets, one per octet (extension characters: ESC + code)."""
    out = bytearray()
    for ch in text:
        code = _TO_GSM.get(ch)
        if code is not None:
            out.append(code)
        elif ch in _GSM_EXTENSION:
            out += bytes((_ESC, _GSM_EXTENSION[ch]))
        else:
            raise EncodingError(f"{ch!r} is not in GSM 03.38")
    return bytes(out)


def decode(data: bytes, data_coding: int) -> str:
    """User data (without UDH) as text: GSM 03.38 unpacked for 0 (and 1, IA5/ASCII: its printable
    range is the same bytes), UCS-2 for 8, Latin-1 for 3; anything else as UTF-8 with replacement."""
    if data_coding in (DATA_CODING_GSM, 1):
        chars: list[str] = []
        escaped = False
        for octet in data:
            octet &= 0x7F
            if escaped:
                # TS 23.038: an unknown extension code shows as the basic table's character.
                chars.append(_FROM_GSM_EXT.get(octet, _FROM_GSM[octet]))
                escaped = False
            elif octet == _ESC:
                escaped = True
            else:
                chars.append(_FROM_GSM[octet])
        return "".join(chars)
    if data_coding == DATA_CODING_UCS2:
        # UTF-16 rather than strict UCS-2: phones send emoji as surrogate pairs.
        return data[: len(data) // 2 * 2].decode("utf-16-be", errors="replace")
    if data_coding == 3:
        return data.decode("latin-1")
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How ``text`` goes out: ``encoding`` ("gsm7" | "ucs2"), ``units`` (septets or UTF-16 code
    units), ``segments``, ``per_segment`` (160/153 or 70/67) and ``remaining`` in the last segment."""

    encoding: str
    units: int
    segments: int
    per_segment: int
    remaining: int


def _units(text: str) -> tuple[str, list[int]]:
    """The encoding and each character's size in units (septets or UTF-16 code units)."""
    if is_gsm7(text):
        return "gsm7", [2 if ch in _GSM_EXTENSION else 1 for ch in text]
    return "ucs2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _chunks(sizes: list[int], limit: int) -> list[tuple[int, int]]:
    """Character ranges whose unit sizes fit in ``limit`` each (a character is never cut)."""
    out: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if used + size > limit:
            out.append((start, i))
            start, used = i, 0
        used += size
    out.append((start, len(sizes)))
    return out


def count_segments(text: str) -> SegmentCount:
    """Segments ``text`` takes (the desk's counter shows the same figures, computed in JavaScript)."""
    encoding, sizes = _units(text)
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    units = sum(sizes)
    if units <= single:
        return SegmentCount(encoding, units, 1 if units else 0, single, single - units)
    chunks = _chunks(sizes, part)
    last = sum(sizes[chunks[-1][0] : chunks[-1][1]])
    return SegmentCount(encoding, units, len(chunks), part, part - last)


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm's worth: ``data_coding``, ``esm_class`` UDHI bit when ``udh`` is set, and the
    ``short_message`` octets (UDH included)."""

    data_coding: int
    short_message: bytes
    udh: bool


def split_message(text: str, reference: int, *, max_parts: int = MAX_PARTS) -> list[Part]:
    """``text`` as SMS parts: one without UDH when it fits, else concatenated parts with the 8-bit
    reference ``reference`` (0–255; TS 23.040 §9.2.3.24.1)."""
    if not text:
        raise EncodingError("An SMS needs text")
    encoding, sizes = _units(text)
    coding = DATA_CODING_GSM if encoding == "gsm7" else DATA_CODING_UCS2
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)

    def encode(chunk: str) -> bytes:
        return encode_gsm(chunk) if coding == DATA_CODING_GSM else chunk.encode("utf-16-be")

    if sum(sizes) <= single:
        return [Part(coding, encode(text), False)]
    chunks = _chunks(sizes, part)
    if len(chunks) > max_parts:
        raise EncodingError(f"The text needs {len(chunks)} SMS; at most {max_parts} are sent")
    ref = reference & 0xFF
    total = len(chunks)
    return [
        Part(coding, bytes((0x05, 0x00, 0x03, ref, total, seq)) + encode(text[a:b]), True)
        for seq, (a, b) in enumerate(chunks, start=1)
    ]


@dataclass(frozen=True, slots=True)
class Concatenation:
    """A part's place in a long message (UDH IE 0x00 8-bit or 0x08 16-bit reference)."""

    reference: int
    total: int
    sequence: int


def parse_udh(short_message: bytes) -> tuple[Concatenation | None, bytes]:
    """Split a short_message whose UDHI bit is set into its concatenation header (when it has one)
    and the user data after the UDH."""
    if not short_message:
        raise EncodingError("Empty user data with a UDH indicator")
    length = short_message[0]
    if 1 + length > len(short_message):
        raise EncodingError("UDH longer than the user data")
    header, rest = short_message[1 : 1 + length], short_message[1 + length :]
    concat: Concatenation | None = None
    i = 0
    while i + 2 <= len(header):
        iei, iel = header[i], header[i + 1]
        value = header[i + 2 : i + 2 + iel]
        if len(value) != iel:
            raise EncodingError("Truncated UDH information element")
        if iei == 0x00 and iel == 3:
            concat = Concatenation(value[0], value[1], value[2])
        elif iei == 0x08 and iel == 4:
            concat = Concatenation(int.from_bytes(value[:2], "big"), value[2], value[3])
        i += 2 + iel
    if concat is not None and not (1 <= concat.sequence <= concat.total):
        concat = None  # TS 23.040: an invalid sequence number — treat the part as a message of its own
    return concat, rest


@dataclass(slots=True)
class _Pending:
    first_seen: float
    data_coding: int
    parts: dict[int, bytes] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A long message put back together (``complete`` False: the timeout delivered what arrived);
    ``part_ids``: the ids of the parts it was made of (for dedupe)."""

    sender: str
    recipient: str
    text: str
    complete: bool
    part_ids: tuple[str, ...]


class Reassembler:
    """Puts concatenated parts back together (sans-IO: time is passed in).

    ``add`` returns the message when its last part arrives; ``expire(now)`` returns the messages
    whose parts stopped arriving ``timeout_s`` ago; ``next_timer()`` says when to call it.
    """

    def __init__(self, timeout_s: float = REASSEMBLY_TIMEOUT_S, max_pending: int = MAX_PENDING_MESSAGES):
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str, int, int], _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        now: float,
        sender: str,
        recipient: str,
        concat: Concatenation,
        data_coding: int,
        user_data: bytes,
        part_id: str,
    ) -> list[Reassembled]:
        """One part; returns the finished message (and any evicted by the pending limit)."""
        key = (sender, recipient, concat.reference, concat.total)
        pending = self._pending.get(key)
        out: list[Reassembled] = []
        if pending is None:
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].first_seen)
                out.append(self._finish(oldest, complete=False))
            pending = self._pending[key] = _Pending(now, data_coding)
        pending.parts.setdefault(concat.sequence, user_data)  # a repeated part changes nothing
        pending.ids.append(part_id)
        if len(pending.parts) == concat.total:
            out.append(self._finish(key, complete=True))
        return out

    def _finish(self, key: tuple[str, str, int, int], *, complete: bool) -> Reassembled:
        pending = self._pending.pop(key)
        if pending.data_coding == DATA_CODING_UCS2:
            # Join the octets first: a surrogate pair may be split between parts by other senders.
            text = decode(b"".join(pending.parts[s] for s in sorted(pending.parts)), pending.data_coding)
        else:
            text = "".join(decode(pending.parts[s], pending.data_coding) for s in sorted(pending.parts))
        return Reassembled(key[0], key[1], text, complete, tuple(pending.ids))

    def next_timer(self) -> float | None:
        """When the oldest incomplete message times out (None: nothing pending)."""
        if not self._pending:
            return None
        return min(p.first_seen for p in self._pending.values()) + self.timeout_s

    def expire(self, now: float) -> list[Reassembled]:
        """Messages whose parts stopped coming: delivered as far as they arrived."""
        due = [k for k, p in self._pending.items() if p.first_seen + self.timeout_s <= now]
        return [self._finish(k, complete=False) for k in due]
