"""The 72-hour rule: no redial of a number whose answered call was abandoned."""

from __future__ import annotations

import math

from .exceptions import DialerError
from .outcomes import NO_REDIAL_AFTER_ABANDON_S, DialMode

__all__ = ["AbandonGuard"]


class AbandonGuard:
    """Remembers when each number's last answered call was abandoned and refuses to redial it within
    ``no_redial_s`` (72 hours) unless an agent is reserved for the call.

    An agent is reserved in ``preview`` mode (the agent dials the number) and in ``progressive`` mode
    when the caller says so (the call is placed for one free agent who waits for it); ``predictive``
    and ``notification`` calls never have one. Numbers are compared as given: pass E.164.

    Pure and in memory: the live dialler rebuilds it after a restart with :meth:`record_abandoned`
    from the stored attempts of the last ``no_redial_s`` seconds.
    """

    __slots__ = ("_abandoned_at", "no_redial_s")

    def __init__(self, no_redial_s: float = NO_REDIAL_AFTER_ABANDON_S) -> None:
        if not (no_redial_s >= NO_REDIAL_AFTER_ABANDON_S and math.isfinite(no_redial_s)):
            raise DialerError("the no-redial period after an abandoned call is at least 72 hours")
        self.no_redial_s = no_redial_s
        self._abandoned_at: dict[str, float] = {}

    def record_abandoned(self, number: str, at: float) -> None:
        """An answered call to ``number`` was abandoned at ``at`` (seconds)."""
        previous = self._abandoned_at.get(number)
        if previous is None or at > previous:
            self._abandoned_at[number] = at

    def blocked_until(self, number: str, now: float) -> float | None:
        """Until when ``number`` may not be redialled without a reserved agent; None if it may."""
        at = self._abandoned_at.get(number)
        if at is None:
            return None
        until = at + self.no_redial_s
        return until if now < until else None

    def may_dial(self, number: str, now: float, mode: DialMode, *, agent_reserved: bool = False) -> bool:
        """May ``number`` be dialled at ``now`` in ``mode``? ``agent_reserved``: a progressive call
        placed for one agent who stays free for it (preview always has one)."""
        if self.blocked_until(number, now) is None:
            return True
        mode = DialMode(mode)
        return mode is DialMode.PREVIEW or (mode is DialMode.PROGRESSIVE and agent_reserved)

    def forget_expired(self, now: float) -> int:
        """Drop numbers whose 72 hours have passed (keeps memory bounded); returns how many."""
        expired = [n for n, at in self._abandoned_at.items() if now >= at + self.no_redial_s]
        for number in expired:
            del self._abandoned_at[number]
        return len(expired)

    def __len__(self) -> int:
        return len(self._abandoned_at)
