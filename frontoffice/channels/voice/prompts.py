"""Voice prompts in English and Russian, synthesised with espeak-ng (no recorded audio is shipped).

:func:`render_prompts` runs once at start-up (or at build time into WAV files): text → espeak-ng WAV →
8 kHz 16-bit PCM, which the media backend encodes to G.711 once per call leg.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from array import array
from pathlib import Path

from .media import SAMPLE_RATE, load_wav_pcm

__all__ = ["PROMPT_TEXTS", "decode_wav", "render_prompt", "render_prompts", "resample"]

PROMPT_TEXTS: dict[str, dict[str, str]] = {
    "menu": {
        "en": "Hello. For support, press 1. For sales, press 2.",
        "ru": "Здравствуйте. Для связи с поддержкой нажмите 1. Для связи с отделом продаж нажмите 2.",
    },
    "invalid": {
        "en": "Sorry, that is not a valid choice.",
        "ru": "Извините, такого варианта нет.",
    },
    # A caller a queue turns away (voicemail.py): the queue's fallback action.
    "voicemail": {
        "en": "We cannot take your call right now. Please leave a message, "
        "then hang up or press the hash key.",
        "ru": "Сейчас мы не можем ответить. Оставьте сообщение, затем положите трубку или нажмите решётку.",
    },
    # Notification campaigns (campaign_calls.py): said after the campaign's own message.
    "notification_keys": {
        "en": "Press 1 to confirm. Press 2 to talk to an operator.",
        "ru": "Нажмите 1, чтобы подтвердить. Нажмите 2, чтобы поговорить с оператором.",
    },
    "closed": {
        "en": "We cannot take your call right now. Please call again later. Goodbye.",
        "ru": "Сейчас мы не можем ответить. Пожалуйста, перезвоните позже. До свидания.",
    },
}
# espeak-ng synthesis of a sentence takes well under a second; more means it hangs.
SYNTHESIS_TIMEOUT_S = 20.0
# espeak-ng voices are loud; -6 dB keeps prompts at the level of the music and clear of clipping.
PROMPT_GAIN = 0.5


def resample(pcm: bytes, rate: int, target: int = SAMPLE_RATE) -> bytes:
    """16-bit mono PCM from ``rate`` to ``target`` Hz by linear interpolation, after a box filter of
    the decimation width so that speech above 4 kHz does not alias into the telephone band."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) & ~1])
    if rate == target or not samples:
        return samples.tobytes()
    width = max(1, round(rate / target))
    if width > 1:
        running, smoothed = 0, array("h")
        for i, sample in enumerate(samples):
            running += sample
            if i >= width:
                running -= samples[i - width]
            smoothed.append(int(running / min(i + 1, width)))
        samples = smoothed
    count = int(len(samples) * target / rate)
    step = rate / target
    out = array("h")
    for n in range(count):
        position = n * step
        i = int(position)
        fraction = position - i
        nxt = samples[i + 1] if i + 1 < len(samples) else samples[i]
        value = samples[i] + (nxt - samples[i]) * fraction
        out.append(max(-32768, min(32767, int(value * PROMPT_GAIN))))
    return out.tobytes()


def render_prompt(text: str, language: str, espeak: str | None = None) -> bytes:
    """Synthesise ``text`` in ``language`` (``en``/``ru``) as 8 kHz PCM."""
    binary = espeak or shutil.which("espeak-ng")
    if binary is None:
        raise FileNotFoundError("espeak-ng is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "prompt.wav"
        subprocess.run(
            [binary, "-v", language, "-w", str(wav), text],
            check=True,
            capture_output=True,
            timeout=SYNTHESIS_TIMEOUT_S,
        )
        data = wav.read_bytes()
    rate, pcm = _wav_pcm(data)
    return resample(pcm, rate)


def render_prompts(language: str) -> dict[str, bytes]:
    """Every prompt in ``language`` (English for unknown languages); empty without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return {}
    lang = language if language in ("en", "ru") else "en"
    return {name: render_prompt(texts[lang], lang) for name, texts in PROMPT_TEXTS.items()}


def decode_wav(data: bytes) -> bytes:
    """An uploaded WAV (16-bit mono, any sample rate) as 8 kHz PCM; ValueError for anything else."""
    rate, pcm = _wav_pcm(data)
    if rate <= 0:
        raise ValueError("WAV without a sample rate")
    return resample(pcm, rate)


def load_prompt(path: Path) -> bytes:
    """A prompt recorded by hand: an 8 kHz mono 16-bit WAV."""
    return load_wav_pcm(path)


def _wav_pcm(data: bytes) -> tuple[int, bytes]:
    """(sample rate, 16-bit mono PCM) of a RIFF WAV; espeak-ng writes a streaming header whose sizes
    may be 0xFFFFFFFF, so chunks are walked by hand rather than with :mod:`wave`."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    offset, rate = 12, 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if channels != 1 or bits != 16:
                raise ValueError("need 16-bit mono WAV")
        elif chunk == b"data":
            return rate, data[body : min(len(data), body + size)]
        offset = body + size + (size & 1)
    raise ValueError("WAV without data")
