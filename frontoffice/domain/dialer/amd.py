"""Answering-machine detection (AMD): Asterisk ``AMD()``'s greeting-length and silence-cadence rules,
sans-IO.

A person picks up and says a short greeting ("Hello?"), then waits for an answer; an answering
machine plays a long greeting, or many words, or (some machines) waits in silence before it. The
detector reads the called party's first seconds of audio as 16-bit linear PCM at 8 kHz, one frame at
a time (20 ms of RTP is 160 samples), and decides::

    detector = AnsweringMachineDetector(AmdParameters())       # Asterisk's defaults
    for pcm in frames:                                         # the called party's audio, after answer
        result = detector.feed(pcm)
        if result is not None:                                 # decided (feed returns it once)
            break
    else:
        result = detector.expire()                             # no more audio: NOTSURE

    result.decision   # AmdDecision.HUMAN | MACHINE | NOTSURE
    result.cause      # AmdCause: initialsilence, longgreeting, maxwords, maxwordlength, humanafterwords,
                      # toolong, noaudio
    result.ms         # audio analysed, in milliseconds

The rules, in the order Asterisk applies them to each frame (``apps/app_amd.c``): a frame is silence
when its average absolute amplitude is below ``silence_threshold`` (Asterisk's ``ast_dsp_silence``).

* the audio analysed reaches ``total_analysis_time``: NOTSURE (``toolong``);
* silence: ``between_words_silence`` of it ends a word; ``initial_silence`` of it before any word:
  MACHINE (``initialsilence``); ``after_greeting_silence`` of it after the first word: HUMAN
  (``humanafterwords``: a short greeting, then a pause for our answer);
* voice: ``min_word_length`` of it after a silence is a new word; one utterance of
  ``maximum_word_length``: MACHINE (``maxwordlength``); more than ``maximum_number_of_words`` words:
  MACHINE (``maxwords``); ``greeting`` of voice in all after the first word: MACHINE (``longgreeting``).

The clock is the audio itself: a frame's duration is its sample count at 8 kHz, so the detector gives
the same answer for the same audio however fast it arrives. The adapter bounds the wall-clock wait
(no packets at all, a stalled stream) with :meth:`AnsweringMachineDetector.expire`, as Asterisk's
real-time check does (its ``NOAUDIODATA`` cause: ``noaudio`` here).

Pure Python, stdlib only; invalid parameters raise :class:`~.exceptions.DialerError`.
"""

from __future__ import annotations

import enum
import sys
from array import array
from dataclasses import dataclass, fields

from .exceptions import DialerError

__all__ = [
    "AMD_SAMPLE_RATE",
    "AmdCause",
    "AmdDecision",
    "AmdParameters",
    "AmdResult",
    "AnsweringMachineDetector",
    "frame_level",
]

# The detector reads narrowband telephone audio: G.711 is 8 kHz (RFC 3551 §4.5.14).
AMD_SAMPLE_RATE = 8000
_SAMPLES_PER_MS = AMD_SAMPLE_RATE // 1000


class AmdDecision(enum.StrEnum):
    """What the detector concluded (Asterisk's ``AMDSTATUS``)."""

    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"


class AmdCause(enum.StrEnum):
    """Why (Asterisk's ``AMDCAUSE`` without its figures, lower case; ``HUMAN`` there is
    ``humanafterwords`` here, ``NOAUDIODATA`` is ``noaudio``)."""

    INITIAL_SILENCE = "initialsilence"
    LONG_GREETING = "longgreeting"
    MAX_WORDS = "maxwords"
    MAX_WORD_LENGTH = "maxwordlength"
    HUMAN_AFTER_WORDS = "humanafterwords"
    TOO_LONG = "toolong"
    NO_AUDIO = "noaudio"


@dataclass(frozen=True, slots=True)
class AmdParameters:
    """Asterisk ``AMD()``'s parameters, in milliseconds (``silence_threshold``: average absolute
    amplitude of a frame, 0-32767). The defaults are Asterisk's (``app_amd.c`` and
    ``amd.conf.sample``; ``maximum_number_of_words`` is 2 since Asterisk 13.26/16.3, 3 before)."""

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    min_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 2
    silence_threshold: int = 256
    # Asterisk sets it this large "so it is not used unless specified": total_analysis_time ends first.
    maximum_word_length: int = 5000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DialerError(f"AMD {f.name} must be a whole number >= 0, got {value!r}")
        if self.total_analysis_time <= 0:
            raise DialerError("AMD total_analysis_time must be > 0")
        if self.maximum_number_of_words < 1:
            raise DialerError("AMD maximum_number_of_words must be >= 1")
        if self.silence_threshold > 32767:
            raise DialerError("AMD silence_threshold is an amplitude of 16-bit audio: at most 32767")


@dataclass(frozen=True, slots=True)
class AmdResult:
    """The detector's conclusion: decision, cause, and how much audio (ms) it took."""

    decision: AmdDecision
    cause: AmdCause
    ms: int
    words: int = 0


def frame_level(pcm: bytes) -> int:
    """The average absolute amplitude of 16-bit little-endian PCM (0 for no samples)."""
    samples = array("h", pcm[: len(pcm) & ~1])
    if sys.byteorder != "little":
        samples.byteswap()
    if not samples:
        return 0
    return sum(map(abs, samples)) // len(samples)


class AnsweringMachineDetector:
    """One call's detector (see the module docstring). Feed it the called party's audio from the
    answer on; it decides once, after which :meth:`feed` returns None and :attr:`result` holds it."""

    def __init__(self, parameters: AmdParameters | None = None) -> None:
        self.parameters = parameters or AmdParameters()
        self.result: AmdResult | None = None
        self._total_ms = 0
        self._silence_ms = 0  # the current run of silent frames (Asterisk's dspsilence)
        self._voice_ms = 0  # voice in all, never reset (as Asterisk's voiceDuration)
        self._word_ms = 0  # the current utterance (consecutiveVoiceDuration)
        self._words = 0
        self._in_word = True  # Asterisk starts in STATE_IN_WORD: the first word needs a silence first
        self._in_initial_silence = True
        self._in_greeting = False
        self._frames = 0

    @property
    def elapsed_ms(self) -> int:
        """Audio analysed so far."""
        return self._total_ms

    def feed(self, pcm: bytes) -> AmdResult | None:
        """One frame of 16-bit mono PCM at 8 kHz (any length; 20 ms is usual). Returns the result
        when this frame decides, else None (also once decided)."""
        if self.result is not None:
            return None
        ms = len(pcm) // 2 // _SAMPLES_PER_MS
        if ms <= 0:
            return None
        p = self.parameters
        self._frames += 1
        self._total_ms += ms
        if self._total_ms >= p.total_analysis_time:
            return self._decide(AmdDecision.NOTSURE, AmdCause.TOO_LONG)
        if frame_level(pcm) < p.silence_threshold:
            return self._silence(ms)
        return self._voice(ms)

    def _silence(self, ms: int) -> AmdResult | None:
        p = self.parameters
        self._silence_ms += ms
        if self._silence_ms >= p.between_words_silence:
            self._in_word = False
            self._word_ms = 0
        if self._in_initial_silence and self._silence_ms >= p.initial_silence:
            return self._decide(AmdDecision.MACHINE, AmdCause.INITIAL_SILENCE)
        if self._in_greeting and self._silence_ms >= p.after_greeting_silence:
            return self._decide(AmdDecision.HUMAN, AmdCause.HUMAN_AFTER_WORDS)
        return None

    def _voice(self, ms: int) -> AmdResult | None:
        p = self.parameters
        # As Asterisk's DSP: any voice frame ends the run of silence (the silence it measured stays
        # counted below until a word's worth of voice, which only matters to its log lines).
        self._silence_ms = 0
        self._word_ms += ms
        self._voice_ms += ms
        if self._word_ms >= p.min_word_length and not self._in_word:
            self._words += 1
            self._in_word = True
        if self._word_ms >= p.maximum_word_length:
            return self._decide(AmdDecision.MACHINE, AmdCause.MAX_WORD_LENGTH)
        if self._words > p.maximum_number_of_words:
            return self._decide(AmdDecision.MACHINE, AmdCause.MAX_WORDS)
        if self._in_greeting and self._voice_ms >= p.greeting:
            return self._decide(AmdDecision.MACHINE, AmdCause.LONG_GREETING)
        if self._word_ms >= p.min_word_length and not self._in_greeting:
            self._in_initial_silence = False
            self._in_greeting = True
        return None

    def expire(self) -> AmdResult:
        """No more audio will come in time (the adapter's wall-clock limit, or the call ended): NOTSURE
        (``noaudio`` when not one frame came). Returns the result (the earlier one if decided)."""
        if self.result is not None:
            return self.result
        cause = AmdCause.NO_AUDIO if self._frames == 0 else AmdCause.TOO_LONG
        result = self._decide(AmdDecision.NOTSURE, cause)
        assert result is not None
        return result

    def _decide(self, decision: AmdDecision, cause: AmdCause) -> AmdResult:
        self.result = AmdResult(decision, cause, self._total_ms, self._words)
        return self.result
