"""The dialler's errors."""

from __future__ import annotations

__all__ = ["DialerError", "UnknownTimeZone"]


class DialerError(ValueError):
    """Invalid dialler input: a setting, rule, window or snapshot that cannot be right."""


class UnknownTimeZone(DialerError):
    """No time zone is known for a number (and no default was given), or a zone name is not in the
    time-zone database."""
