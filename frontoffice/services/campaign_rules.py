"""The campaign rules the services apply, over the pure code of :mod:`frontoffice.domain.dialer`
(which the planning simulation runs too): the contact's time zone and calling windows, the retry
rule per outcome, the 72-hour rule for abandoned numbers, and the pacer.

The store keeps richer outcomes than the domain's :class:`CallOutcome`; :data:`DOMAIN_OUTCOME` maps
them: ``confirmed``/``operator``/``listened`` (notification) are ``answered``; ``hung_up`` (the called
party left before an agent came) is ``no_answer`` for retries; ``rejected`` (603) and ``unknown`` (in
flight at a restart) follow ``failed``'s rule; ``dnc`` is ``rejected_dnc``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from frontoffice.domain.dialer import (
    DEFAULT_RETRY_RULES,
    AbandonGuard,
    CallingWindow,
    CallOutcome,
    DialerError,
    DialMode,
    Pacer,
    PacingSettings,
    RetryPolicy,
    RetryRule,
    UnknownTimeZone,
    local_zone_for,
    next_window_start,
    zones_of,
)

__all__ = [
    "DOMAIN_OUTCOME",
    "RETRY_OUTCOMES",
    "abandon_hold_until",
    "call_outcome",
    "is_zone",
    "new_pacer",
    "next_attempt_at",
    "retry_policy",
    "window_opens",
    "windows_of",
    "zone_of",
]

DOMAIN_OUTCOME: Mapping[str, CallOutcome] = {
    "answered": CallOutcome.ANSWERED,
    "confirmed": CallOutcome.ANSWERED,
    "operator": CallOutcome.ANSWERED,
    "listened": CallOutcome.ANSWERED,
    "busy": CallOutcome.BUSY,
    "no_answer": CallOutcome.NO_ANSWER,
    "hung_up": CallOutcome.NO_ANSWER,
    "voicemail": CallOutcome.VOICEMAIL,
    "failed": CallOutcome.FAILED,
    "rejected": CallOutcome.FAILED,
    "unknown": CallOutcome.FAILED,
    "abandoned": CallOutcome.ABANDONED,
    "dnc": CallOutcome.REJECTED_DNC,
}
# Outcomes a campaign's retry rules may name (the domain's, but the final ones).
RETRY_OUTCOMES = tuple(
    o.value for o in CallOutcome if o not in (CallOutcome.ANSWERED, CallOutcome.REJECTED_DNC)
)
# When the windows do not open within the domain's search horizon, look again this much later.
_CLOSED_RECHECK = timedelta(days=1)


def call_outcome(outcome: str) -> CallOutcome:
    return DOMAIN_OUTCOME.get(outcome, CallOutcome.FAILED)


# ---------------------------------------------------------------------- time zones and windows
def is_zone(text: str) -> bool:
    """Whether ``text`` is a zone string (one IANA name, or several separated by spaces)."""
    try:
        for name in zones_of(text):
            ZoneInfo(name)
    except (UnknownTimeZone, ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_of(phone: str, default: str) -> str:
    """The zone string of an E.164 number (several zones when its prefix spans them: every one must
    be inside the windows, the most restrictive reading); ``default`` when none is known."""
    return local_zone_for(phone, default)


def _clock(text: str) -> time:
    if text == "24:00":
        return time(23, 59, 59, 999999)
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def windows_of(windows: Sequence[Mapping[str, Any]]) -> list[CallingWindow]:
    """The stored windows (``{days, start, end}``) as the domain's; raises :class:`DialerError`."""
    return [
        CallingWindow(
            frozenset(int(d) for d in w.get("days", range(7))), _clock(w["start"]), _clock(w["end"])
        )
        for w in windows
    ]


def window_opens(windows: Sequence[Mapping[str, Any]], zone: str, now: datetime) -> datetime | None:
    """``None`` when the contact may be called at ``now`` in its zone; else when it may next be (no
    windows: never — the contact is looked at again a day later)."""
    try:
        at = next_window_start(windows_of(windows), zone or "UTC", now)
    except (UnknownTimeZone, ZoneInfoNotFoundError):
        at = next_window_start(windows_of(windows), "UTC", now)
    if at is None:
        return now + _CLOSED_RECHECK
    if at <= now.timestamp():
        return None
    return datetime.fromtimestamp(at, UTC)


# ---------------------------------------------------------------------- retries and the 72-hour rule
def retry_policy(retry: Mapping[str, Mapping[str, Any]]) -> RetryPolicy:
    """The campaign's rules over the defaults (a campaign names only the outcomes it changes)."""
    rules = {rule.outcome: rule for rule in DEFAULT_RETRY_RULES}
    for outcome, rule in retry.items():
        domain = CallOutcome(outcome)
        rules[domain] = RetryRule(domain, float(rule["after_s"]), int(rule["max_attempts"]))
    return RetryPolicy(rules.values())


def check_retry(retry: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` (a :class:`DialerError`) for rules the domain refuses (an abandoned
    number redialled within 72 hours, no attempt at all...)."""
    retry_policy(retry)


def next_attempt_at(
    outcome: str, attempts: int, retry: Mapping[str, Mapping[str, Any]], now: datetime
) -> datetime | None:
    """When a contact is tried again after ``outcome`` (it has had ``attempts``); ``None``: never."""
    domain = call_outcome(outcome)
    if domain in (CallOutcome.ANSWERED, CallOutcome.REJECTED_DNC):
        return None
    try:
        policy = retry_policy(retry)
    except DialerError:
        policy = RetryPolicy()
    at = policy.next_attempt(domain, max(1, attempts), now.timestamp())
    return None if at is None else datetime.fromtimestamp(at, UTC)


def abandon_hold_until(
    abandoned_at: datetime | None, now: datetime, *, mode: str, reserved: bool
) -> datetime | None:
    """When a number whose call was abandoned may be dialled again (``None``: now) — 72 hours, unless
    an agent is reserved for the call (preview, or a callback an agent promised)."""
    if abandoned_at is None:
        return None
    guard = AbandonGuard()
    guard.record_abandoned("n", abandoned_at.timestamp())
    if guard.may_dial("n", now.timestamp(), DialMode(mode), agent_reserved=reserved):
        return None
    until = guard.blocked_until("n", now.timestamp())
    return None if until is None else datetime.fromtimestamp(until, UTC)


# ---------------------------------------------------------------------- pacing
def new_pacer(mode: str, *, abandon_cap: float, max_lines: int, ring_timeout_s: float) -> Pacer:
    return Pacer(
        PacingSettings(
            mode=DialMode(mode),
            abandon_cap=abandon_cap,
            max_concurrent_calls=max_lines,
            ring_timeout_s=ring_timeout_s,
        )
    )
