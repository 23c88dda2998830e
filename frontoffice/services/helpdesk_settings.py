"""The help desk's site-wide settings: stored in ``site_settings`` under :data:`HELPDESK_SETTINGS_KEY`,
edited by an administrator, read by the use cases in their own transactions (so every node applies a
change at once, with no restart).

- ``reopen_within_days``: a customer's reply reopens a solved ticket this long after it was solved;
  later (and always once closed) the reply starts a linked follow-up ticket;
- ``csat_enabled`` / ``csat_valid_days``: whether solving a ticket makes a satisfaction survey, and how
  long its link takes answers.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.store.tables import SiteSetting

from .context import Actor, Clock, audit, system_clock
from .schemas import Input

__all__ = [
    "HELPDESK_SETTINGS_KEY",
    "HelpdeskSettings",
    "HelpdeskSettingsOut",
    "HelpdeskSettingsService",
    "helpdesk_settings",
]

#: The key of the help desk's settings in ``site_settings``.
HELPDESK_SETTINGS_KEY = "helpdesk"
#: Zendesk and Freshdesk reopen on a reply for a few days to a week after solving.
DEFAULT_REOPEN_WITHIN_DAYS = 7
#: Two weeks: answers to a survey come within days, and an old link should not rate a new experience.
DEFAULT_CSAT_VALID_DAYS = 14


class HelpdeskSettings(Input):
    """The help desk's site-wide settings; a field left out keeps its default."""

    reopen_within_days: int = Field(
        default=DEFAULT_REOPEN_WITHIN_DAYS,
        ge=0,
        # A year: beyond that a reply is a new question whatever the site says.
        le=365,
        description="a reply reopens a solved ticket this many days after solving (0: never)",
    )
    csat_enabled: bool = Field(default=True, description="solving a ticket makes a satisfaction survey")
    csat_valid_days: int = Field(
        default=DEFAULT_CSAT_VALID_DAYS, ge=1, le=90, description="how long a survey's link takes answers"
    )


class HelpdeskSettingsOut(BaseModel):
    """The settings in force and who changed them last (``None`` before the first change)."""

    settings: HelpdeskSettings
    updated_at: datetime | None = None
    updated_by: int | None = None


async def helpdesk_settings(s: AsyncSession) -> HelpdeskSettings:
    """The settings in force, read in the caller's transaction (defaults when never saved)."""
    stored = await s.get(SiteSetting, HELPDESK_SETTINGS_KEY)
    return HelpdeskSettings() if stored is None else HelpdeskSettings.model_validate(stored.value)


class HelpdeskSettingsService:
    """Reads and changes the help desk's settings (one transaction per change)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def get(self, actor: Actor) -> HelpdeskSettingsOut:
        """The settings in force (``tickets.read``: agents see the rules they work by)."""
        actor.require("tickets.read")
        async with self.sessions() as s:
            stored = await s.get(SiteSetting, HELPDESK_SETTINGS_KEY)
            if stored is None:
                return HelpdeskSettingsOut(settings=HelpdeskSettings())
            return HelpdeskSettingsOut(
                settings=HelpdeskSettings.model_validate(stored.value),
                updated_at=stored.updated_at,
                updated_by=stored.updated_by,
            )

    async def update(self, actor: Actor, data: HelpdeskSettings) -> HelpdeskSettingsOut:
        """Save new settings (``settings.write``, administrators); the next reply or solve uses them."""
        actor.require("settings.write")
        now = self.clock()
        async with self.sessions.begin() as s:
            stored = await s.get(SiteSetting, HELPDESK_SETTINGS_KEY)
            if stored is None:
                stored = SiteSetting(key=HELPDESK_SETTINGS_KEY)
                s.add(stored)
            stored.value = data.model_dump()
            stored.updated_at = now
            stored.updated_by = actor.user_id
            values = data.model_dump()
            audit(s, actor, "helpdesk.settings", "site_settings", HELPDESK_SETTINGS_KEY, now, **values)
        return HelpdeskSettingsOut(settings=data, updated_at=now, updated_by=actor.user_id)
