"""The composition root: builds the store, services and web app from settings; starts and stops them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from frontoffice.config import Settings
from frontoffice.services.auth import AuthService, LoginThrottle
from frontoffice.services.context import Clock, system_clock
from frontoffice.services.crm import CrmService
from frontoffice.services.interactions import InteractionService
from frontoffice.store.database import create_engine, session_factory

__all__ = ["Container", "build_container"]


@dataclass
class Container:
    """Everything one node runs, wired once. Tests build one with their own settings and clock."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    crm: CrmService
    auth: AuthService
    interactions: InteractionService

    async def close(self) -> None:
        await self.engine.dispose()


def build_container(settings: Settings, *, clock: Clock = system_clock) -> Container:
    settings.ensure_secret_key()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        crm=CrmService(sessions, region=settings.default_region, clock=clock),
        auth=AuthService(
            sessions, throttle=throttle, session_max_age_s=settings.session_max_age_s, clock=clock
        ),
        interactions=InteractionService(sessions, clock=clock),
    )
