"""G.711 tables, RTP parsing and RFC 4733 DTMF events (the pure parts of the media backend)."""

from __future__ import annotations

import itertools
import math
import struct

import pytest

from frontoffice.channels.voice import g711
from frontoffice.channels.voice.media import build_rtp, hold_music_pcm, parse_dtmf_event, parse_rtp


def _pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def test_ulaw_reference_values() -> None:
    # ITU-T G.711 table 2a: zero is 0xFF, full-scale positive 0x80, full-scale negative 0x00.
    assert g711.ulaw_encode(_pcm(0, 32767, -32768)) == bytes([0xFF, 0x80, 0x00])
    assert g711.ulaw_decode(bytes([0xFF, 0x7F])) == _pcm(0, 0)


def test_alaw_reference_values() -> None:
    # ITU-T G.711 table 1a: the smallest positive step is 0xD5, the smallest negative 0x55.
    assert g711.alaw_encode(_pcm(0, -1)) == bytes([0xD5, 0x55])
    assert g711.alaw_decode(bytes([0xD5])) == _pcm(8)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_round_trip_error_is_within_one_segment_step(codec: str) -> None:
    samples = list(range(-32768, 32768, 97))
    decoded = struct.unpack(f"<{len(samples)}h", g711.decode(codec, g711.encode(codec, _pcm(*samples))))
    for original, back in zip(samples, decoded, strict=True):
        # The quantisation step grows with the segment: at most 1/16 of the magnitude plus the first step.
        assert abs(original - back) <= abs(original) // 16 + 16


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_encoding_is_monotonic(codec: str) -> None:
    samples = list(range(-32768, 32768, 7))
    decoded = struct.unpack(f"<{len(samples)}h", g711.decode(codec, g711.encode(codec, _pcm(*samples))))
    assert list(decoded) == sorted(decoded)


def test_rtp_round_trip_and_rejections() -> None:
    packet = parse_rtp(build_rtp(8, 65535, 2**32 - 1, 0xDEADBEEF, b"\x55" * 160, marker=True))
    assert packet is not None
    assert (packet.payload_type, packet.marker, packet.sequence, packet.ssrc) == (8, True, 65535, 0xDEADBEEF)
    assert packet.payload == b"\x55" * 160
    assert parse_rtp(b"\x00" * 20) is None  # version 0 (STUN, garbage)
    assert parse_rtp(b"\x80\x00") is None  # too short


def test_rtp_with_csrc_extension_and_padding() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 0, 1, 2, 3) + b"CSRC"
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    packet = parse_rtp(header + extension + b"audio" + b"\x00\x00\x03")
    assert packet is not None and packet.payload == b"audio"


def test_dtmf_events() -> None:
    # RFC 4733 §2.3: event, E|R|volume, duration.
    assert parse_dtmf_event(bytes([5, 0x0A, 0, 160])) == ("5", False)
    assert parse_dtmf_event(bytes([11, 0x8A, 3, 32])) == ("#", True)
    assert parse_dtmf_event(bytes([16, 0x80, 0, 0])) is None  # not a DTMF event
    assert parse_dtmf_event(b"\x01") is None


def test_hold_music_is_8khz_pcm_within_range() -> None:
    pcm = hold_music_pcm(1.0)
    assert len(pcm) == 2 * 8000
    assert max(abs(s) for s in struct.unpack(f"<{len(pcm) // 2}h", pcm)) < 8000


def test_resample_to_telephone_rate_keeps_duration_and_tone() -> None:
    from frontoffice.channels.voice.prompts import resample

    rate = 22050
    tone = [int(10000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(rate)]
    out = resample(struct.pack(f"<{rate}h", *tone), rate)
    samples = struct.unpack(f"<{len(out) // 2}h", out)
    assert len(samples) == 8000
    crossings = sum(1 for a, b in itertools.pairwise(samples) if a < 0 <= b)
    assert 430 <= crossings <= 450  # still 440 Hz
