"""Conferences in the media layer: a mixer that gives each party the sum of the others.

A three-way call (agent, caller, a third party) cannot be relayed packet by packet: each party must
hear the two others at once. So the legs of a conference stop relaying and feed a :class:`Conference`
instead: every 20 ms tick takes one frame of each party's decoded G.711 audio (silence for a party
that sent none), and sends each party the sum of the others' frames ("mix-minus": nobody hears their
own voice back), clipped to 16 bits, encoded with that party's codec, on the leg's one outgoing RTP
stream (so a phone sees one stream whether the relay, the music or the mixer feeds it).

A conference runs on the media loop with one timer, paced against its first tick like the music
player, so scheduling jitter does not add up. A conference is created by the first leg that joins
and ends when the last leaves (``MediaBackend.join_conference`` / ``leave_conference``).

Only while three or more parties are in it does a conference mix. With two (the caller and the
colleague after an attended transfer, the agent and the consulted colleague, what is left of a
three-way call) each party's packets go to the other as they came, as the session's relay does: no
decoding, no 20 ms tick, no encoding - a mixed pair cost several times the CPU of a relayed one. The
packets still leave on the receiving leg's one outgoing stream, which continues its SSRC, sequence
numbers and timestamps across the switch (``_Leg.forward``), so a phone never sees the change. Two
parties with different codecs (PCMU and PCMA) stay in the mixer, which transcodes.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from array import array
from collections.abc import Callable, Sequence
from operator import sub

from . import g711

__all__ = ["Conference", "ConferenceMember", "mix_minus"]

SAMPLE_RATE = 8000  # G.711 (RFC 3551 §4.5.14)
FRAME_MS = 20  # one tick: RFC 3551 §4.2's default packetization for G.711
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
# A party's audio waits at most this long for its tick (the oldest is dropped beyond it): packets come
# in bursts and a phone's clock runs a little fast or slow against ours, and without a bound the
# party would drift further behind the others for the whole call. 100 ms absorbs ordinary jitter.
MAX_BUFFERED_SAMPLES = SAMPLE_RATE * 100 // 1000
_SILENCE = bytes(2 * FRAME_SAMPLES)
_INT16_MIN, _INT16_MAX = -32768, 32767


def mix_minus(frames: Sequence[bytes]) -> list[bytes]:
    """For each frame (16-bit signed native-order PCM of equal length), the sum of all the others,
    clipped to 16 bits: what each party of a conference hears."""
    decoded = [array("h", frame) for frame in frames]
    total = [sum(column) for column in zip(*decoded, strict=True)] if decoded else []
    return [
        array(
            "h",
            [
                _INT16_MIN if v < _INT16_MIN else _INT16_MAX if v > _INT16_MAX else v
                for v in map(sub, total, own)
            ],
        ).tobytes()
        for own in decoded
    ]


Send = Callable[[bytes, int, int, int], None]  # packet, its SSRC, sequence number, timestamp


class ConferenceMember:
    """One party: the audio it sent, waiting for the next tick, and its outgoing RTP stream.

    ``send`` puts an RTP packet on the party's leg (``_Leg.forward``); ``codec`` and ``payload_type``
    are the leg's negotiated G.711 codec (the mixer decodes and encodes with it).
    """

    def __init__(self, send: Send, codec: str, payload_type: int) -> None:
        self.send = send
        self.codec = codec
        self.payload_type = payload_type
        self._buffer = bytearray()  # decoded 16-bit PCM, oldest first
        self._ssrc = secrets.randbits(32)
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._first = True
        # With one other party: where this party's packets go as they are (the other's ``send``).
        self.relay_to: Send | None = None

    def same_codec(self, other: ConferenceMember) -> bool:
        """Whether the two parties' packets can pass between them untouched (same codec and type)."""
        return self.payload_type == other.payload_type and self.codec.upper() == other.codec.upper()

    def receive(self, payload: bytes, packet: bytes, ssrc: int, sequence: int, timestamp: int) -> bool:
        """A packet of this party's audio (``packet``, with its codec's ``payload`` and header fields).
        Relayed to the other party of a pair (True), else kept for the next tick of the mixer."""
        relay = self.relay_to
        if relay is not None:
            relay(packet, ssrc, sequence, timestamp)
            return True
        buffer = self._buffer
        buffer += g711.decode(self.codec, payload)
        excess = len(buffer) - 2 * MAX_BUFFERED_SAMPLES
        if excess > 0:
            del buffer[:excess]
        return False

    def drop_buffer(self) -> None:
        """Forget the audio waiting for a tick (the party is relayed from now on)."""
        self._buffer.clear()

    def take_frame(self) -> bytes:
        """The next 20 ms of this party's audio in native byte order; silence if a whole frame has
        not arrived (a partial one waits for the next tick)."""
        if len(self._buffer) < 2 * FRAME_SAMPLES:
            return _SILENCE
        frame = bytes(self._buffer[: 2 * FRAME_SAMPLES])
        del self._buffer[: 2 * FRAME_SAMPLES]
        if sys.byteorder == "big":
            swapped = array("h", frame)
            swapped.byteswap()
            frame = swapped.tobytes()
        return frame

    def play(self, frame: bytes) -> None:
        """Send ``frame`` (native-order PCM) to this party as the next packet of its mixer stream."""
        if sys.byteorder == "big":
            swapped = array("h", frame)
            swapped.byteswap()
            frame = swapped.tobytes()
        # Not g711.encode: its cache is for the few sounds every call plays, and each mix is new.
        payload = g711.alaw_encode(frame) if self.codec.upper() == "PCMA" else g711.ulaw_encode(frame)
        header = bytes([0x80, (0x80 if self._first else 0) | self.payload_type])
        packet = (
            header
            + self._sequence.to_bytes(2, "big")
            + self._timestamp.to_bytes(4, "big")
            + self._ssrc.to_bytes(4, "big")
            + payload
        )
        self.send(packet, self._ssrc, self._sequence, self._timestamp)
        self._first = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF


class Conference:
    """The parties of one conference and the tick that mixes them (see the module)."""

    def __init__(self) -> None:
        self.members: dict[object, ConferenceMember] = {}  # by the leg that joined, insertion-ordered
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._ticks = 0

    def join(self, key: object, member: ConferenceMember) -> None:
        """``member`` takes part (again: replaces what ``key`` had); see :meth:`_arrange`."""
        self.members[key] = member
        self._arrange()

    def leave(self, key: object) -> None:
        """``key``'s party leaves; see :meth:`_arrange`."""
        self.members.pop(key, None)
        self._arrange()

    @property
    def relaying(self) -> bool:
        """Two parties whose packets pass straight between them (the mixer is idle)."""
        return self._timer is None and len(self.members) == 2

    def _arrange(self) -> None:
        """Relay a pair of the same codec, mix three or more (or a pair of two codecs), stop with
        nobody left (see the module)."""
        members = list(self.members.values())
        for member in members:
            member.relay_to = None
        if len(members) == 2 and members[0].same_codec(members[1]):
            first, second = members
            first.relay_to, second.relay_to = second.send, first.send
            for member in members:
                member.drop_buffer()  # what waited for a tick is stale by now
            self._stop()
        elif members:
            if self._timer is None:
                loop = asyncio.get_running_loop()
                self._started, self._ticks = loop.time(), 0
                self._timer = loop.call_at(self._started + FRAME_MS / 1000, self._tick)
        else:
            self._stop()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def mix(self) -> None:
        """One tick: each party gets the others' frames of this tick, summed."""
        members = list(self.members.values())
        for member, heard in zip(members, mix_minus([m.take_frame() for m in members]), strict=True):
            member.play(heard)

    def _tick(self) -> None:
        self._ticks += 1
        self.mix()
        if self.members:
            due = self._started + (self._ticks + 1) * FRAME_MS / 1000
            self._timer = asyncio.get_running_loop().call_at(due, self._tick)
        else:
            self._timer = None
