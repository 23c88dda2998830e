"""Retry rules: after which outcome a contact is called again, after how long, how many times."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .exceptions import DialerError
from .outcomes import NO_REDIAL_AFTER_ABANDON_S, CallOutcome

__all__ = ["DEFAULT_RETRY_RULES", "RetryPolicy", "RetryRule"]

# An answered call is finished (its disposition may schedule a callback); a do-not-call number must
# never be retried by a rule.
_FINAL = frozenset({CallOutcome.ANSWERED, CallOutcome.REJECTED_DNC})


@dataclass(frozen=True, slots=True)
class RetryRule:
    """After ``outcome``, call again ``after_s`` seconds later, as long as the contact has had fewer
    than ``max_attempts`` attempts in all (the one that just ended included).

    ``max_attempts`` = 1 means: never retry after this outcome. A rule for ``abandoned`` waits at
    least :data:`NO_REDIAL_AFTER_ABANDON_S` (72 h); ``answered`` and ``rejected_dnc`` take no rule.
    """

    outcome: CallOutcome
    after_s: float
    max_attempts: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", CallOutcome(self.outcome))
        if self.outcome in _FINAL:
            raise DialerError(f"a {self.outcome.value} call is final: it takes no retry rule")
        if not (self.after_s >= 0.0 and math.isfinite(self.after_s)):
            raise DialerError(f"after_s must be a finite number of seconds >= 0, got {self.after_s!r}")
        if self.outcome is CallOutcome.ABANDONED and self.after_s < NO_REDIAL_AFTER_ABANDON_S:
            raise DialerError("an abandoned call's number may not be redialled within 72 hours")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise DialerError(f"max_attempts must be an integer, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise DialerError(f"max_attempts must be >= 1, got {self.max_attempts!r}")


DEFAULT_RETRY_RULES: tuple[RetryRule, ...] = (
    # A busy line frees up soon; the usual dialler default is a few minutes (VICIdial, Five9).
    RetryRule(CallOutcome.BUSY, 10 * 60.0, 3),
    # Nobody home: try again at another time of the day.
    RetryRule(CallOutcome.NO_ANSWER, 2 * 3600.0, 3),
    RetryRule(CallOutcome.VOICEMAIL, 4 * 3600.0, 2),
    # Carrier trouble is usually short-lived.
    RetryRule(CallOutcome.FAILED, 15 * 60.0, 2),
    RetryRule(CallOutcome.ABANDONED, NO_REDIAL_AFTER_ABANDON_S, 2),
)
"""Defaults a new campaign starts with."""


class RetryPolicy:
    """A campaign's retry rules, at most one per outcome. An outcome without a rule is final."""

    __slots__ = ("_rules",)

    def __init__(self, rules: Iterable[RetryRule] = DEFAULT_RETRY_RULES) -> None:
        by_outcome: dict[CallOutcome, RetryRule] = {}
        for rule in rules:
            if rule.outcome in by_outcome:
                raise DialerError(f"two retry rules for {rule.outcome.value}")
            by_outcome[rule.outcome] = rule
        self._rules: Mapping[CallOutcome, RetryRule] = MappingProxyType(by_outcome)

    @property
    def rules(self) -> Mapping[CallOutcome, RetryRule]:
        """The rules by outcome (read-only)."""
        return self._rules

    def next_attempt(self, outcome: CallOutcome, attempts: int, now: float) -> float | None:
        """When to call the contact again after an attempt that ended with ``outcome`` at ``now``
        (seconds), the contact having had ``attempts`` attempts in all; None: do not call again.

        The time returned is the earliest allowed; the campaign's calling windows may push it later.
        """
        if attempts < 1:
            raise DialerError(f"attempts counts the attempt that just ended: >= 1, got {attempts!r}")
        rule = self._rules.get(CallOutcome(outcome))
        if rule is None or attempts >= rule.max_attempts:
            return None
        return now + rule.after_s

    def __repr__(self) -> str:
        return f"RetryPolicy({list(self._rules.values())!r})"
