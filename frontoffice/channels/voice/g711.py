"""G.711 μ-law and A-law (ITU-T G.711), table driven, for 16-bit signed little-endian PCM.

The stdlib ``audioop`` is deprecated (PEP 594, gone in 3.13); these tables are built once at import
from the reference segment algorithm, so a conversion is one table lookup per sample.
"""

from __future__ import annotations

import functools
import sys
from array import array

__all__ = ["alaw_decode", "alaw_encode", "decode", "encode", "ulaw_decode", "ulaw_encode"]

_BIAS = 0x84  # G.711 μ-law: bias added before the segment search (132)
_CLIP = 32635  # largest magnitude μ-law encodes without overflowing the top segment (8159 << 2)


def _ulaw_from_linear(sample: int) -> int:
    # The reference (Sun/CCITT g711.c) works on 14 bits: drop two bits first (flooring, so -1 stays
    # negative), then bias, clip and find the segment.
    value = sample >> 2
    sign = 0x7F if value < 0 else 0xFF
    magnitude = min(-value if value < 0 else value, _CLIP >> 2) + (_BIAS >> 2)
    segment = max(0, magnitude.bit_length() - 6)
    if segment > 7:
        return 0x7F & sign
    return ((segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)) ^ sign


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if sign else magnitude


def _alaw_from_linear(sample: int) -> int:
    # G.711 A-law works on 13-bit magnitudes; even bits are inverted on the wire (XOR 0x55).
    sign = 0x80 if sample >= 0 else 0
    magnitude = (sample if sample >= 0 else -sample - 1) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (min(code, 0x7F) | sign) ^ 0x55


def _alaw_to_linear(code: int) -> int:
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


def _signed(index: int) -> int:
    return index - 0x10000 if index & 0x8000 else index


_ULAW_ENCODE = bytes(_ulaw_from_linear(_signed(i)) for i in range(0x10000))
_ALAW_ENCODE = bytes(_alaw_from_linear(_signed(i)) for i in range(0x10000))
_ULAW_DECODE = array("h", (_ulaw_to_linear(c) for c in range(256)))
_ALAW_DECODE = array("h", (_alaw_to_linear(c) for c in range(256)))


def _samples(pcm: bytes) -> array[int]:
    samples = array("H")
    samples.frombytes(pcm[: len(pcm) & ~1])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _pcm(values: array[int]) -> bytes:
    if sys.byteorder == "big":
        values = array("h", values)
        values.byteswap()
    return values.tobytes()


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit signed LE PCM to μ-law (PCMU, RTP payload type 0)."""
    return bytes(map(_ULAW_ENCODE.__getitem__, _samples(pcm)))


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit signed LE PCM to A-law (PCMA, RTP payload type 8)."""
    return bytes(map(_ALAW_ENCODE.__getitem__, _samples(pcm)))


def ulaw_decode(data: bytes) -> bytes:
    """μ-law to 16-bit signed LE PCM."""
    return _pcm(array("h", map(_ULAW_DECODE.__getitem__, data)))


def alaw_decode(data: bytes) -> bytes:
    """A-law to 16-bit signed LE PCM."""
    return _pcm(array("h", map(_ALAW_DECODE.__getitem__, data)))


@functools.lru_cache(maxsize=128)
def encode(codec: str, pcm: bytes) -> bytes:
    """Encode for ``PCMU`` or ``PCMA`` (the SDP encoding names).

    Music on hold and prompts are the same few sounds for every call: each is encoded once per codec
    and kept (``bytes`` caches its hash, so a hit costs a dictionary look-up, not a pass over the
    audio)."""
    return alaw_encode(pcm) if codec.upper() == "PCMA" else ulaw_encode(pcm)


def decode(codec: str, data: bytes) -> bytes:
    """Decode ``PCMU`` or ``PCMA`` payload."""
    return alaw_decode(data) if codec.upper() == "PCMA" else ulaw_decode(data)
