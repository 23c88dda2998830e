"""Synthesised audio for sipp's ``play_pcap_audio``: a pcap of RTP packets (PCMU, 20 ms each) that
sipp replays with the pcap's timing to the negotiated media address (rewriting addresses and ports).

Tones stand in for speech (answering-machine detection reads only the level and cadence of the audio),
digital silence for the pauses: the audio of each test is exactly the same every run."""

from __future__ import annotations

import math
import struct
from pathlib import Path

from frontoffice.channels.voice import g711

__all__ = ["silence", "tone", "write_rtp_pcap"]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms (RFC 3551 §4.2: G.711's default packetization)
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET


def tone(ms: int, amplitude: int = 8000, frequency: float = 440.0) -> bytes:
    """A sine tone as 16-bit PCM at 8 kHz (loud enough to be voice: far over AMD's 256)."""
    n = ms * SAMPLE_RATE // 1000
    return struct.pack(
        f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(n))
    )


def silence(ms: int) -> bytes:
    return bytes(2 * (ms * SAMPLE_RATE // 1000))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def write_rtp_pcap(path: Path, pcm: bytes, *, payload_type: int = 0, ssrc: int = 0x5EED) -> Path:
    """``pcm`` (16-bit, 8 kHz) as PCMU RTP packets of 20 ms in a pcap file (Ethernet, IPv4, UDP)."""
    codec = "PCMA" if payload_type == 8 else "PCMU"
    out = bytearray(_PCAP_HEADER)
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    for n, start in enumerate(range(0, len(pcm), 2 * FRAME_SAMPLES)):
        chunk = pcm[start : start + 2 * FRAME_SAMPLES].ljust(2 * FRAME_SAMPLES, b"\0")
        rtp = struct.pack("!BBHII", 0x80, (0x80 if n == 0 else 0) | payload_type, n, n * FRAME_SAMPLES, ssrc)
        udp_payload = rtp + g711.encode(codec, chunk)
        udp = struct.pack("!HHHH", 4000, 4000, 8 + len(udp_payload), 0) + udp_payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x00\x00\x00\x00\x00\x02" + b"\x00\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
        micros = n * 20_000
        out += struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return path
