"""Call records: one :class:`CallLeg` per SIP leg of a call (the caller's, every agent phone rung,
the legs after a transfer), with its timestamps, final SIP status and cause.

The B2BUA fills a leg as its messages pass (INVITE sent or received → setup, 180/183 → ringing,
200 → answer, BYE / CANCEL / final error → end) and, when the leg ends, hands :meth:`CallLeg.data`
to :meth:`VoiceCalls.record_leg`, which appends it to the interaction's event log as ``call_leg``.
Nothing here does I/O; times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["CAUSES", "CallLeg", "cause_of_status"]

# The causes a leg can end with, for reports and the CSV export.
CAUSES = (
    "bye_caller",  # the caller hung up a connected call
    "bye_agent",  # the agent's phone hung up
    "bye_external",  # the external party of a transfer to a number hung up
    "hangup_api",  # the agent (or a supervisor) hung up from the desktop / API
    "transferred",  # the agent leg was released by a transfer (blind: API or REFER; attended: desk)
    "bye_third_party",  # the third party of a conference or a consultation hung up
    "consultation_cancelled",  # the agent gave up an attended transfer: the consulted party is released
    "cancelled",  # the caller cancelled before an answer (their INVITE got 487)
    "caller_left",  # the agent's phone stopped ringing because the caller left
    "no_answer",  # ring timeout: the ACD's offer timed out and the phone got CANCEL
    "withdrawn",  # the ACD withdrew the offer (transfer, another agent took it)
    "busy",  # 486 / 600
    "unavailable",  # 480, or no response at all (408)
    "declined",  # 603
    "refused",  # the call was refused before or in the queue (404, 480 from us, closed queue)
    "failed",  # any other error status
    "shutdown",  # the node stopped
    "lost_node_failure",  # the voice node died with the call up; closed by the node that took over
)


def cause_of_status(status: int) -> str:
    """The cause of a leg that ended with a final error ``status`` (RFC 3261 §21)."""
    if status in (486, 600):
        return "busy"
    if status in (480, 408):
        return "unavailable"
    if status == 603:
        return "declined"
    if status == 487:
        return "cancelled"
    return "failed"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 3)


@dataclass(eq=False)
class CallLeg:
    """One SIP leg: ``leg`` is ``caller``, ``agent`` or ``external`` (a transfer to a number through a
    trunk); ``transfer`` marks a leg that was rung after the call was transferred (the caller's leg
    carried on)."""

    leg: str
    call_id: str
    setup_at: datetime
    peer: str = ""
    agent_id: int | None = None
    interaction_id: int | None = None
    transfer: bool = False
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    status: int | None = None
    cause: str = ""
    # Why we are about to end it (set before a CANCEL whose 487 comes later).
    pending_cause: str = ""
    # RTP packets the relay dropped because they came from neither leg's latched peer (a stranger
    # probing the port, or a NAT that moved: media.learns_from_signalling); set on the caller's leg
    # from the call's media session once it closed, None on legs without one.
    foreign_packets: int | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def ringing(self, at: datetime) -> None:
        if self.ringing_at is None:
            self.ringing_at = at

    def answered(self, at: datetime, status: int = 200) -> None:
        if self.answered_at is None:
            self.answered_at = at
            self.ringing_at = self.ringing_at or at
            self.status = status

    def end(self, at: datetime, cause: str, status: int | None = None) -> bool:
        """Close the leg; False when it was already closed (every path may try)."""
        if self.ended_at is not None:
            return False
        self.ended_at = at
        self.cause = self.pending_cause or cause
        if status is not None:
            self.status = status
        return True

    def data(self) -> dict[str, Any]:
        """The event payload: timestamps (ISO 8601), status, cause and durations in seconds."""
        return {
            "leg": self.leg,
            "call_id": self.call_id,
            "peer": self.peer,
            "agent_id": self.agent_id,
            "transfer": self.transfer,
            "setup_at": _iso(self.setup_at),
            "ringing_at": _iso(self.ringing_at),
            "answered_at": _iso(self.answered_at),
            "ended_at": _iso(self.ended_at),
            "status": self.status,
            "cause": self.cause,
            # Ringing time: setup until answer (or until the end when never answered).
            "ring_s": _seconds(self.setup_at, self.answered_at or self.ended_at),
            # Talk time: answer until the end; None for a leg that was never answered.
            "talk_s": _seconds(self.answered_at, self.ended_at),
            "duration_s": _seconds(self.setup_at, self.ended_at),
            "foreign_packets": self.foreign_packets,
        }
