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

**One dialler per cluster.** Pacing is only right when one scheduler sees every call placed for the
agents it paces for: two voice nodes each pacing for the same free agents place twice the calls ahead
of them, and the abandon rate goes over the cap. So in a cluster (``lease`` given) the dialler runs
only on the voice node that holds the *dialler lease* (store/leader_lease.py, ``DIALLING``: a
PostgreSQL advisory lock on a session of its own, distinct from routing's). A voice node asks for it
once its channel serves (:meth:`DialPort.ready`); when the holder dies its session ends, and another
serving voice node takes the lease within a poll (0.2 s) and goes on with the campaigns from the store:
the claims are rows, so it starts at the next due contact, and the day's answered and abandoned calls
are restored into its pacers. Each claim checks the lease's epoch (:class:`Fence`): a node that lost
the lease claims nothing after the next one began. Calls a previous holder placed stay with it and end
there; while they are up the pacer counts them (:meth:`CampaignAttempts.calls_elsewhere`). On one node
(SQLite) there is no lease: the dialler runs whenever the voice channel serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from frontoffice.aio import cancel_and_wait
from frontoffice.domain import routing as r
from frontoffice.domain.dialer import AmdDecision, AmdResult, DialMode, Pacer, PacingSnapshot
from frontoffice.domain.exceptions import Conflict
from frontoffice.store.leader_lease import DIALLING, Fence, LeaderLease, LeaseLost, hold_when_free

from . import campaign_rules as rules
from .acd import AcdService
from .acd_commands import WithdrawContact
from .campaign_attempts import CallsElsewhere, CampaignAttempts, DialOrder
from .campaign_schemas import CampaignSettings
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

    def ready(self) -> bool:
        """Whether the channel can place calls now: a standby voice node that has not taken the SIP
        address over (docs/scaling.md, "Voice nodes") places none, so it claims no contact either."""
        ...

    def place_preview(self, order: DialOrder, agent_id: int) -> None:
        """Preview: ring the agent's phone, then dial the contact and bridge."""
        ...


class CampaignCallEvents(Protocol):
    """What the channel tells the dialler about a campaign call (implemented by :class:`CampaignDialler`)."""

    async def answered(self, order: DialOrder) -> None: ...
    async def amd_decided(self, order: DialOrder, result: AmdResult, audio: str | None) -> None: ...
    async def queue(self, order: DialOrder) -> None: ...
    async def withdraw(self, order: DialOrder) -> None: ...
    async def connected(self, order: DialOrder, agent_id: int) -> None: ...
    async def confirmation(self, order: DialOrder, choice: str) -> None: ...
    async def ended(
        self, order: DialOrder, outcome: str, sip_status: int | None, *, call_id: str | None = None
    ) -> None: ...
    async def message_audio(self, campaign_id: int) -> bytes: ...


@dataclass
class _Pace:
    """A campaign's pacer (the domain's) and the settings it was made with."""

    key: tuple[object, ...]
    pacer: Pacer
    day: float


@dataclass
class _Timing:
    """When a campaign call was placed, answered and put through (monotonic seconds of the ACD clock)."""

    campaign_id: int
    placed: float
    answered: float | None = None
    connected: float | None = None
    # Answering-machine detection on: the answer counts for the pacer once it has decided (a machine
    # is not a live answer).
    amd_pending: bool = False


class CampaignDialler:
    """The scheduler (see the module docstring). ``port`` is set by ``bootstrap`` when the voice
    channel runs; without one nothing is dialled. ``lease``: the dialler lease of a cluster node
    (of kind ``DIALLING``); None on a single node."""

    def __init__(
        self,
        attempts: CampaignAttempts,
        acd: AcdService,
        *,
        clock: Clock = system_clock,
        interval_s: float = DEFAULT_INTERVAL_S,
        lease: LeaderLease | None = None,
    ) -> None:
        self.attempts = attempts
        self.acd = acd
        self.clock = clock
        self.interval_s = interval_s
        self.lease = lease
        # The epoch of this node's dialler lease while it holds it (a cluster node).
        self.fence: Fence | None = None
        self.port: DialPort | None = None
        self.audio_source: Callable[[int], Awaitable[bytes]] | None = None
        self._pace: dict[int, _Pace] = {}
        self._timings: dict[int, _Timing] = {}  # attempt id -> its call's times
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._holding: asyncio.Task[None] | None = None
        self.recovered = 0
        acd.add_listener(self._on_acd_outputs)

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Resolve the attempts a stop left in flight, then run the scheduler (in a cluster: ask for
        the dialler lease, and run it while this node holds it)."""
        if self.lease is None:
            self.recovered = await self.attempts.recover()
            if self._task is None:
                self._task = asyncio.create_task(self._loop(), name="campaign-dialler")
            return
        self.recovered = await self.attempts.recover(own_only=True)
        if self._holding is None:
            self._holding = asyncio.create_task(
                hold_when_free(self.lease, self._dial_while_held, may_hold=self._can_dial),
                name="campaign-dialler-lease",
            )

    async def stop(self) -> None:
        """Stop the scheduler (in a cluster: give the dialler lease up, so another voice node takes
        it over at once)."""
        holding, self._holding = self._holding, None
        await cancel_and_wait(holding)  # _dial_while_held's clean-up stops the loop, gives the lease up
        await self._stop_loop()

    async def _stop_loop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    @property
    def dialling(self) -> bool:
        """Whether this node paces and places campaign calls now: its voice channel serves and, in a
        cluster, it holds the dialler lease."""
        return self._can_dial() and (self.lease is None or self.fence is not None)

    def _can_dial(self) -> bool:
        return self.port is not None and self.port.ready()

    async def _dial_while_held(self, epoch: int) -> None:
        """Run the scheduler while this node holds the dialler lease (taken with ``epoch``)."""
        assert self.lease is not None
        log.warning("this node runs the campaign dialler", extra={"epoch": epoch, "node": self.lease.node})
        self.fence = Fence(epoch, DIALLING)
        # Pacers anew from the store: the day's counts include the calls the previous holder placed.
        self._pace.clear()
        self._task = asyncio.create_task(self._loop(), name="campaign-dialler")
        try:
            await self.lease.wait_lost()
        finally:
            self.fence = None
            await self._stop_loop()
            await self.lease.release()
            log.warning("this node no longer runs the campaign dialler", extra={"epoch": epoch})

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
            await self._pause()

    async def _pause(self) -> None:
        """Until the next round: ``interval_s``, or earlier when woken. (Not ``asyncio.wait_for``:
        on Python 3.11 a cancellation that meets its timeout can be lost, and the loop never stops.)"""
        handle = asyncio.get_running_loop().call_later(self.interval_s, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            handle.cancel()

    # ------------------------------------------------------------------ one round
    async def run_once(self) -> int:
        """One round over the running campaigns; returns how many calls were placed."""
        port, fence = self.port, self.fence
        if port is None or not self.dialling:
            return 0
        placed = 0
        campaigns = await self.attempts.running()
        # In a cluster, the calls other voice nodes still have up (placed before this one dialled).
        elsewhere = await self.attempts.calls_elsewhere() if campaigns and self.lease is not None else {}
        for campaign in campaigns:
            settings = CampaignSettings.model_validate(campaign.settings or {})
            pace = await self._pace_of(campaign.id, campaign.mode, settings)
            want = pace.pacer.calls_to_place(
                self._snapshot(
                    campaign.id, campaign.queue_id, campaign.trunk, port, elsewhere.get(campaign.id)
                )
            )
            if want <= 0:
                continue
            try:
                orders = await self.attempts.claim(campaign.id, want, fence=fence)
            except LeaseLost as exc:  # another voice node dials now
                log.warning("the dialler lease was lost", extra={"error": str(exc)})
                if self.lease is not None:
                    self.lease.lose()
                return placed
            now = self.acd.now()
            for order in orders:
                self._timings[order.attempt_id] = _Timing(campaign.id, now)
                port.place(order)
            placed += len(orders)
        return placed

    def _snapshot(
        self,
        campaign_id: int,
        queue_id: int | None,
        trunk: str | None,
        port: DialPort,
        elsewhere: CallsElsewhere | None = None,
    ) -> PacingSnapshot:
        """The campaign as the pacer needs it: the ACD's free agents of its queue (less the inbound
        contacts waiting there: inbound keeps priority), its calls on this node and on others
        (``elsewhere``), the trunk's room."""
        now = self.acd.now()
        live = port.live(campaign_id)
        ready, busy = 0, 0
        if queue_id is not None and str(queue_id) in self.acd.view.queue_ids():
            status = self.acd.view.queue_status(str(queue_id), now)
            inbound_waiting = max(0, status.waiting - live.waiting)
            ready = max(0, status.agents_available - inbound_waiting)
            busy = status.agents_on_contact + status.agents_wrap_up
        ringing = [
            max(0.0, now - t.placed)
            for t in self._timings.values()
            if t.campaign_id == campaign_id and t.answered is None
        ]
        exact = len(ringing) == live.dialling
        dialling, connected = live.dialling, live.talking
        if elsewhere is not None:
            # Ringing there: as ringing here. Answered there: they hold lines (an answered call waiting
            # for an agent is in the ACD's queue already, which takes it from the free agents).
            ringing += elsewhere.ringing_s(self.clock())
            dialling += len(elsewhere.dialled_at)
            connected += elsewhere.answered
        return PacingSnapshot(
            now,
            agents_ready=ready,
            agents_busy=[None] * busy,
            calls_in_progress=0 if exact else dialling,
            calls_ringing_s=ringing if exact else (),
            answered_waiting=live.waiting,
            calls_connected=connected,
            trunk_free=port.room(trunk),
        )

    async def _pace_of(self, campaign_id: int, mode: str, settings: CampaignSettings) -> _Pace:
        """The campaign's pacer; a new one when its mode or pacing settings change (the day's answered
        and abandoned calls restored from the store, so the cap holds across restarts)."""
        key: tuple[object, ...] = (mode, settings.abandon_cap, settings.max_lines, settings.ring_timeout_s)
        day = self._day_start()
        pace = self._pace.get(campaign_id)
        if pace is not None and pace.key == key:
            if pace.day != day:
                pace.pacer.start_day()
                pace.day = day
            return pace
        pacer = rules.new_pacer(
            mode,
            abandon_cap=settings.abandon_cap,
            max_lines=settings.max_lines,
            ring_timeout_s=settings.ring_timeout_s,
        )
        answered, abandoned = await self.attempts.day_counts(campaign_id, datetime.fromtimestamp(day, UTC))
        pacer.restore_day(answered, min(abandoned, answered))
        pace = self._pace[campaign_id] = _Pace(key, pacer, day)
        return pace

    def _day_start(self) -> float:
        local = datetime.fromtimestamp(self.acd.now(), self.acd.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def effective_mode(self, campaign_id: int, mode: str) -> str:
        """The mode the campaign dials in now (predictive drops to progressive over the abandon cap)."""
        pace = self._pace.get(campaign_id)
        return pace.pacer.effective_mode.value if pace is not None else mode

    async def preview_dial(self, actor: Actor, contact_id: int) -> int:
        """The agent dials the contact on their desk (preview): DNC checked and the attempt recorded,
        then their phone rings and the contact is dialled. Returns the call's interaction id."""
        actor.require("interactions.write")
        port = self.port
        if port is None or not port.ready():
            raise Conflict("The voice channel is not running", error_id="voice-disabled")
        assert actor.user_id is not None
        if not port.phone_registered(actor.user_id):
            raise Conflict("Your phone is not registered", error_id="phone-not-registered")
        order = await self.attempts.claim_preview(contact_id, actor.user_id)
        port.place_preview(order, actor.user_id)
        return order.interaction_id

    # ------------------------------------------------------------------ the channel's reports
    async def answered(self, order: DialOrder) -> None:
        now = self.acd.now()
        timing = self._timings.get(order.attempt_id)
        pace = self._pace.get(order.campaign_id)
        if timing is not None:
            timing.answered = now
            if order.amd is not None:
                timing.amd_pending = True  # counted when the detector has decided
            elif pace is not None:
                self._observe_answer(pace.pacer, order, timing, "answered")
        await self.attempts.answered(order.attempt_id)

    def _observe_answer(self, pacer: Pacer, order: DialOrder, timing: _Timing, outcome: str) -> None:
        assert timing.answered is not None
        at = timing.answered
        # One moment for both observations: the pacer's time never goes back, and the answer's own
        # time (``at``) is before the attempt's observation (by microseconds, or by the seconds
        # answering-machine detection took), so it is counted now, as it is learnt.
        now = self.acd.now()
        pacer.observe_attempt(now, rules.call_outcome(outcome), max(0.0, at - timing.placed))
        if order.mode == DialMode.NOTIFICATION.value and outcome == "answered":
            pacer.observe_answered(now, abandoned=False)  # the message takes it

    async def amd_decided(self, order: DialOrder, result: AmdResult, audio: str | None) -> None:
        """Answering-machine detection decided (HUMAN and NOTSURE go on as a live answer, MACHINE
        ends as ``voicemail``): kept on the attempt with ``audio`` (the analysed WAV's path), and the
        answer counted for the pacer."""
        timing = self._timings.get(order.attempt_id)
        pace = self._pace.get(order.campaign_id)
        if timing is not None and timing.amd_pending:
            timing.amd_pending = False
            if pace is not None:
                machine = result.decision is AmdDecision.MACHINE
                self._observe_answer(pace.pacer, order, timing, "voicemail" if machine else "answered")
        await self.attempts.amd_decided(order.attempt_id, result, audio)

    async def queue(self, order: DialOrder) -> None:
        await self.attempts.queue(order)

    async def withdraw(self, order: DialOrder) -> None:
        """An answered call leaves the queue without an agent (abandoned, or the customer hung up)."""
        with contextlib.suppress(Exception):
            await self.acd.execute(WithdrawContact(str(order.interaction_id)))

    async def connected(self, order: DialOrder, agent_id: int) -> None:
        now = self.acd.now()
        timing = self._timings.get(order.attempt_id)
        pace = self._pace.get(order.campaign_id)
        if timing is not None and timing.connected is None:
            timing.connected = now
            if pace is not None and order.mode != DialMode.NOTIFICATION.value:
                pace.pacer.observe_answered(now, abandoned=False)
        await self.attempts.connected(order.attempt_id, agent_id)

    async def confirmation(self, order: DialOrder, choice: str) -> None:
        await self.attempts.confirmation(order.attempt_id, choice)

    async def ended(
        self, order: DialOrder, outcome: str, sip_status: int | None, *, call_id: str | None = None
    ) -> None:
        """The call is over; ``call_id``: its INVITE's Call-ID (none when no INVITE left)."""
        self._observe_end(order, outcome)
        try:
            await self.attempts.ended(order.attempt_id, outcome, sip_status=sip_status, call_id=call_id)
        finally:
            self._wake.set()

    def _observe_end(self, order: DialOrder, outcome: str) -> None:
        now = self.acd.now()
        timing = self._timings.pop(order.attempt_id, None)
        pace = self._pace.get(order.campaign_id)
        if timing is None or pace is None:
            return
        pacer = pace.pacer
        if timing.amd_pending:
            # Hung up (by either side) before the detector decided: an answer all the same.
            timing.amd_pending = False
            self._observe_answer(pacer, order, timing, "answered")
        if timing.answered is None:
            # Never answered: its ringing ended now (busy, no answer, failed).
            pacer.observe_attempt(now, rules.call_outcome(outcome), max(0.0, now - timing.placed))
        # Counted now, as learnt (the answer's own moment is before observations made since).
        elif outcome == "abandoned":
            pacer.observe_answered(now, abandoned=True)
        elif outcome == "hung_up" and order.mode != DialMode.NOTIFICATION.value:
            pacer.observe_answered(now, abandoned=False)  # they left before 2 s were up
        if timing.connected is not None:
            pacer.observe_connected(now, max(0.0, now - timing.connected), 0.0)

    async def message_audio(self, campaign_id: int) -> bytes:
        """The campaign's message as 8 kHz PCM (empty when it has none yet)."""
        if self.audio_source is None:
            return b""
        return await self.audio_source(campaign_id)
