"""Media behind one interface: RTP relay between the caller and agent legs, music on hold, RFC 4733
DTMF detection and WAV recording.

:class:`MediaBackend` is what the B2BUA uses; :class:`PythonMediaBackend` is the default (an asyncio
relay in this process). A backend for rtpengine would implement the same two protocols.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import math
import secrets
import socket
import struct
import tempfile
import time
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol, cast

from frontoffice.domain.dialer import AmdParameters
from frontoffice.domain.exceptions import Unavailable

from . import g711
from .answering_machine import AmdHandler, AmdTap, GreetingEndHandler
from .conference import Conference, ConferenceMember
from .sip import NegotiatedMedia

__all__ = [
    "THIRD_PARTY_TRACK",
    "DtmfHandler",
    "MediaBackend",
    "MediaSession",
    "MediaStats",
    "PythonMediaBackend",
    "Recorder",
    "RtpPacket",
    "hold_music_pcm",
    "learns_from_signalling",
    "parse_dtmf_event",
    "parse_rtp",
]

log = logging.getLogger("frontoffice.voice.media")

RTP_VERSION = 2  # RFC 3550 §5.1
RTP_HEADER = 12
SAMPLE_RATE = 8000  # G.711 (RFC 3551 §4.5.14)
FRAME_MS = 20  # RFC 3551 §4.2: default packetization for G.711
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
# RFC 4733 §3.2: events 0-15 are the DTMF digits in this order.
DTMF_EVENTS = "0123456789*#ABCD"
DtmfHandler = Callable[[str], None]
# A packet arriving more than this many samples after the end of the previous one of its direction
# starts after a gap (silence suppression, hold, loss): the gap is written as silence so that both
# directions stay on one time line. 60 ms absorbs ordinary network jitter without inserting gaps.
RECORDING_GAP_SAMPLES = SAMPLE_RATE * 60 // 1000
# The track of a third party's audio in a call's recording (Recorder: every track but the caller's
# is on the agent side).
THIRD_PARTY_TRACK = "third"
# Samples mixed per step when a call's recording is finished (bounded memory for long calls).
MIX_CHUNK_SAMPLES = SAMPLE_RATE * 10
# Sequence number, timestamp and SSRC: the part of an RTP header a leg's outgoing stream rewrites.
_SEQ_TS_SSRC = struct.Struct("!HII")
# RTCP packet types 200-204 read as RTP payload types 72-76 (RFC 5761 §4). We do not offer rtcp-mux,
# so such packets on an RTP port are not media: they are neither relayed nor recorded.
_RTCP_AS_RTP = range(72, 77)
# Source latching (RFC 4961 symmetric RTP, for peers behind NAT): a leg may learn its peer's address
# from the first packet of the signalling source's IP only this long after the peer is set up (the
# SDP arrived) or the call is answered (bridged). A phone sends its first packet within a packet time
# or two of the 200 OK or of early media; 5 s also covers a slow phone or a lossy start. After it,
# packets from anywhere but the peer are dropped and counted, so a stranger who finds the port can
# neither take over the call's audio nor wait for a later chance.
LEARNING_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """The fields of an RTP packet (RFC 3550 §5.1) the relay needs."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse an RTP packet; ``None`` for anything that is not RTP version 2 (RTCP is left to the caller)."""
    if len(data) < RTP_HEADER or data[0] >> 6 != RTP_VERSION:
        return None
    first, second, sequence, timestamp, ssrc = struct.unpack_from("!BBHII", data)
    offset = RTP_HEADER + 4 * (first & 0x0F)  # CSRC list
    if first & 0x10:  # header extension (RFC 3550 §5.3.1)
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if first & 0x20 and end > offset:  # padding: the last octet counts it
        end -= data[-1]
    if end < offset:
        return None
    return RtpPacket(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, data[offset:end])


def build_rtp(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    """An RTP packet without CSRCs or extensions."""
    return (
        struct.pack(
            "!BBHII",
            RTP_VERSION << 6,
            (0x80 if marker else 0) | payload_type,
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


def parse_dtmf_event(payload: bytes) -> tuple[str, bool] | None:
    """``(digit, end)`` from an RFC 4733 §2.3 telephone-event payload; ``None`` for other events."""
    if len(payload) < 4:
        return None
    event, flags = payload[0], payload[1]
    if event >= len(DTMF_EVENTS):
        return None
    return DTMF_EVENTS[event], bool(flags & 0x80)


def hold_music_pcm(seconds: float = 4.0) -> bytes:
    """A gentle generated chime for music on hold: 16-bit PCM at 8 kHz (no copied audio)."""
    notes = (523.25, 659.25, 783.99, 659.25)  # C5 E5 G5 E5
    samples: list[int] = []
    per_note = int(SAMPLE_RATE * seconds / len(notes))
    for frequency in notes:
        for n in range(per_note):
            envelope = math.exp(-3.0 * n / per_note)
            samples.append(int(6000 * envelope * math.sin(2 * math.pi * frequency * n / SAMPLE_RATE)))
    return struct.pack(f"<{len(samples)}h", *samples)


def load_wav_pcm(path: Path) -> bytes:
    """16-bit mono 8 kHz PCM from a WAV file (convert prompts once with ``sox in.wav -r 8000 -c 1 -b 16``)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getframerate() != SAMPLE_RATE or wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: need 8 kHz mono 16-bit WAV")
        return wav.readframes(wav.getnframes())


@dataclass(slots=True)
class MediaStats:
    """Counters of one session, for call records and the benchmark."""

    caller_packets_in: int = 0
    agent_packets_in: int = 0
    relayed_to_agent: int = 0
    relayed_to_caller: int = 0
    music_packets: int = 0
    dtmf_digits: str = ""
    announcements: int = 0
    # Packets dropped because they came from neither leg's peer (a stranger, or a NAT that moved):
    # see :func:`learns_from_signalling`.
    foreign_packets: int = 0


class MediaSession(Protocol):
    """The media of one call: a caller leg and an agent leg on our media address.

    ``set_caller``/``set_agent`` set a leg up with its peer's negotiated media (the address and port
    its SDP names, our direction) and the IP its signalling comes from: the leg takes audio only from
    that peer (see :func:`learns_from_signalling`) and sends to it only while the direction lets us.
    ``update_caller``/``update_agent`` apply the same peer's re-INVITE (new address or port, hold).
    ``detect_answering_machine`` analyses the caller leg's audio from now on (:mod:`.answering_machine`)
    and calls ``on_result`` once with the decision, after the analysed audio is written to
    ``audio_path`` (when given); with ``on_greeting_end``, a machine's greeting is then listened to
    until it ends and ``on_greeting_end`` is called. Nothing is called once the session is closed.
    """

    address: str
    caller_port: int
    agent_port: int
    stats: MediaStats
    caller_media: NegotiatedMedia | None  # each leg's media as last set up or updated
    agent_media: NegotiatedMedia | None

    def set_caller(self, media: NegotiatedMedia, *, signalling_ip: str | None = None) -> None: ...
    def set_agent(self, media: NegotiatedMedia, *, signalling_ip: str | None = None) -> None: ...
    def update_caller(self, media: NegotiatedMedia) -> None: ...
    def update_agent(self, media: NegotiatedMedia) -> None: ...
    def play_hold_music(self) -> None: ...
    def play_prompt(self, pcm: bytes) -> None: ...
    def bridge(self) -> None: ...
    def record(self, mixed_path: Path, stereo_path: Path | None = None) -> None: ...
    def detect_answering_machine(
        self,
        parameters: AmdParameters,
        audio_path: Path | None,
        on_result: AmdHandler,
        on_greeting_end: GreetingEndHandler | None = None,
    ) -> None: ...
    async def close(self) -> MediaStats: ...


def learns_from_signalling(sdp_address: str, signalling_ip: str | None) -> bool:
    """Whether a leg may learn its peer's RTP address from the signalling source's IP.

    A peer whose SDP names a routable address and whose signalling comes from that same address is
    where its SDP says: its leg takes packets from exactly that address and port, from the first one.
    A peer behind NAT writes its private (or unroutable) address in the SDP, or one that differs from
    where its signalling comes from: its leg takes the first packet from the signalling source's IP
    (any port: the NAT picks it) within :data:`LEARNING_WINDOW_S` (RFC 4961 symmetric RTP). Without a
    known signalling source nothing is learned.
    """
    if signalling_ip is None:
        return False
    if sdp_address != signalling_ip:
        return True
    try:
        return not ipaddress.ip_address(sdp_address).is_global
    except ValueError:  # a host name: it cannot be compared with a packet's source
        return True


class MediaBackend(Protocol):
    """Creates media sessions, and joins their legs in conferences.

    ``join_conference(conference_id, session, side)`` puts the ``"caller"`` or ``"agent"`` leg of
    ``session`` in the conference of that id (created by its first party): the session stops relaying
    and playing, and the leg hears the sum of the other parties (:mod:`.conference`).
    ``leave_conference`` takes it out (the conference ends with its last party); the session then
    stays silent until told to ``bridge`` or ``play_hold_music``, either of which also leaves.
    ``record_with(session, recording)``: the agent leg of ``session`` (a third party: the conference's,
    the consulted colleague, the colleague a transfer handed the caller to) is recorded in the
    recording of ``recording`` (the customer's call) on the agent side, until ``session`` closes.
    """

    async def start(self) -> None: ...
    async def open_session(self, on_dtmf: DtmfHandler) -> MediaSession: ...
    def join_conference(self, conference_id: str, session: MediaSession, side: str) -> None: ...
    def leave_conference(self, conference_id: str, session: MediaSession, side: str) -> None: ...
    def record_with(self, session: MediaSession, recording: MediaSession) -> None: ...
    async def close(self) -> None: ...


class Recorder:
    """The customer's call on one time line, finished into a mixed mono WAV (everything, clipped) and
    optionally a stereo WAV: the caller on the left, the other side on the right - the agent, and
    everyone else the caller talks with or is handed to (a conference's third party, the consulted
    colleague, the colleague after an attended transfer: track :data:`THIRD_PARTY_TRACK`), summed.

    While the call runs, each track's decoded audio goes to its own temporary raw file at the sample
    position of its arrival time (``now`` in seconds, from the event loop's clock), with silence for
    gaps; :meth:`finish` (run in a worker thread) mixes them in chunks.
    """

    def __init__(self, mixed: Path, stereo: Path | None, started: float) -> None:
        self.mixed = mixed
        self.stereo = stereo
        self.started = started
        mixed.parent.mkdir(parents=True, exist_ok=True)
        self._raw: dict[str, IO[bytes]] = {}
        self._written: dict[str, int] = {}
        for key in ("caller", "agent"):
            self._track(key)

    def _track(self, key: str) -> IO[bytes]:
        raw = self._raw.get(key)
        if raw is None:
            prefix = f".{self.mixed.stem}-{key}-"
            raw = self._raw[key] = tempfile.TemporaryFile(dir=self.mixed.parent, prefix=prefix)  # noqa: SIM115
            self._written[key] = 0
        return raw

    def write(self, key: str, pcm: bytes, now: float) -> None:
        """Append ``pcm`` (16-bit mono) of track ``key`` that arrived at ``now``."""
        raw = self._track(key)
        samples = len(pcm) // 2
        start = round((now - self.started) * SAMPLE_RATE) - samples
        written = self._written[key]
        if start - written > RECORDING_GAP_SAMPLES:
            raw.write(bytes(2 * (start - written)))
            written = start
        raw.write(pcm)
        self._written[key] = written + samples

    def finish(self) -> None:
        """Write the WAV files and drop the temporary ones (blocking: call it in a thread)."""
        length = max(self._written.values())
        for raw in self._raw.values():
            raw.seek(0)
        caller = self._raw["caller"]
        others = [raw for key, raw in self._raw.items() if key != "caller"]
        mixed = _wav_writer(self.mixed, 1)
        stereo = _wav_writer(self.stereo, 2) if self.stereo is not None else None
        try:
            done = 0
            while done < length:
                n = min(MIX_CHUNK_SAMPLES, length - done)
                left = _samples(caller.read(2 * n), n)
                tracks = [_samples(raw.read(2 * n), n) for raw in others]
                right = (
                    tracks[0]
                    if len(tracks) == 1
                    else array(
                        "h", (max(-32768, min(32767, sum(column))) for column in zip(*tracks, strict=True))
                    )
                )
                mixed.writeframes(
                    array(
                        "h", (max(-32768, min(32767, a + b)) for a, b in zip(left, right, strict=True))
                    ).tobytes()
                )
                if stereo is not None:
                    both = array("h", bytes(4 * n))
                    both[0::2] = left
                    both[1::2] = right
                    stereo.writeframes(both.tobytes())
                done += n
        finally:
            mixed.close()
            if stereo is not None:
                stereo.close()
            for raw in self._raw.values():
                raw.close()


def _samples(data: bytes, n: int) -> array[int]:
    """``n`` 16-bit samples from ``data``, padded with silence."""
    out = array("h", data[: len(data) & ~1])
    if len(out) < n:
        out.extend(array("h", bytes(2 * (n - len(out)))))
    return out


def _wav_writer(path: Path, channels: int) -> wave.Wave_write:
    writer = wave.open(str(path), "wb")  # noqa: SIM115 - the caller closes it
    writer.setnchannels(channels)
    writer.setsampwidth(2)
    writer.setframerate(SAMPLE_RATE)
    return writer


class _Leg(asyncio.DatagramProtocol):
    """One RTP socket and the peer it exchanges audio with.

    Which packets it takes (strict source latching): only those from its peer. The peer is the
    address and port its SDP names, from the first packet; for a peer behind NAT (see
    :func:`learns_from_signalling`) also the first packet from the signalling source's IP within
    :data:`LEARNING_WINDOW_S` of the peer's set-up or of the answer, which then becomes the peer (and
    where the leg sends: RFC 4961 symmetric RTP). Either first packet ends the learning. Anything
    else is dropped and reported to ``on_foreign`` (counted and logged by the session), except the
    previous peer's packets still in flight after a transfer or a re-INVITE, dropped quietly. The hot
    path is one comparison of the packet's source with the peer's address as the event loop gives it.

    What the leg sends its peer is one RTP stream, whatever feeds it: the music, then one agent's
    phone, after a transfer another's. Each source has its own SSRC, sequence numbers and timestamps,
    and a phone's jitter buffer that sees the sequence numbers jump back takes every later packet for
    a late one and drops it (baresip does: "dropping ... Connection timed out"). So, as a B2BUA does
    (RFC 7667 §3.2.1.3, a media-switching mixer), the first source's numbers go out as they are and a
    later source's are shifted to continue them: the same SSRC, the next sequence number, the
    timestamp advanced by the time that passed, and the marker bit on its first packet so that the
    peer resynchronises (RFC 3551 §4.1).
    """

    def __init__(
        self, on_packet: Callable[[bytes], None], learning_window_s: float = LEARNING_WINDOW_S
    ) -> None:
        self.on_packet = on_packet
        self.learning_window_s = learning_window_s
        self.on_foreign: Callable[[tuple[str, int]], None] = lambda source: None
        self.transport: asyncio.DatagramTransport | None = None
        self.released = asyncio.Event()  # the socket is closed: its port may be bound again
        self.peer: tuple[str, int] | None = None  # where the peer's packets come from, and go to
        self.target: tuple[str, int] | None = None  # where we send: the peer, None when we must not
        self._accept: object = None  # the peer's address as the loop gives it: the hot path's check
        self._sdp: tuple[str, int] | None = None  # what the peer's SDP names
        self.signalling_ip: str | None = None
        self._learn_from: str | None = None  # the IP a NATed peer's address may be learned from
        self._learn_until = 0.0
        self._latched = False  # a packet came from the peer (SDP-named or learned): learning is over
        self._sending = True
        # After the peer changed (a transfer, a re-INVITE), packets still in flight from the previous one.
        self.previous: tuple[str, int] | None = None
        # The outgoing stream: its SSRC, the source now feeding it and that source's shifts.
        self._ssrc = 0
        self._source = -1  # no SSRC yet (SSRCs are 32-bit unsigned)
        self._seq_shift = 0
        self._ts_shift = 0
        self._rewrite = False  # set at the first switch of source: until then packets go out untouched
        self._mark = False  # the next packet sent starts a new source
        self._seq = 0  # the newest sequence number and timestamp sent, and when
        self._ts = 0
        self._sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.released.set()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if addr == self._accept:
            self.on_packet(data)
        else:
            self._from_elsewhere(data, addr)

    def _from_elsewhere(self, data: bytes, addr: tuple[str | object, int]) -> None:
        """A packet from other than the peer's address as last seen: the peer's first, a NATed peer's
        first (learned), or a stranger's (dropped)."""
        if self._sdp is None:
            return  # no peer yet: nothing to take, nobody to blame
        source = (str(addr[0]), int(addr[1]))
        if source == self.peer:
            self._accept, self._latched = addr, True  # the peer is where its SDP says: learn nothing
        elif source == self.previous:
            return  # in flight from before a transfer or a re-INVITE: neither learned nor counted
        elif source[0] == self._learn_from and not self._latched and time.monotonic() < self._learn_until:
            self._latched = True
            self.peer, self._accept = source, addr
            self._aim()
        else:
            self.on_foreign(source)
            return
        self.on_packet(data)

    def set_peer(self, sdp: tuple[str, int], signalling_ip: str | None, sending: bool) -> None:
        """The peer's SDP names ``sdp``; its signalling comes from ``signalling_ip``; ``sending``: we
        may send to it (RFC 3264 §6.1: not when it offered ``sendonly`` or ``inactive``).

        A new address or port (a transfer, a re-INVITE moving the media) is a new peer: latched
        afresh, with a new learning window, the old one's late packets dropped. The same again
        (early media then the answer, a session refresh) keeps what was latched or learned.
        """
        self._sending = sending
        if sdp != self._sdp or signalling_ip != self.signalling_ip:
            if self.peer is not None and self.peer != sdp:
                self.previous = self.peer
            self._sdp, self.signalling_ip = sdp, signalling_ip
            self.peer, self._accept, self._latched = sdp, None, False
            self._learn_from = signalling_ip if learns_from_signalling(sdp[0], signalling_ip) else None
            self._learn_until = time.monotonic() + self.learning_window_s
        self._aim()

    def reopen_learning(self) -> None:
        """The call is answered: a NATed peer that has sent nothing yet (many phones send only after
        the 200 OK) gets a fresh learning window."""
        if not self._latched and self._learn_from is not None:
            self._learn_until = time.monotonic() + self.learning_window_s

    def _aim(self) -> None:
        self.target = self.peer if self._sending else None

    def send(self, data: bytes) -> None:
        if self.transport is not None and self.target is not None and not self.transport.is_closing():
            self.transport.sendto(data, self.target)

    def forward(self, data: bytes, ssrc: int, sequence: int, timestamp: int) -> None:
        """Send the RTP packet ``data`` (whose header holds ``ssrc``, ``sequence`` and ``timestamp``)
        on this leg's one outgoing stream (see the class)."""
        if ssrc != self._source:
            self._switch_to(ssrc, sequence, timestamp)
        sequence = (sequence + self._seq_shift) & 0xFFFF
        timestamp = (timestamp + self._ts_shift) & 0xFFFFFFFF
        if self._rewrite:
            packet = bytearray(data)
            _SEQ_TS_SSRC.pack_into(packet, 2, sequence, timestamp, self._ssrc)
            if self._mark:
                packet[1] |= 0x80
                self._mark = False
            data = bytes(packet)
        if (sequence - self._seq) & 0xFFFF < 0x8000:  # not a reordered older packet
            self._seq, self._ts, self._sent_at = sequence, timestamp, time.monotonic()
        self.send(data)

    def _switch_to(self, ssrc: int, sequence: int, timestamp: int) -> None:
        first = self._source == -1
        self._source = ssrc
        if first:
            self._ssrc, self._seq = ssrc, (sequence - 1) & 0xFFFF
            return
        elapsed = round((time.monotonic() - self._sent_at) * SAMPLE_RATE)
        self._seq_shift = (self._seq + 1 - sequence) & 0xFFFF
        self._ts_shift = (self._ts + max(FRAME_SAMPLES, elapsed) - timestamp) & 0xFFFFFFFF
        self._rewrite = self._mark = True

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


class _Player:
    """Music and prompts for every session of a backend, on one loop timer: each 20 ms tick sends the
    next frame of every session that is playing (a timer per session and frame cost a loop handle
    each; with hundreds of callers waiting that was most of the music's CPU).

    Ticks are paced against the first tick's time, not the previous one, so scheduling jitter does not
    add up; a late tick is followed at once by the next, so a session catches up frame by frame.
    """

    def __init__(self) -> None:
        self._sessions: dict[_PythonSession, None] = {}  # insertion-ordered set
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._ticks = 0

    def add(self, session: _PythonSession) -> None:
        self._sessions[session] = None
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._started, self._ticks = loop.time(), 0
            self._timer = loop.call_at(self._started + FRAME_MS / 1000, self._tick)

    def discard(self, session: _PythonSession) -> None:
        self._sessions.pop(session, None)
        if not self._sessions and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._ticks += 1
        for session in list(self._sessions):
            session._play_frame()
        if self._sessions:
            due = self._started + (self._ticks + 1) * FRAME_MS / 1000
            self._timer = asyncio.get_running_loop().call_at(due, self._tick)
        else:
            self._timer = None


class _PythonSession:
    def __init__(
        self,
        address: str,
        caller: _Leg,
        agent: _Leg,
        music: bytes,
        on_dtmf: DtmfHandler,
        player: _Player | None = None,
    ) -> None:
        self.address = address
        self._caller = caller
        self._agent = agent
        self._music = music
        self._on_dtmf = on_dtmf
        self.stats = MediaStats()
        self.caller_port = caller.port
        self.agent_port = agent.port
        self.caller_media: NegotiatedMedia | None = None
        self.agent_media: NegotiatedMedia | None = None
        self._bridged = False
        # Music and prompts: a frame per tick of the backend's player (no task or timer per session).
        self._playing = False
        self._players = player or _Player()
        self._player: asyncio.Handle | None = None  # the start of playing, one loop turn later
        self._play_codec = ""
        self._play_type = 0
        self._play_music = b""
        self._play_encoded = b""
        self._play_position = 0
        self._play_n = 0
        self._play_rtp = (0, 0, 0)  # ssrc, sequence, timestamp
        self._prompts: list[bytes] = []
        self._dtmf_seen: set[int] = set()
        self._recorder: Recorder | None = None
        self._amd: AmdTap | None = None  # answering-machine detection on the caller leg, until it decides
        # A third party's session: the call whose recording takes this agent leg's audio, and the track.
        self._recorded_by: tuple[_PythonSession, str] | None = None
        self._foreign_logged = False
        # The conferences the legs are in (a leg in one does not relay: the mixer feeds it).
        self._conferences: dict[str, Conference] = {}
        self._caller_member: ConferenceMember | None = None
        self._agent_member: ConferenceMember | None = None
        caller.on_packet = self._from_caller
        agent.on_packet = self._from_agent
        caller.on_foreign = partial(self._foreign, "caller")
        agent.on_foreign = partial(self._foreign, "agent")

    def set_caller(self, media: NegotiatedMedia, *, signalling_ip: str | None = None) -> None:
        """The caller leg's peer: its negotiated media and where its signalling comes from (see
        :class:`_Leg` for which packets the leg then takes)."""
        self.caller_media = media
        self._caller.set_peer((media.remote_address, media.remote_port), signalling_ip, media.sending)

    def set_agent(self, media: NegotiatedMedia, *, signalling_ip: str | None = None) -> None:
        """The agent leg's peer (again after a transfer: the new phone or the external party)."""
        self.agent_media = media
        self._agent.set_peer((media.remote_address, media.remote_port), signalling_ip, media.sending)

    def update_caller(self, media: NegotiatedMedia) -> None:
        """The caller re-negotiated (re-INVITE): send to its new address or port, or not at all while
        it holds us; its signalling source stays."""
        self.set_caller(media, signalling_ip=self._caller.signalling_ip)

    def update_agent(self, media: NegotiatedMedia) -> None:
        """The agent's phone re-negotiated (re-INVITE), as :meth:`update_caller`."""
        self.set_agent(media, signalling_ip=self._agent.signalling_ip)

    def _foreign(self, leg: str, source: tuple[str, int]) -> None:
        self.stats.foreign_packets += 1
        if not self._foreign_logged:
            self._foreign_logged = True
            log.warning(
                "RTP from %s:%s to the %s leg (port %s) dropped: not the peer the call negotiated "
                "(counted in foreign_packets; logged once per call)",
                source[0], source[1], leg, self.caller_port if leg == "caller" else self.agent_port,
            )  # fmt: skip

    def play_hold_music(self) -> None:
        """Music (and prompts) to the caller leg; the relay stops both ways. The caller leg leaves its
        conference; the agent leg stays in one (an attended transfer's consultation goes on while the
        held caller hears the music)."""
        self._bridged = False
        self.leave_conference("caller")
        if not self._playing:
            self._playing = True
            self._player = asyncio.get_running_loop().call_soon(self._start_playing)

    def play_prompt(self, pcm: bytes) -> None:
        """Play ``pcm`` once (after any prompt already playing), then go back to the music."""
        self._prompts.append(pcm)
        self.play_hold_music()

    def bridge(self) -> None:
        self._bridged = True
        self._stop_playing()
        self._leave_conferences()
        self._caller.reopen_learning()
        self._agent.reopen_learning()

    def _stop_playing(self) -> None:
        if self._player is not None:
            self._player.cancel()
            self._player = None
        self._players.discard(self)
        self._playing = False

    def record(self, mixed_path: Path, stereo_path: Path | None = None) -> None:
        if self._recorder is None:
            self._recorder = Recorder(mixed_path, stereo_path, asyncio.get_running_loop().time())

    def detect_answering_machine(
        self,
        parameters: AmdParameters,
        audio_path: Path | None,
        on_result: AmdHandler,
        on_greeting_end: GreetingEndHandler | None = None,
    ) -> None:
        """Analyse the caller leg's audio from now on (see :class:`MediaSession`)."""
        if self._amd is not None:
            self._amd.cancel()
        self._amd = AmdTap(parameters, audio_path, on_result, on_greeting_end)

    def record_into(self, session: _PythonSession, track: str) -> None:
        """This session's agent leg (a third party) is recorded in ``session``'s recording as
        ``track``, on the agent side (see :class:`Recorder`)."""
        self._recorded_by = (session, track)

    def _start_playing(self) -> None:
        self._player = None
        media = self.caller_media
        if media is None:
            return  # nothing to send to: stays silent until bridged and put back on hold
        codec = self._play_codec = media.codec.name
        self._play_type = media.codec.payload_type
        self._play_music = self._play_encoded = g711.encode(codec, self._music)
        self._play_rtp = (secrets.randbits(32), secrets.randbits(16), secrets.randbits(32))
        self._play_position = self._play_n = 0
        self._play_frame()  # the first frame now, the next ones on the player's ticks
        self._players.add(self)

    def _play_frame(self) -> None:
        """Send the next 20 ms of the prompt or the music."""
        codec = self._play_codec
        music = self._play_music
        encoded, position = self._play_encoded, self._play_position
        frame = FRAME_SAMPLES
        if self._prompts and encoded is music:
            encoded, position = g711.encode(codec, self._prompts.pop(0)), 0
        chunk = encoded[position : position + frame]
        if len(chunk) < frame:
            # A prompt has ended (back to the music) or the music loops.
            encoded = music if not self._prompts else g711.encode(codec, self._prompts.pop(0))
            position = 0
            chunk = (encoded[:frame] + bytes(frame))[:frame]
        self._play_encoded, self._play_position = encoded, position + frame
        ssrc, sequence, timestamp = self._play_rtp
        n = self._play_n
        packet = build_rtp(self._play_type, sequence, timestamp, ssrc, chunk, marker=n == 0)
        self._caller.forward(packet, ssrc, sequence, timestamp)
        self.stats.music_packets += 1
        self._play_rtp = (ssrc, sequence + 1, timestamp + frame)
        self._play_n = n + 1

    def _record(self, key: str, media: NegotiatedMedia | None, packet: RtpPacket) -> None:
        recorder = self._recorder
        tap = self._recorded_by
        if key == "agent" and tap is not None:
            # A third party's session: its audio is part of the customer's call's recording.
            owner, key = tap
            recorder = owner._recorder
        if recorder is not None and media is not None and packet.payload_type == media.codec.payload_type:
            recorder.write(
                key, g711.decode(media.codec.name, packet.payload), asyncio.get_running_loop().time()
            )

    def _from_caller(self, data: bytes) -> None:
        self.stats.caller_packets_in += 1
        packet = parse_rtp(data)
        if packet is None or packet.payload_type in _RTCP_AS_RTP:
            return
        media = self.caller_media
        if (
            media is not None
            and media.telephone_event
            and packet.payload_type == media.telephone_event.payload_type
        ):
            event = parse_dtmf_event(packet.payload)
            # RFC 4733 §2.5.1.4: the end packet is sent three times; one event has one timestamp.
            if event is not None and event[1] and packet.timestamp not in self._dtmf_seen:
                self._dtmf_seen.add(packet.timestamp)
                self.stats.dtmf_digits += event[0]
                self._on_dtmf(event[0])
        self._record("caller", media, packet)
        amd = self._amd
        if (
            amd is not None
            and amd.listening
            and media is not None
            and packet.payload_type == media.codec.payload_type
        ):
            amd.packet(g711.decode(media.codec.name, packet.payload), packet.timestamp)
        if self._bridged:
            self._agent.forward(data, packet.ssrc, packet.sequence, packet.timestamp)
            self.stats.relayed_to_agent += 1
        elif (
            self._caller_member is not None
            and media is not None
            and packet.payload_type == media.codec.payload_type
            and self._caller_member.receive(
                packet.payload, data, packet.ssrc, packet.sequence, packet.timestamp
            )
        ):
            self.stats.relayed_to_agent += 1  # a conference of two: relayed to the other party

    def _from_agent(self, data: bytes) -> None:
        self.stats.agent_packets_in += 1
        packet = parse_rtp(data)
        if packet is None or packet.payload_type in _RTCP_AS_RTP:
            return
        media = self.agent_media
        self._record("agent", media, packet)
        if self._bridged:
            self._caller.forward(data, packet.ssrc, packet.sequence, packet.timestamp)
            self.stats.relayed_to_caller += 1
        elif (
            self._agent_member is not None
            and media is not None
            and packet.payload_type == media.codec.payload_type
            and self._agent_member.receive(
                packet.payload, data, packet.ssrc, packet.sequence, packet.timestamp
            )
        ):
            self.stats.relayed_to_caller += 1  # a conference of two: relayed to the other party

    def join_conference(self, conference: Conference, side: str) -> None:
        """Feed the ``side`` leg (``"caller"`` or ``"agent"``) to ``conference`` and send it the mix;
        the session stops relaying and playing. The leg must be set up (its codec is the mix's)."""
        leg, media = (
            (self._caller, self.caller_media) if side == "caller" else (self._agent, self.agent_media)
        )
        if side not in ("caller", "agent") or media is None:
            raise ValueError(f"no {side} leg set up to join a conference")
        self._bridged = False
        if side == "caller":
            self._stop_playing()  # the music goes to the caller leg: the mix replaces it
        self.leave_conference(side)
        member = ConferenceMember(leg.forward, media.codec.name, media.codec.payload_type)
        conference.join((self, side), member)
        self._conferences[side] = conference
        if side == "caller":
            self._caller_member = member
        else:
            self._agent_member = member

    def leave_conference(self, side: str) -> None:
        """Take the ``side`` leg out of its conference (nothing if it is in none)."""
        conference = self._conferences.pop(side, None)
        if conference is not None:
            conference.leave((self, side))
        if side == "caller":
            self._caller_member = None
        else:
            self._agent_member = None

    def _leave_conferences(self) -> None:
        for side in list(self._conferences):
            self.leave_conference(side)

    async def close(self) -> MediaStats:
        self._stop_playing()
        self._leave_conferences()
        if self._amd is not None:
            self._amd.cancel()
            self._amd = None
        self._recorded_by = None
        closing = []
        for leg in (self._caller, self._agent):
            if leg.transport is not None:
                leg.transport.close()
                closing.append(leg.released.wait())
        # The sockets close on the loop's next turn: once closed, the ports of a range are free again.
        await asyncio.gather(*closing)
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            await asyncio.to_thread(recorder.finish)
        return self.stats


class MediaPortsExhausted(Unavailable):
    """Every RTP port of the configured range is in use: no more calls' audio fits (503 to a caller)."""

    error_id = "media-ports-exhausted"

    def __init__(self, **details: Any) -> None:
        super().__init__("Every RTP port is in use; raise rtp_port_max or widen the range", **details)


class RtpPorts:
    """Where the RTP sockets of calls bind: any free port the system chooses (``first`` = 0), or the
    even ports of ``first``–``last`` (the ``rtp_port_min``/``rtp_port_max`` settings, for a firewall
    that lets only that range through). RTP takes an even port and leaves the odd one above it to RTCP
    (RFC 3550 §11). The range is walked in turn from where the last socket bound, skipping ports in use
    (by another program, or by a call still up), so a port freed by a call that ended is the last to be
    taken again and late packets of that call do not reach the next one."""

    def __init__(self, first: int = 0, last: int = 0) -> None:
        start = first + first % 2
        self.ports = range(start, last, 2) if first else range(0)
        if first and not (first >= 1024 and last <= 65535 and len(self.ports) >= 2):
            raise ValueError(f"RTP ports {first}-{last}: from 1024 up, room for one call (two even ports)")
        self._next = 0

    @property
    def spec(self) -> str:
        """``first-last`` (the media process's ``--rtp-ports``), or empty for any free port."""
        return f"{self.ports.start}-{self.ports.stop}" if self.ports else ""

    @classmethod
    def parse(cls, spec: str) -> RtpPorts:
        """The range ``spec`` names (``first-last``), or any free port for an empty one."""
        if not spec:
            return cls()
        first, _, last = spec.partition("-")
        return cls(int(first), int(last))

    async def bind(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], _Leg], address: str) -> _Leg:
        """A datagram endpoint of ``factory`` on ``address``, on the next free port of the range."""
        if not self.ports:
            _, leg = await loop.create_datagram_endpoint(factory, local_addr=(address, 0))
            return leg
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for _ in range(len(self.ports)):
            port = self.ports[self._next]
            self._next = (self._next + 1) % len(self.ports)
            # Bound here, not by the loop: uvloop's error for a port in use carries no errno.
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            _, leg = await loop.create_datagram_endpoint(factory, sock=sock)
            return leg
        raise MediaPortsExhausted(ports=self.spec)


class PythonMediaBackend:
    """RTP relay, music and recording in this process, on UDP ports of ``address``: any free one, or
    those of ``rtp_ports`` (:class:`RtpPorts`).

    ``learning_window_s``: how long a leg may learn a NATed peer's address (:data:`LEARNING_WINDOW_S`).
    """

    def __init__(
        self,
        address: str,
        *,
        music: bytes | None = None,
        learning_window_s: float = LEARNING_WINDOW_S,
        rtp_ports: RtpPorts | None = None,
    ) -> None:
        self.address = address
        self.music = music if music is not None else hold_music_pcm()
        self.learning_window_s = learning_window_s
        self.rtp_ports = rtp_ports if rtp_ports is not None else RtpPorts()
        self._sessions: set[_PythonSession] = set()
        self._player = _Player()
        self._conferences: dict[str, Conference] = {}

    async def start(self) -> None:
        """Nothing to start: sockets are opened per session."""

    async def open_session(self, on_dtmf: DtmfHandler) -> MediaSession:
        loop = asyncio.get_running_loop()
        legs: list[_Leg] = []
        try:
            for _ in range(2):
                legs.append(
                    await self.rtp_ports.bind(
                        loop, lambda: _Leg(lambda data: None, self.learning_window_s), self.address
                    )
                )
        except BaseException:
            for leg in legs:  # the caller's leg bound, the agent's did not: give its port back
                if leg.transport is not None:
                    leg.transport.close()
            raise
        session = _PythonSession(self.address, legs[0], legs[1], self.music, on_dtmf, self._player)
        self._sessions.add(session)
        return session

    def forget(self, session: MediaSession) -> None:
        if isinstance(session, _PythonSession):
            self._sessions.discard(session)

    def join_conference(self, conference_id: str, session: MediaSession, side: str) -> None:
        """Put the ``side`` leg of ``session`` in conference ``conference_id`` (see :class:`MediaBackend`)."""
        if not isinstance(session, _PythonSession):
            raise TypeError("not a session of this backend")
        self._conferences = {key: c for key, c in self._conferences.items() if c.members}
        session.join_conference(self._conferences.setdefault(conference_id, Conference()), side)

    def record_with(self, session: MediaSession, recording: MediaSession) -> None:
        """Record the agent leg of ``session`` (a conference's or a transfer's third party) in the
        recording of ``recording`` (the customer's call), on the agent side (see :class:`MediaBackend`)."""
        if not isinstance(session, _PythonSession) or not isinstance(recording, _PythonSession):
            raise TypeError("not a session of this backend")
        session.record_into(recording, THIRD_PARTY_TRACK)

    def leave_conference(self, conference_id: str, session: MediaSession, side: str) -> None:
        """Take the ``side`` leg of ``session`` out of conference ``conference_id``."""
        if isinstance(session, _PythonSession):
            session.leave_conference(side)
        conference = self._conferences.get(conference_id)
        if conference is not None and not conference.members:
            del self._conferences[conference_id]

    async def close(self) -> None:
        for session in list(self._sessions):
            await session.close()
        self._sessions.clear()
