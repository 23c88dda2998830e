"""Dialling modes, call outcomes and the regulators' constants the dialler is built around."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "ABANDON_AFTER_S",
    "DEFAULT_ABANDON_CAP",
    "NO_REDIAL_AFTER_ABANDON_S",
    "CallOutcome",
    "DialMode",
]

# Ofcom's statement of policy on persistent misuse (2016) and the FTC's Telemarketing Sales Rule
# (16 CFR 310.4(b)(1)(iv) and (b)(4)(iii)) both count an answered call as abandoned when no agent is on
# the line within two seconds of the greeting; the caller must then play a short recorded message.
ABANDON_AFTER_S: Final = 2.0
# Both regulators allow at most 3 % of live answered calls to be abandoned (Ofcom per campaign per
# 24 hours; the FTC's safe harbour, 16 CFR 310.4(b)(4)(i), per campaign over 30 days). A campaign may
# set a lower cap, never a higher one.
DEFAULT_ABANDON_CAP: Final = 0.03
# Ofcom's persistent-misuse policy: a number whose call was abandoned is not called again within
# 72 hours unless a live agent is guaranteed to be there when it is answered.
NO_REDIAL_AFTER_ABANDON_S: Final = 72 * 3600.0


class DialMode(StrEnum):
    """How a campaign places its calls.

    * ``preview``: the agent sees the contact's card and dials (or skips) it; the pacer places nothing.
    * ``progressive``: one call per free agent, placed when the agent becomes free.
    * ``predictive``: calls placed ahead of free agents from measured answer rate, ring, talk and
      wrap-up times, under the abandon-rate cap.
    * ``notification``: a recorded message to every answered call, paced by line capacity alone;
      agents only take the "press 2" transfers.
    """

    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"
    NOTIFICATION = "notification"


class CallOutcome(StrEnum):
    """How one dialled attempt ended.

    * ``answered``: a person answered and an agent (or, in notification mode, the message) took it;
    * ``busy``, ``no_answer`` (rang until the ring timeout), ``failed`` (the carrier refused: 404, 503,
      no route, trunk full);
    * ``voicemail``: an answering machine took the call (answering-machine detection decided so);
    * ``abandoned``: answered, but no agent came within :data:`ABANDON_AFTER_S`; the recorded message
      was played;
    * ``rejected_dnc``: never dialled, the number is on a do-not-call list.
    """

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    ABANDONED = "abandoned"
    REJECTED_DNC = "rejected_dnc"

    @property
    def live_answer(self) -> bool:
        """A person answered: the call needed an agent (answered or abandoned)."""
        return self is CallOutcome.ANSWERED or self is CallOutcome.ABANDONED

    @property
    def dialled(self) -> bool:
        """The number was actually called (everything but ``rejected_dnc``)."""
        return self is not CallOutcome.REJECTED_DNC
