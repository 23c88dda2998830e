"""The outbound dialler's pure logic: modes, outcomes, retries, calling windows, the 72-hour rule and
the pacer.

No I/O and no clock: every time is passed in, as seconds (``now``; the pacer accepts any epoch that
never goes backwards, the calling windows need POSIX seconds or an aware ``datetime``). The live
dialler (``services``/``channels``) and the planning simulation (``frontoffice.wfm.outbound``) run
this same code.

Vocabulary::

    DialMode: preview | progressive | predictive | notification
    CallOutcome: answered | busy | no_answer | voicemail | failed | abandoned | rejected_dnc
        .live_answer (answered or abandoned: a person needed an agent), .dialled (not rejected_dnc)
    ABANDON_AFTER_S = 2.0          an answered call without an agent by then is abandoned: play the
                                   campaign's recorded message and record outcome ``abandoned``
    DEFAULT_ABANDON_CAP = 0.03     of live answered calls, over the day and over a rolling window
    NO_REDIAL_AFTER_ABANDON_S      72 h

Retries::

    policy = RetryPolicy([RetryRule(CallOutcome.BUSY, after_s=600, max_attempts=3), ...])
    policy.next_attempt(outcome, attempts, now) -> float | None

``attempts`` counts the contact's attempts so far, the one that just ended included; None means the
contact is finished for this outcome (no rule, or ``attempts >= max_attempts``). ``answered`` and
``rejected_dnc`` take no rule; a rule for ``abandoned`` waits at least 72 h. Defaults:
:data:`DEFAULT_RETRY_RULES`. The calling windows may push the returned time later
(:func:`next_window_start`).

Calling windows, in the contact's local time::

    windows = [CallingWindow.parse("mon-fri 09:00-20:00"), CallingWindow(frozenset({5}), time(10), time(14))]
    zone = local_zone_for("+12125550123")            # "America/New_York"
    may_call_at(windows, zone, now_utc) -> bool
    next_window_start(windows, zone, now_utc) -> float | None   # now_utc itself when allowed now

``local_zone_for`` uses libphonenumber's prefix tables (the ``phonenumbers`` package, the one
third-party import of this package). When a number could be in several zones (a Russian mobile, a US
toll-free number) it returns them all, sorted and separated by spaces, and the window functions allow
a call only when it is inside the windows in every one of them: the most restrictive reading. A number
it cannot place gives ``default`` or raises :class:`UnknownTimeZone`. No windows: never callable.

The 72-hour rule::

    guard = AbandonGuard()
    guard.record_abandoned(number, at)
    guard.may_dial(number, now, mode, agent_reserved=False) -> bool
    guard.blocked_until(number, now) -> float | None;  guard.forget_expired(now) -> int

A number is redialled within 72 h of an abandoned answer only with an agent reserved for the call:
preview mode, or a progressive call placed for one waiting agent (``agent_reserved=True``).

Pacing::

    pacer = Pacer(PacingSettings(mode=DialMode.PREDICTIVE, abandon_cap=0.03, ...))
    n = pacer.calls_to_place(PacingSnapshot(now, agents_ready=..., agents_busy=[None, 4.5, ...],
                                            calls_in_progress=..., calls_ringing_s=[...],
                                            answered_waiting=..., calls_connected=..., trunk_free=...))
    pacer.observe_attempt(now, outcome, ring_s)     # each dialled call when it stops ringing
    pacer.observe_answered(now, abandoned)          # each live answer: did an agent take it in 2 s?
    pacer.observe_connected(now, talk_s, wrap_s)    # each call an agent finished, after wrap-up
    pacer.effective_mode; pacer.stats() -> PacingStats
    pacer.start_day(); pacer.restore_day(answered, abandoned)   # day boundary; after a restart

``agents_busy``: one entry per agent talking or in wrap-up, the seconds until it is free when known
(a wrap-up's fixed end), else None. ``calls_ringing_s`` (optional but better): how long each call
in progress has rung. Call ``calls_to_place`` whenever an agent becomes free and on a steady tick
(1 s); place exactly the number it returns (fewer when contacts run out). Tell the pacer the
campaign's ring timeout (``PacingSettings.ring_timeout_s``). What each mode returns:

* preview: 0 (agents dial themselves);
* progressive: ``agents_ready - calls_in_progress - answered_waiting`` (never below 0), so each
  call has a free agent: no call is abandoned unless an agent walks away;
* predictive: calls ahead of free agents from the measured answer rate, ring, talk and wrap-up
  times with a safety factor tuned on the abandon rate (see :mod:`.pacing`), and with little room
  under the day's cap only calls whose answers could not take the day over it; never fewer than
  progressive; while the rolling window's abandon rate is at or above the cap, or one more abandon
  would put the day's above it (so a day starts progressive until ~33 live answers at 3 %),
  ``effective_mode`` is progressive and so is the answer;
* notification: as many as the lines allow (agents only take "press 2" transfers).

Every answer is at most the room left on the lines: ``trunk_free`` and ``max_concurrent_calls -
(calls_in_progress + answered_waiting + calls_connected)``; with neither known, predictive keeps to
``max_ringing_per_agent`` calls ringing per logged-in agent.

Answering-machine detection (Asterisk ``AMD()``'s rules, see :mod:`.amd`)::

    detector = AnsweringMachineDetector(AmdParameters())
    detector.feed(pcm_20ms) -> AmdResult | None     # HUMAN / MACHINE / NOTSURE, cause, ms
    detector.expire() -> AmdResult                  # the audio stopped coming: NOTSURE

Invalid input raises :class:`DialerError` (a ``ValueError``).
"""

from .abandon import AbandonGuard
from .amd import AmdCause, AmdDecision, AmdParameters, AmdResult, AnsweringMachineDetector
from .exceptions import DialerError, UnknownTimeZone
from .outcomes import (
    ABANDON_AFTER_S,
    DEFAULT_ABANDON_CAP,
    NO_REDIAL_AFTER_ABANDON_S,
    CallOutcome,
    DialMode,
)
from .pacing import Pacer, PacingSettings, PacingSnapshot, PacingStats
from .retry import DEFAULT_RETRY_RULES, RetryPolicy, RetryRule
from .windows import (
    MAX_WINDOW_SEARCH_DAYS,
    CallingWindow,
    local_zone_for,
    may_call_at,
    next_window_start,
    zones_of,
)

__all__ = [
    "ABANDON_AFTER_S",
    "DEFAULT_ABANDON_CAP",
    "DEFAULT_RETRY_RULES",
    "MAX_WINDOW_SEARCH_DAYS",
    "NO_REDIAL_AFTER_ABANDON_S",
    "AbandonGuard",
    "AmdCause",
    "AmdDecision",
    "AmdParameters",
    "AmdResult",
    "AnsweringMachineDetector",
    "CallOutcome",
    "CallingWindow",
    "DialMode",
    "DialerError",
    "Pacer",
    "PacingSettings",
    "PacingSnapshot",
    "PacingStats",
    "RetryPolicy",
    "RetryRule",
    "UnknownTimeZone",
    "local_zone_for",
    "may_call_at",
    "next_window_start",
    "zones_of",
]
