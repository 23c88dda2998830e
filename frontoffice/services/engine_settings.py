"""The routing engine's site-wide settings: stored in the database, edited by an administrator, applied
live to the running engine.

The settings are those of :class:`frontoffice.domain.routing.EngineConfig` (docs/routing.md, "Engine
(site-wide)"). They are one JSON document under :data:`ENGINE_SETTINGS_KEY` in ``site_settings``; a site
that never saved them runs on the engine's defaults. :meth:`EngineSettingsService.load` reads them before
the ACD starts, so a restarted engine is rebuilt with what the administrator saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from frontoffice.domain import routing as r
from frontoffice.store.tables import SiteSetting
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService
from .acd_commands import AcdCommand, CommandHandler
from .context import Actor, Clock, audit, system_clock
from .schemas import Input

__all__ = [
    "ENGINE_SETTINGS_KEY",
    "ConfigureEngine",
    "EngineSettings",
    "EngineSettingsOut",
    "EngineSettingsService",
]

#: The key of the engine's settings in ``site_settings``.
ENGINE_SETTINGS_KEY = "acd.engine"
_DEFAULTS = r.EngineConfig()


class EngineSettings(Input):
    """The site-wide routing settings; a field left out keeps the engine's default."""

    priority_weight_s: float = Field(
        default=_DEFAULTS.priority_weight_s,
        ge=0,
        # A day per priority point already makes priorities strict for any real wait.
        le=86_400,
        description="seconds of waiting one priority point is worth (0: priorities are ignored)",
    )
    missed_offers_to_not_ready: int = Field(
        default=_DEFAULTS.missed_offers_to_not_ready,
        ge=0,
        le=100,
        description="consecutive missed offers before the agent is made not ready (0: never)",
    )
    missed_reason: str = Field(
        default=_DEFAULTS.missed_reason,
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9_\-]+$",
        description="the not-ready reason code given to an agent who missed too many offers",
    )
    count_rejections_as_missed: bool = Field(
        default=_DEFAULTS.count_rejections_as_missed, description="rejections count toward the limit too"
    )
    reject_cooloff_s: float = Field(
        default=_DEFAULTS.reject_cooloff_s,
        ge=0,
        # An hour: longer would keep the only qualified agent from a contact for no reason.
        le=3600,
        description="how long an agent who rejected or missed a contact is not offered it again",
    )
    voice_blocks_other_channels: bool = Field(
        default=_DEFAULTS.voice_blocks_other_channels,
        description="a live or ringing call blocks offers on every other channel",
    )

    def engine_config(self) -> r.EngineConfig:
        """The engine's configuration these settings give."""
        return r.EngineConfig(**self.model_dump())


class EngineSettingsOut(BaseModel):
    """The settings in force, and who changed them last (``None`` before the first change)."""

    settings: EngineSettings
    updated_at: datetime | None = None
    updated_by: int | None = None


class EngineSettingsService:
    """Reads, changes and applies the engine's site-wide settings (one transaction per change)."""

    def __init__(self, acd: AcdService, *, clock: Clock = system_clock) -> None:
        self.acd = acd
        self.sessions = acd.sessions
        self.clock = clock
        acd.register(ConfigureEngine, _ConfigureEngineHandler())

    async def load(self) -> None:
        """Give the ACD the stored settings; call before it starts (its engine is built with them)."""
        async with self.sessions() as s:
            stored = await s.get(SiteSetting, ENGINE_SETTINGS_KEY)
            if stored is not None:
                self.acd.engine_config = EngineSettings.model_validate(stored.value).engine_config()

    async def get(self, actor: Actor) -> EngineSettingsOut:
        """The settings in force (``routing.read``)."""
        actor.require("routing.read")
        async with self.sessions() as s:
            stored = await s.get(SiteSetting, ENGINE_SETTINGS_KEY)
            if stored is None:
                return EngineSettingsOut(settings=EngineSettings())
            return EngineSettingsOut(
                settings=EngineSettings.model_validate(stored.value),
                updated_at=stored.updated_at,
                updated_by=stored.updated_by,
            )

    async def update(self, actor: Actor, data: EngineSettings) -> EngineSettingsOut:
        """Save new settings and apply them to the running engine in the same ACD command
        (``routing.write``): waiting contacts are re-scored, agents re-checked, offers made at once."""
        actor.require("routing.write")
        config = data.engine_config()
        now = self.clock()
        await self.acd.execute(ConfigureEngine(actor, data, now))
        # Committed: a later rebuild of the engine (a restart, a failed batch) uses these too.
        self.acd.engine_config = config
        return EngineSettingsOut(settings=data, updated_at=now, updated_by=actor.user_id)


@dataclass(frozen=True, slots=True)
class ConfigureEngine(AcdCommand[list[r.Output]]):
    """Save the engine's settings and apply them to the running engine, in one ACD transaction."""

    actor: Actor
    settings: EngineSettings
    at: datetime


class _ConfigureEngineHandler(CommandHandler[Any]):
    prepares = True

    async def prepare(self, uow: UnitOfWork, command: ConfigureEngine) -> None:
        s, data, actor = uow.session, command.settings, command.actor
        stored = await s.get(SiteSetting, ENGINE_SETTINGS_KEY)
        if stored is None:
            stored = SiteSetting(key=ENGINE_SETTINGS_KEY)
            s.add(stored)
        stored.value = data.model_dump()
        stored.updated_at = command.at
        stored.updated_by = actor.user_id
        audit(s, actor, "acd.settings", "site_settings", ENGINE_SETTINGS_KEY, command.at, **data.model_dump())

    def decide(
        self, engine: r.RoutingEngine, command: ConfigureEngine, prepared: None, now: float
    ) -> list[r.Output]:
        return engine.configure(command.settings.engine_config(), now)
