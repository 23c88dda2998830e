"""Answering-machine detection on synthesised audio: bursts of tone ("words") separated by silence,
fed as 20 ms frames of 8 kHz PCM, one test per decision path of Asterisk's AMD()."""

from __future__ import annotations

import math
import struct

import pytest

from frontoffice.domain.dialer import (
    AmdCause,
    AmdDecision,
    AmdParameters,
    AmdResult,
    AnsweringMachineDetector,
    DialerError,
)
from frontoffice.domain.dialer.amd import frame_level

FRAME = 160  # 20 ms at 8 kHz


def tone(ms: int, amplitude: int = 8000, frequency: float = 440.0) -> bytes:
    n = ms * 8
    return struct.pack(
        f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * frequency * i / 8000)) for i in range(n))
    )


def silence(ms: int, noise: int = 0) -> bytes:
    # A low hiss under the threshold is still silence.
    return struct.pack(f"<{ms * 8}h", *((noise if i % 2 else -noise) for i in range(ms * 8)))


def run(audio: bytes, parameters: AmdParameters | None = None) -> AmdResult:
    detector = AnsweringMachineDetector(parameters)
    for start in range(0, len(audio), 2 * FRAME):
        result = detector.feed(audio[start : start + 2 * FRAME])
        if result is not None:
            assert detector.feed(tone(20)) is None  # decided once
            return result
    return detector.expire()


def words(count: int, word_ms: int = 300, gap_ms: int = 200) -> bytes:
    return b"".join(tone(word_ms) + silence(gap_ms) for _ in range(count))


def test_a_short_hello_then_silence_is_human() -> None:
    result = run(silence(300) + tone(500) + silence(2000))
    assert result.decision is AmdDecision.HUMAN
    assert result.cause is AmdCause.HUMAN_AFTER_WORDS
    # Decided once the 800 ms after the greeting had passed: 300 + 500 + 800.
    assert result.ms == 1600


def test_three_seconds_of_continuous_speech_is_a_machine_with_a_long_greeting() -> None:
    result = run(silence(200) + tone(3000))
    assert result.decision is AmdDecision.MACHINE
    assert result.cause is AmdCause.LONG_GREETING
    assert result.ms == 200 + 1500  # the greeting limit of voice


def test_many_short_words_are_a_machine() -> None:
    # "Hi, you have reached ..." as short words with pauses: the third word is one too many.
    result = run(silence(200) + words(6, word_ms=150, gap_ms=100))
    assert result.decision is AmdDecision.MACHINE
    assert result.cause is AmdCause.MAX_WORDS
    assert result.words == 3


def test_silence_from_the_start_is_a_machine_by_initial_silence() -> None:
    result = run(silence(4000))
    assert result.decision is AmdDecision.MACHINE
    assert result.cause is AmdCause.INITIAL_SILENCE
    assert result.ms == 2500


def test_hiss_under_the_threshold_counts_as_silence() -> None:
    assert frame_level(silence(20, noise=200)) == 200
    assert run(silence(3000, noise=200)).cause is AmdCause.INITIAL_SILENCE
    assert run(silence(3000, noise=300)).cause is AmdCause.LONG_GREETING  # over it: a voice


def test_one_endless_word_is_a_machine_when_a_maximum_word_length_is_set() -> None:
    parameters = AmdParameters(maximum_word_length=1000, greeting=4000)
    result = run(tone(2000), parameters)
    assert result.decision is AmdDecision.MACHINE
    assert result.cause is AmdCause.MAX_WORD_LENGTH


def test_audio_that_never_settles_is_not_sure_after_the_analysis_time() -> None:
    # Short words (under the word length) and short pauses: neither a word count nor a greeting.
    audio = b"".join(tone(60) + silence(60) for _ in range(60))
    result = run(audio)
    assert result.decision is AmdDecision.NOTSURE
    assert result.cause is AmdCause.TOO_LONG
    assert result.ms == 5000


def test_no_audio_at_all_is_not_sure_with_cause_noaudio() -> None:
    detector = AnsweringMachineDetector()
    result = detector.expire()
    assert (result.decision, result.cause, result.ms) == (AmdDecision.NOTSURE, AmdCause.NO_AUDIO, 0)
    assert detector.expire() is result


def test_audio_that_stops_midway_is_not_sure_too_long() -> None:
    detector = AnsweringMachineDetector()
    assert detector.feed(tone(20)) is None
    assert detector.expire().cause is AmdCause.TOO_LONG


def test_two_words_and_a_pause_are_a_person_with_the_default_word_limit() -> None:
    # "Yes, hello?" then waiting: two words are allowed (maximum_number_of_words = 2).
    result = run(silence(300) + tone(300) + silence(150) + tone(300) + silence(1000))
    assert result.decision is AmdDecision.HUMAN


def test_the_parameters_are_checked() -> None:
    with pytest.raises(DialerError):
        AmdParameters(greeting=-1)
    with pytest.raises(DialerError):
        AmdParameters(total_analysis_time=0)
    with pytest.raises(DialerError):
        AmdParameters(maximum_number_of_words=0)
    with pytest.raises(DialerError):
        AmdParameters(silence_threshold=40000)
    assert AmdParameters().maximum_number_of_words == 2


def test_frames_of_any_length_are_timed_by_their_samples() -> None:
    detector = AnsweringMachineDetector()
    assert detector.feed(b"") is None
    assert detector.feed(silence(30)) is None
    assert detector.elapsed_ms == 30
