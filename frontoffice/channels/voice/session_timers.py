"""Session timers of the callers' dialogs (RFC 4028 §10), sans-IO: which call's session is due for a
refresh or has expired, as the call core's timer events.

No clock and no asyncio here: the B2BUA arms a call's :class:`~.sip.SessionTimer` when its dialog
starts (and again at every refresh), asks :meth:`SessionTimers.next_timer` when to wake up, and at
that time feeds :meth:`SessionTimers.handle_timer` ``now``, whose ``(call id, event)`` pairs go to the
calls' cores (``call_state.py``):

- we are the refresher: ``SESSION_REFRESH_DUE`` at half the interval (the adapter sends UPDATE or a
  re-INVITE); if no refresh succeeded by the expiry, ``SESSION_EXPIRED``.
- the peer is the refresher: ``SESSION_EXPIRED`` when none came before the interval minus
  min(32 s, interval/3) (§10), unless :meth:`SessionTimers.refreshed` moved the deadline.

A heap of deadlines with lazy deletion: a call that is re-armed or disarmed leaves a stale entry that
is skipped when it comes up, so every operation is O(log n) in the calls carried.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from .call_state import CallEvent
from .sip import SessionTimer

__all__ = ["SessionTimers"]


@dataclass(eq=False, slots=True)
class _Armed:
    timer: SessionTimer
    generation: int
    refresh_sent: bool = False  # the refresh of this interval went out; only the expiry is left

    def deadline(self) -> float:
        timer = self.timer
        return timer.refresh_at() if timer.we_refresh and not self.refresh_sent else timer.expires_at()


class SessionTimers:
    """The session timers of every call of a node, by the caller's Call-ID (see the module)."""

    def __init__(self) -> None:
        self._armed: dict[str, _Armed] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._generations = 0

    def arm(self, call_id: str, timer: SessionTimer | None) -> None:
        """The dialog of ``call_id`` has ``timer`` from now on (its refresh succeeded, or it was
        agreed anew); ``None``: the session has no timer (any armed one is dropped)."""
        if timer is None:
            self.disarm(call_id)
            return
        self._generations += 1
        armed = self._armed[call_id] = _Armed(timer, self._generations)
        heapq.heappush(self._heap, (armed.deadline(), armed.generation, call_id))

    def disarm(self, call_id: str) -> None:
        """The call is over (or its session lost its timer)."""
        self._armed.pop(call_id, None)

    def timer(self, call_id: str) -> SessionTimer | None:
        """The timer armed for ``call_id``, if any."""
        armed = self._armed.get(call_id)
        return armed.timer if armed is not None else None

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` has something to do next, or ``None``."""
        heap = self._heap
        while heap:
            _, generation, call_id = heap[0]
            armed = self._armed.get(call_id)
            if armed is not None and armed.generation == generation:
                return heap[0][0]
            heapq.heappop(heap)  # re-armed or disarmed since
        return None

    def handle_timer(self, now: float) -> list[tuple[str, CallEvent]]:
        """The events due at ``now``: ``SESSION_REFRESH_DUE`` (once per interval) and
        ``SESSION_EXPIRED`` (the call's timer is dropped with it)."""
        due: list[tuple[str, CallEvent]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, generation, call_id = heapq.heappop(heap)
            armed = self._armed.get(call_id)
            if armed is None or armed.generation != generation:
                continue
            if armed.timer.we_refresh and not armed.refresh_sent and now < armed.timer.expires_at():
                armed.refresh_sent = True
                self._generations += 1
                armed.generation = self._generations
                heapq.heappush(heap, (armed.deadline(), armed.generation, call_id))
                due.append((call_id, CallEvent.SESSION_REFRESH_DUE))
            else:
                del self._armed[call_id]
                due.append((call_id, CallEvent.SESSION_EXPIRED))
        return due
