"""What a caller the ACD turns away hears: voicemail, or the "closed" message and a hang-up.

The ACD's :class:`~frontoffice.domain.routing.FallbackAction` for a waiting call reaches the voice
service, which answers the call and hands its caller side (:class:`TurnedAwayCaller`) to one of the two
flows here; the ticket, the callback and the stored outcome are the services' part
(``services/fallback.py``).

* :func:`leave_voicemail` (``voicemail``): the "voicemail" prompt, then the caller's audio is recorded
  into the interaction's recordings (played from the customer's timeline like a call recording) until
  they hang up, press ``#`` or :data:`VOICEMAIL_MAX_S` passes; then we hang up.
* :func:`say_closed` (``message_and_disconnect``, ``ticket``, ``callback``): the "closed" prompt, then
  BYE.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .media import SAMPLE_RATE

__all__ = [
    "END_OF_MESSAGE",
    "VOICEMAIL_MAX_S",
    "TurnedAwayCaller",
    "leave_voicemail",
    "prompt_seconds",
    "say_closed",
]

#: The longest voicemail recorded: two minutes hold any real message and bound the disk one call takes.
VOICEMAIL_MAX_S = 120.0
#: The key that ends a message (the usual one on voicemail systems).
END_OF_MESSAGE = "#"
#: Kept after a prompt's own length before hanging up: the packets of its end are still on the way.
PROMPT_TAIL_S = 0.5


class TurnedAwayCaller(Protocol):
    """The caller's side of an answered call, as the flows here use it (the voice service gives it)."""

    def play(self, pcm: bytes) -> None:
        """Play a prompt (8 kHz 16-bit mono PCM) once."""

    def silence(self) -> None:
        """Stop any prompt or music: the caller hears nothing."""

    def record(self) -> None:
        """Record what the caller says into the interaction's recordings (finished at hang-up)."""

    async def digit(self, timeout_s: float) -> str | None:
        """The next key the caller presses; ``""`` when they hung up, ``None`` after ``timeout_s``."""

    def hang_up(self) -> None:
        """End the call (BYE), unless the caller did already."""


def prompt_seconds(pcm: bytes) -> float:
    """How long a prompt plays."""
    return len(pcm) / 2 / SAMPLE_RATE


async def leave_voicemail(caller: TurnedAwayCaller, prompt: bytes, *, max_s: float = VOICEMAIL_MAX_S) -> str:
    """Prompt, record until the caller hangs up, presses ``#`` or ``max_s`` passes, hang up. Returns
    how it ended: ``caller`` (hung up), ``key`` (``#``) or ``limit``."""
    loop = asyncio.get_running_loop()
    caller.record()
    if prompt:
        caller.play(prompt)
    # The prompt plays out (a key pressed meanwhile counts); then silence, not the music.
    silence_at = loop.time() + prompt_seconds(prompt)
    deadline = silence_at + max_s
    silent = False
    while True:
        now = loop.time()
        if not silent and now >= silence_at:
            caller.silence()
            silent = True
        wait = (silence_at if not silent else deadline) - now
        if silent and wait <= 0:
            caller.hang_up()
            return "limit"
        key = await caller.digit(max(0.0, wait))
        if key == "":
            return "caller"
        if key == END_OF_MESSAGE:
            caller.hang_up()
            return "key"


async def say_closed(caller: TurnedAwayCaller, prompt: bytes) -> None:
    """The "closed" prompt, then BYE."""
    if prompt:
        caller.play(prompt)
        loop = asyncio.get_running_loop()
        played_at = loop.time() + prompt_seconds(prompt) + PROMPT_TAIL_S
        while (left := played_at - loop.time()) > 0:  # keys pressed meanwhile do not cut it short
            key = await caller.digit(left)
            if key == "":
                return  # the caller hung up first
            if key is None:
                break
    caller.hang_up()
