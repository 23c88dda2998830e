"""The composition root: builds the store, services and web app from settings; starts and stops them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from frontoffice.bus import InProcessBus
from frontoffice.config import Settings
from frontoffice.services.acd import AcdService
from frontoffice.services.auth import AuthService, LoginThrottle
from frontoffice.services.contact_center import ContactCenter
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
    bus: InProcessBus
    acd: AcdService
    contact_center: ContactCenter
    started: bool = False

    async def start(self) -> None:
        """Rebuild the routing engine from the store and start its timers."""
        if not self.started:
            await self.acd.start()
            self.started = True

    async def close(self) -> None:
        if self.started:
            await self.acd.stop()
            self.started = False
        await self.engine.dispose()


def build_container(settings: Settings, *, clock: Clock = system_clock) -> Container:
    settings.ensure_secret_key()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s)
    crm = CrmService(sessions, region=settings.default_region, clock=clock)
    interactions = InteractionService(sessions, clock=clock)
    bus = InProcessBus()
    acd = AcdService(sessions, bus, clock=clock)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        crm=crm,
        auth=AuthService(
            sessions, throttle=throttle, session_max_age_s=settings.session_max_age_s, clock=clock
        ),
        interactions=interactions,
        bus=bus,
        acd=acd,
        contact_center=ContactCenter(acd, crm, interactions, clock=clock),
    )
