"""The media side of answering-machine detection: the called party's RTP, decoded, into the sans-IO
detector (:mod:`frontoffice.domain.dialer.amd`), and the analysed audio into a WAV for review.

A media session runs one :class:`AmdTap` from the answer until it decides; the tap is fed every
packet of the caller leg's codec (:meth:`AmdTap.packet`) and reports the result once, through the
callback it was given. Asked to (``on_greeting_end``), after a MACHINE decision it listens on until
the greeting and its beep are over - ``after_greeting_silence`` without a frame over the silence
threshold, whether quiet frames or none at all come - at most :data:`MAX_GREETING_WAIT_S`, and says
so: the moment to leave a message.

Gaps in the stream (silence suppression, comfort noise, loss) are fed as silence of the length the
RTP timestamps say, as Asterisk counts CNG frames as silence. A stream that stops altogether is
bounded by a wall-clock timer: the analysis time and :data:`WALL_GRACE_S`.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import Callable
from pathlib import Path

from frontoffice.domain.dialer import AmdDecision, AmdParameters, AmdResult, AnsweringMachineDetector
from frontoffice.domain.dialer.amd import frame_level

__all__ = ["MAX_GREETING_WAIT_S", "WALL_GRACE_S", "AmdHandler", "AmdTap", "GreetingEndHandler", "write_wav"]

log = logging.getLogger("frontoffice.voice.media")

AmdHandler = Callable[[AmdResult], None]
GreetingEndHandler = Callable[[], None]
# A machine's greeting that has not ended this long after the decision (endless music, a line that
# plays on) gets the message all the same: the line is not held longer for it.
MAX_GREETING_WAIT_S = 30.0
# The detector's clock is the audio; the wall-clock limit only catches a stream that stalls. The
# first packet comes a packet time or two after the answer, and the network adds jitter: half a
# second more than the analysis time keeps the audio's own decision from racing the timer.
WALL_GRACE_S = 0.5
SAMPLE_RATE = 8000
FRAME_SAMPLES = SAMPLE_RATE * 20 // 1000  # a gap is fed as 20 ms frames of silence
# A timestamp jump larger than this (samples) is not a gap but a new stream or a broken sender: 1 s.
MAX_GAP_SAMPLES = SAMPLE_RATE


def write_wav(path: Path, pcm: bytes) -> None:
    """16-bit mono 8 kHz PCM as a WAV file (blocking: run it in a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)


class AmdTap:
    """One call's detection (see the module docstring): ``on_result`` is called once, after the WAV
    (when ``audio_path`` is given) is written."""

    def __init__(
        self,
        parameters: AmdParameters,
        audio_path: Path | None,
        on_result: AmdHandler,
        on_greeting_end: GreetingEndHandler | None = None,
    ) -> None:
        self.detector = AnsweringMachineDetector(parameters)
        self.audio_path = audio_path
        self.on_result = on_result
        self.on_greeting_end = on_greeting_end
        # After a MACHINE decision, with on_greeting_end: the timer that fires after the quiet that
        # ends the greeting (re-armed by every loud frame), and the one that bounds the wait.
        self._quiet: asyncio.TimerHandle | None = None
        self.audio = bytearray()
        self._next_ts: int | None = None
        self._done = False  # decided
        self._cancelled = False
        self._over = False  # nothing more to listen for or report
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(parameters.total_analysis_time / 1000 + WALL_GRACE_S, self._expire)
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """Audio is still wanted (to decide, or for the greeting's end once decided)."""
        return not self._over

    def packet(self, pcm: bytes, timestamp: int) -> None:
        """The decoded audio of one RTP packet and its timestamp (RFC 3550 §5.1: in samples)."""
        if self._quiet is not None:
            if frame_level(pcm) >= self.detector.parameters.silence_threshold:
                self._quiet_again()
            return
        if self._done:
            return
        if self._next_ts is not None:
            gap = (timestamp - self._next_ts) & 0xFFFFFFFF
            if 0 < gap <= MAX_GAP_SAMPLES:
                for start in range(0, gap, FRAME_SAMPLES):
                    if self._feed(bytes(2 * min(FRAME_SAMPLES, gap - start))):
                        return
            if gap > 0x7FFFFFFF:
                return  # an older packet, reordered: its time has been counted already
        self._next_ts = (timestamp + len(pcm) // 2) & 0xFFFFFFFF
        self._feed(pcm)

    def _feed(self, pcm: bytes) -> bool:
        self.audio += pcm
        result = self.detector.feed(pcm)
        if result is None:
            return False
        self._finish(result)
        return True

    def _expire(self) -> None:
        if not self._done:
            self._finish(self.detector.expire())

    def _finish(self, result: AmdResult) -> None:
        self._done = True
        self._timer.cancel()
        self._task = asyncio.get_running_loop().create_task(self._report(result))

    async def _report(self, result: AmdResult) -> None:
        if self.audio_path is not None:
            try:
                await asyncio.to_thread(write_wav, self.audio_path, bytes(self.audio))
            except OSError:
                log.exception("the answering-machine detection's audio could not be written")
        if self._cancelled:
            return
        self.on_result(result)
        if result.decision is not AmdDecision.MACHINE or self.on_greeting_end is None:
            self._over = True
        else:
            # Listened for once the decision is out, so the end of the greeting always comes after it.
            self._timer = asyncio.get_running_loop().call_later(MAX_GREETING_WAIT_S, self._greeting_ended)
            self._quiet_again()

    def _quiet_again(self) -> None:
        """The greeting goes on: its end is ``after_greeting_silence`` from now, unless more comes."""
        if self._quiet is not None:
            self._quiet.cancel()
        quiet_s = self.detector.parameters.after_greeting_silence / 1000
        self._quiet = asyncio.get_running_loop().call_later(quiet_s, self._greeting_ended)

    def _greeting_ended(self) -> None:
        self._timer.cancel()
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        self._over = True
        if self.on_greeting_end is not None:
            self.on_greeting_end()

    def cancel(self) -> None:
        """The call ended first: nothing more is reported."""
        self._done = self._cancelled = self._over = True
        self._timer.cancel()
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
