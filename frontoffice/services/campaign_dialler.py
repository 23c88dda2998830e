"""The live dialler: a scheduler in the server that places the calls of running campaigns.

Every ``interval_s`` (and at once when an agent becomes free or a call ends) it takes each running
campaign in turn (highest priority first) and:

1. asks the pacing how many calls to place now (:mod:`frontoffice.services.campaign_rules`: the
   Pacer of ``frontoffice.domain.dialer`` for predictive campaigns with the abandon-rate cap — over
   the cap a campaign dials as progressive until it is back under; one call per free agent of the
   campaign's queue for progressive ones; as many as the campaign's ``max_lines`` for notifications);
2. limits that by the trunk's room (its ``max_calls``, counting every call in and out) and the
   campaign's ``max_lines``;
3. claims that many due contacts (:meth:`CampaignAttempts.claim`: window open in the contact's time
   zone, not abandoned in the last 72 hours, DNC checked and logged, attempt recorded — committed
   before any INVITE);
4. hands each to the channel's :class:`DialPort` (the voice channel's ``CampaignCalls``), which
   reports back through this object's :class:`CampaignCallEvents` methods.

Free agents are the ACD's: the agents available in the campaign's queue, less the calls already
ringing or waiting for one. The ACD alone offers an answered call to an agent, after inbound
contacts of the queue (they keep priority), so no agent is offered an inbound contact and a dialled
call at once. Preview campaigns are not paced: agents take contacts from their desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict

from . import campaign_rules as rules
from .acd import AcdService
from .acd_commands import WithdrawContact
from .campaign_attempts import CampaignAttempts, DialOrder
from .campaign_schemas import CampaignMode, CampaignSettings
from .context import Actor, Clock, system_clock

__all__ = ["CampaignCallEvents", "CampaignDialler", "DialPort", "LiveCalls"]

log = logging.getLogger("frontoffice.campaigns")

# How often running campaigns are looked at when nothing wakes the dialler earlier.
DEFAULT_INTERVAL_S = 0.25


@dataclass(frozen=True, slots=True)
class LiveCalls:
    """A campaign's calls in progress on this node."""

    dialling: int = 0  # INVITE sent, not answered
    waiting: int = 0  # answered, no agent yet (or the notification playing)
    talking: int = 0  # bridged to an agent


class DialPort(Protocol):
    """What the dialler needs of the channel that places campaign calls (the voice channel)."""

    def room(self, trunk: str | None) -> int:
        """Calls the trunk can still take now (0 when at ``max_calls`` or there is no trunk)."""
        ...

    def place(self, order: DialOrder) -> None:
        """Start the call (returns at once); its steps come back through :class:`CampaignCallEvents`."""
        ...

    def live(self, campaign_id: int) -> LiveCalls: ...

    def phone_registered(self, agent_id: int) -> bool: ...

    def place_preview(self, order: DialOrder, agent_id: int) -> None:
        """Preview: ring the agent's phone, then dial the contact and bridge."""
        ...


class CampaignCallEvents(Protocol):
    """What the channel tells the dialler about a campaign call (implemented by :class:`CampaignDialler`)."""

    async def placed(self, order: DialOrder, call_id: str) -> None: ...
    async def answered(self, order: DialOrder) -> None: ...
    async def queue(self, order: DialOrder) -> None: ...
    async def withdraw(self, order: DialOrder) -> None: ...
    async def connected(self, order: DialOrder, agent_id: int) -> None: ...
    async def confirmation(self, order: DialOrder, choice: str) -> None: ...
    async def ended(self, order: DialOrder, outcome: str, sip_status: int | None) -> None: ...
    async def message_audio(self, campaign_id: int) -> bytes: ...


@dataclass
class _Pace:
    """A campaign's measurements for its pacing (this node's calls since it started)."""

    stats: rules.PacingStats = field(default_factory=rules.PacingStats)
    effective_mode: str = ""


class CampaignDialler:
    """The scheduler (see the module docstring). ``port`` is set by ``bootstrap`` when the voice
    channel runs; without one nothing is dialled."""

    def __init__(
        self,
        attempts: CampaignAttempts,
        acd: AcdService,
        *,
        clock: Clock = system_clock,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self.attempts = attempts
        self.acd = acd
        self.clock = clock
        self.interval_s = interval_s
        self.port: DialPort | None = None
        self.audio_source: Callable[[int], Awaitable[bytes]] | None = None
        self._pace: dict[int, _Pace] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.recovered = 0
        acd.add_listener(self._on_acd_outputs)

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Resolve the attempts a stop left in flight, then run the scheduler."""
        self.recovered = await self.attempts.recover()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="campaign-dialler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    def _on_acd_outputs(self, outputs: list[r.Output]) -> None:
        if any(isinstance(o, r.AgentStateChanged) and o.ready for o in outputs):
            self._wake.set()  # an agent is free: progressive and predictive campaigns may dial

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("the campaign dialler's round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    # ------------------------------------------------------------------ one round
    async def run_once(self) -> int:
        """One round over the running campaigns; returns how many calls were placed."""
        port = self.port
        if port is None:
            return 0
        placed = 0
        for campaign in await self.attempts.running():
            settings = CampaignSettings.model_validate(campaign.settings or {})
            live = port.live(campaign.id)
            in_flight = live.dialling + live.waiting
            want = self.calls_to_place(campaign.id, campaign.mode, campaign.queue_id, settings, live)
            want = min(want, settings.max_lines - in_flight - live.talking, port.room(campaign.trunk))
            if want <= 0:
                continue
            orders = await self.attempts.claim(campaign.id, want)
            for order in orders:
                self._pace_of(campaign.id).stats.dialled(self.acd.now())
                port.place(order)
            placed += len(orders)
        return placed

    def _pace_of(self, campaign_id: int) -> _Pace:
        pace = self._pace.get(campaign_id)
        if pace is None:
            pace = self._pace[campaign_id] = _Pace()
        return pace

    def calls_to_place(
        self, campaign_id: int, mode: str, queue_id: int | None, settings: CampaignSettings, live: LiveCalls
    ) -> int:
        """How many calls this campaign should place now (before the trunk's and its own limits)."""
        pace = self._pace_of(campaign_id)
        if mode == CampaignMode.NOTIFICATION.value:
            pace.effective_mode = mode
            return settings.max_lines - live.dialling - live.waiting - live.talking
        if queue_id is None or str(queue_id) not in self.acd.engine.queue_ids():
            return 0
        now = self.acd.now()
        status = self.acd.engine.queue_status(str(queue_id), now)
        decision = rules.calls_to_place(
            mode,
            pace.stats,
            now=now,
            agents_available=status.agents_available,
            agents_busy=status.agents_on_contact + status.agents_wrap_up,
            queue_waiting=status.waiting,
            dialling=live.dialling,
            answered_waiting=live.waiting,
            abandon_cap=settings.abandon_cap,
        )
        pace.effective_mode = decision.effective_mode
        return decision.calls

    def effective_mode(self, campaign_id: int, mode: str) -> str:
        pace = self._pace.get(campaign_id)
        return pace.effective_mode if pace is not None and pace.effective_mode else mode

    async def preview_dial(self, actor: Actor, contact_id: int) -> int:
        """The agent dials the contact on their desk (preview): DNC checked and the attempt recorded,
        then their phone rings and the contact is dialled. Returns the call's interaction id."""
        actor.require("interactions.write")
        port = self.port
        if port is None:
            raise Conflict("The voice channel is not running", error_id="voice-disabled")
        assert actor.user_id is not None
        if not port.phone_registered(actor.user_id):
            raise Conflict("Your phone is not registered", error_id="phone-not-registered")
        order = await self.attempts.claim_preview(contact_id, actor.user_id)
        port.place_preview(order, actor.user_id)
        return order.interaction_id

    # ------------------------------------------------------------------ the channel's reports
    async def placed(self, order: DialOrder, call_id: str) -> None:
        await self.attempts.placed(order.attempt_id, call_id)

    async def answered(self, order: DialOrder) -> None:
        self._pace_of(order.campaign_id).stats.answered(self.acd.now())
        await self.attempts.answered(order.attempt_id)

    async def queue(self, order: DialOrder) -> None:
        await self.attempts.queue(order)

    async def withdraw(self, order: DialOrder) -> None:
        """An answered call leaves the queue without an agent (abandoned, or the customer hung up)."""
        with contextlib.suppress(Exception):
            await self.acd.execute(WithdrawContact(str(order.interaction_id)))

    async def connected(self, order: DialOrder, agent_id: int) -> None:
        self._pace_of(order.campaign_id).stats.connected(self.acd.now())
        await self.attempts.connected(order.attempt_id, agent_id)

    async def confirmation(self, order: DialOrder, choice: str) -> None:
        await self.attempts.confirmation(order.attempt_id, choice)

    async def ended(self, order: DialOrder, outcome: str, sip_status: int | None) -> None:
        self._pace_of(order.campaign_id).stats.ended(self.acd.now(), outcome)
        try:
            await self.attempts.ended(order.attempt_id, outcome, sip_status=sip_status)
        finally:
            self._wake.set()

    async def message_audio(self, campaign_id: int) -> bytes:
        """The campaign's message as 8 kHz PCM (empty when it has none yet)."""
        if self.audio_source is None:
            return b""
        return await self.audio_source(campaign_id)
