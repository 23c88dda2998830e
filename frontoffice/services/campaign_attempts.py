"""The dial attempts of campaigns, one transaction per step.

**Claim before dialling.** :meth:`CampaignAttempts.claim` takes a campaign's due contacts and, in the
same transaction, checks each against the do-not-call lists (the check and its result are written on
the attempt), records the attempt (``dialling``) and the outbound interaction, and marks the contact
``dialling``. Only after that commit does the channel send the INVITE. So a number is never dialled
without its attempt on record, and a claimed contact is never claimed again while its attempt is open.

**After a restart** (:meth:`CampaignAttempts.recover`, run once at start-up): an attempt still
``dialling`` or ``answered`` was in flight when the node stopped; its call is gone (the carrier's side
timed out or was hung up with the process). It ends as ``unknown`` and its contact is retried by the
campaign's rule for ``unknown`` (by default the ``failed`` rule): never lost, never dialled twice at
once. An answered call that was waiting in the ACD is withdrawn; one connected to an agent is finished
(the agent wraps it up). Each attempt names the node that placed its call: in a cluster a node's
restart ends only its own attempts (the other voice nodes' calls are up), and the attempts of a voice
node that died are ended the same way by the routing leader once that node has been silent for
``voice_node_silent_after_s`` (:meth:`CampaignAttempts.close_calls_of_silent_nodes`).

**Outcomes.** ``answered`` (reached an agent), ``confirmed`` / ``operator`` (notification: 1 or 2
pressed), ``listened`` (notification heard to the end without a key), ``abandoned`` (answered, no agent
within the campaign's ``agent_wait_s``: the caller heard the recorded message), ``busy``, ``no_answer``,
``voicemail`` (answering-machine detection decided MACHINE: its decision, cause, time and audio are
on the attempt), ``rejected``, ``failed`` (a carrier error, a 404...), ``unknown`` and ``dnc`` (never
dialled). What happens next is the campaign's retry rule for the outcome
(:mod:`frontoffice.services.campaign_rules`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r
from frontoffice.domain.dialer import AmdParameters, AmdResult
from frontoffice.domain.exceptions import Conflict, NotFound
from frontoffice.domain.model import Channel, Direction, InteractionEventType, InteractionState
from frontoffice.store.leader_lease import Fence
from frontoffice.store.tables import Campaign, CampaignContact, DialAttempt, Interaction
from frontoffice.store.unit_of_work import UnitOfWork

from . import campaign_rules as rules
from .acd import AcdService
from .acd_commands import AcdCommand, CommandHandler, FinishContact, WithdrawContact
from .campaign_schemas import (
    AmdMachineAction,
    CampaignMode,
    CampaignSettings,
    CampaignState,
    ContactState,
)
from .cluster_status import last_heard
from .context import Clock, system_clock
from .dnc import DNC_CLEAR, dnc_check
from .interactions import InteractionService, log_event

__all__ = [
    "REACHED",
    "AttemptState",
    "CallsElsewhere",
    "CampaignAttempts",
    "DialOrder",
    "QueueDialledCall",
    "outcome_of_status",
]

log = logging.getLogger("frontoffice.campaigns")

# Outcomes after which the contact is done (the customer was reached).
REACHED = frozenset({"answered", "confirmed", "operator", "listened"})
# Contacts looked at per claimed one (some wait for their window or the 72-hour rule).
CANDIDATES_PER_CLAIM = 3
# Answered campaign calls queue below inbound contacts of the same queue: inbound keeps priority.
DIALLED_PRIORITY = -1000


class AttemptState:
    DIALLING = "dialling"
    ANSWERED = "answered"
    ENDED = "ended"


def outcome_of_status(status: int | None, reason: str = "") -> str:
    """The outcome of a call that was never answered, from the carrier's final status (RFC 3261
    §21): busy (486, 600), no answer (480, 408, our CANCEL 487 after the ring time), rejected (603),
    failed (anything else: 404 and 484 for a number that does not exist, 503 for a carrier in trouble)."""
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):
        return "no_answer"
    if status == 603:
        return "rejected"
    return "failed"


@dataclass(frozen=True, slots=True)
class DialOrder:
    """One call the channel is to place, claimed and recorded already."""

    attempt_id: int
    campaign_id: int
    contact_id: int
    interaction_id: int
    phone: str
    mode: str
    trunk: str | None
    caller_id: str
    queue_id: int | None
    priority: int
    customer_id: int | None
    callback_agent_id: int | None
    ring_timeout_s: float
    agent_wait_s: float
    # Answering-machine detection after the answer (None: off) and what a detected machine gets.
    amd: AmdParameters | None = None
    amd_machine_action: AmdMachineAction = AmdMachineAction.HANGUP


class CampaignAttempts:
    """Claims, outcomes and recovery of dial attempts (see the module docstring)."""

    def __init__(
        self,
        acd: AcdService,
        interactions: InteractionService,
        *,
        clock: Clock = system_clock,
        default_zone: str = "UTC",
        node: str = "",
    ) -> None:
        self.acd = acd
        self.sessions = acd.sessions
        self.interactions = interactions
        self.clock = clock
        self.default_zone = default_zone
        # This node's name, written on the attempts it claims (their calls are placed here).
        self.node = node
        acd.register(QueueDialledCall, _QueueDialledCallHandler(acd))

    # ------------------------------------------------------------------ claim
    async def claim(
        self,
        campaign_id: int,
        limit: int,
        *,
        agent_id: int | None = None,
        contact_id: int | None = None,
        fence: Fence | None = None,
    ) -> list[DialOrder]:
        """Claim up to ``limit`` due contacts of a running campaign (see the module docstring).
        ``agent_id``: a preview dial of the contact that agent holds (``limit`` is then 1). ``fence``:
        the dialler lease's token in a cluster; raises :class:`LeaseLost` (nothing claimed) when
        another voice node has taken the lease since."""
        if limit <= 0:
            return []
        now = self.clock()
        orders: list[DialOrder] = []
        blocked: str | None = None
        async with self.sessions.begin() as s:
            if fence is not None:
                await fence.check(s)
            campaign = await s.get(Campaign, campaign_id)
            if campaign is None or campaign.state != CampaignState.RUNNING.value:
                return []
            if campaign.starts_at is not None and now < campaign.starts_at:
                return []
            if campaign.ends_at is not None and now >= campaign.ends_at:
                campaign.state = CampaignState.FINISHED.value
                campaign.state_changed_at = now
                return []
            settings = CampaignSettings.model_validate(campaign.settings or {})
            windows = (campaign.windows or {}).get("windows", [])
            if agent_id is not None:
                stmt = select(CampaignContact).where(
                    CampaignContact.campaign_id == campaign_id,
                    CampaignContact.state == ContactState.PREVIEW.value,
                    CampaignContact.agent_id == agent_id,
                    CampaignContact.id == contact_id,
                )
            else:
                stmt = (
                    select(CampaignContact)
                    .where(
                        CampaignContact.campaign_id == campaign_id,
                        CampaignContact.state == ContactState.PENDING.value,
                        (CampaignContact.next_attempt_at.is_(None))
                        | (CampaignContact.next_attempt_at <= now),
                    )
                    .order_by(
                        CampaignContact.priority.desc(), CampaignContact.next_attempt_at, CampaignContact.id
                    )
                    .limit(limit * CANDIDATES_PER_CLAIM)
                    .with_for_update(skip_locked=True)
                )
            candidates = list(await s.scalars(stmt))
            for contact in candidates:
                if len(orders) >= limit:
                    break
                zone = contact.time_zone or self.default_zone
                opens = rules.window_opens(windows, zone, now)
                if opens is not None and agent_id is None:
                    contact.next_attempt_at = opens
                    continue
                held = rules.abandon_hold_until(
                    contact.abandoned_at,
                    now,
                    mode=campaign.mode,
                    reserved=contact.callback_agent_id is not None or agent_id is not None,
                )
                if held is not None:
                    contact.next_attempt_at = held
                    if agent_id is not None:
                        raise Conflict(
                            "This number's call was abandoned less than 72 hours ago",
                            error_id="abandoned-recently",
                            until=held.isoformat(),
                        )
                    continue
                result = await dnc_check(s, contact.phone, campaign.project_id)
                attempt = DialAttempt(
                    campaign_id=campaign_id,
                    contact_id=contact.id,
                    attempt=contact.attempts + 1,
                    phone=contact.phone,
                    mode=campaign.mode,
                    trunk=campaign.trunk,
                    dnc_result=result,
                    claimed_at=now,
                    agent_id=agent_id,
                    state=AttemptState.DIALLING,
                    node=self.node or None,
                )
                contact.updated_at = now
                if result != DNC_CLEAR:
                    # Logged and never dialled.
                    attempt.state = AttemptState.ENDED
                    attempt.outcome = "dnc"
                    attempt.ended_at = now
                    contact.state = ContactState.DNC.value
                    contact.last_outcome = "dnc"
                    contact.agent_id = None
                    s.add(attempt)
                    if agent_id is not None:
                        blocked = result  # the check is committed with the attempt, then refused
                    continue
                interaction = await self.interactions.record(
                    s,
                    self.interactions.orm_row(s),
                    channel=Channel.VOICE,
                    direction=Direction.OUTBOUND,
                    customer_id=contact.customer_id,
                    subject=f"{campaign.name}: {contact.phone}"[:500],
                    from_address=campaign.caller_id,
                    to_address=contact.phone,
                    queue_id=campaign.queue_id,
                    project_id=campaign.project_id,
                    attributes={
                        "campaign_id": campaign_id,
                        "campaign_contact_id": contact.id,
                        "dialled": contact.phone,
                    },
                )
                if agent_id is not None:
                    interaction.agent_id = agent_id
                attempt.interaction_id = interaction.id
                s.add(attempt)
                await s.flush()
                contact.state = ContactState.DIALLING.value
                contact.attempts += 1
                contact.last_attempt_at = now
                contact.next_attempt_at = None
                orders.append(
                    DialOrder(
                        attempt_id=attempt.id,
                        campaign_id=campaign_id,
                        contact_id=contact.id,
                        interaction_id=interaction.id,
                        phone=contact.phone,
                        mode=campaign.mode,
                        trunk=campaign.trunk,
                        caller_id=campaign.caller_id,
                        queue_id=campaign.queue_id,
                        priority=DIALLED_PRIORITY + campaign.priority + contact.priority,
                        customer_id=contact.customer_id,
                        callback_agent_id=agent_id or contact.callback_agent_id,
                        ring_timeout_s=settings.ring_timeout_s,
                        agent_wait_s=settings.agent_wait_s,
                        # Preview: the agent is on the line at the answer and hears for themselves.
                        amd=settings.amd_parameters.domain()
                        if settings.amd and agent_id is None and campaign.mode != CampaignMode.PREVIEW
                        else None,
                        amd_machine_action=settings.amd_machine_action,
                    )
                )
            if not candidates and agent_id is None:
                await self._finish_if_done(s, campaign, now)
        if blocked is not None:
            raise _Blocked(blocked)
        return orders

    async def claim_preview(self, contact_id: int, agent_id: int) -> DialOrder:
        """The agent dials the contact they preview: its attempt is claimed like any other (DNC
        checked and logged). Raises :class:`Conflict` (``dnc-blocked``) for a number on a list."""
        async with self.sessions() as s:
            campaign_id = await s.scalar(
                select(CampaignContact.campaign_id).where(CampaignContact.id == contact_id)
            )
        if campaign_id is None:
            raise NotFound(
                "No such campaign contact", error_id="no-such-campaign-contact", contact_id=contact_id
            )
        try:
            orders = await self.claim(campaign_id, 1, agent_id=agent_id, contact_id=contact_id)
        except _Blocked as blocked:
            raise Conflict(
                "This number is on a do-not-call list", error_id="dnc-blocked", list=blocked.result
            ) from None
        if not orders:
            raise Conflict("No contact on your desk for this campaign", error_id="contact-not-previewed")
        return orders[0]

    async def _finish_if_done(self, s: AsyncSession, campaign: Campaign, now: datetime) -> None:
        open_ = await s.scalar(
            select(func.count())
            .select_from(CampaignContact)
            .where(
                CampaignContact.campaign_id == campaign.id,
                CampaignContact.state.in_(
                    [ContactState.PENDING.value, ContactState.DIALLING.value, ContactState.PREVIEW.value]
                ),
            )
        )
        if not open_:
            campaign.state = CampaignState.FINISHED.value
            campaign.state_changed_at = now

    # ------------------------------------------------------------------ the call's steps
    async def answered(self, attempt_id: int) -> None:
        """The called party answered (before any agent is found)."""
        async with self.sessions.begin() as s:
            attempt = await s.get(DialAttempt, attempt_id)
            if attempt is None or attempt.state != AttemptState.DIALLING:
                return
            attempt.state = AttemptState.ANSWERED
            attempt.answered_at = self.clock()

    async def amd_decided(self, attempt_id: int, result: AmdResult, audio: str | None) -> None:
        """Answering-machine detection decided: kept on the attempt for review, with the analysed
        audio's WAV (``audio``: its path; None when recordings are off). The WAV is listed in the
        call's recordings in the same transaction, so it is kept, served and erased as they are."""
        async with self.sessions.begin() as s:
            attempt = await s.get(DialAttempt, attempt_id)
            if attempt is None:
                return
            attempt.amd_decision = result.decision.value
            attempt.amd_cause = result.cause.value
            attempt.amd_ms = result.ms
            attempt.amd_audio = None if audio is None else PurePath(audio).name
            row = None if attempt.interaction_id is None else await s.get(Interaction, attempt.interaction_id)
            if row is not None and audio is not None:
                attributes = dict(row.attributes or {})
                attributes["recordings"] = [*attributes.get("recordings", []), audio]
                row.attributes = attributes

    async def queue(self, order: DialOrder) -> None:
        """An answered call (progressive, predictive; notification's "2") goes into the campaign's
        queue in the ACD, below inbound contacts; a callback promised by an agent is reserved for them."""
        if order.queue_id is None:
            raise Conflict("The campaign has no queue", error_id="campaign-without-queue")
        await self.acd.execute(
            QueueDialledCall(
                order.interaction_id,
                order.queue_id,
                order.priority,
                None if order.callback_agent_id is None else str(order.callback_agent_id),
            )
        )

    async def connected(self, attempt_id: int, agent_id: int) -> None:
        async with self.sessions.begin() as s:
            attempt = await s.get(DialAttempt, attempt_id)
            if attempt is None:
                return
            attempt.agent_id = agent_id
            attempt.connected_at = self.clock()

    async def confirmation(self, attempt_id: int, choice: str) -> None:
        """Notification mode: what the called party pressed (``confirmed``: 1, ``operator``: 2)."""
        async with self.sessions.begin() as s:
            attempt = await s.get(DialAttempt, attempt_id)
            contact = None if attempt is None else await s.get(CampaignContact, attempt.contact_id)
            if contact is None:
                return
            contact.confirmation = choice
            contact.updated_at = self.clock()

    async def ended(
        self, attempt_id: int, outcome: str, *, sip_status: int | None = None, call_id: str | None = None
    ) -> None:
        """The call is over: the attempt's outcome (and its INVITE's Call-ID), the contact's next step
        (the campaign's retry rule), and an unanswered call's interaction failed."""
        now = self.clock()
        async with self.sessions.begin() as s:
            attempt = await s.get(DialAttempt, attempt_id)
            if attempt is None or attempt.state == AttemptState.ENDED:
                return
            attempt.state = AttemptState.ENDED
            attempt.outcome = outcome
            attempt.sip_status = sip_status
            attempt.ended_at = now
            if call_id is not None:
                attempt.call_id = call_id[:200]
            contact = await s.get(CampaignContact, attempt.contact_id)
            campaign = await s.get(Campaign, attempt.campaign_id)
            if contact is not None and campaign is not None:
                self._next_step(contact, campaign, outcome, now)
            if attempt.interaction_id is not None and attempt.answered_at is None:
                row = await s.get(Interaction, attempt.interaction_id)
                if row is not None and row.state == InteractionState.NEW.value:
                    attributes = dict(row.attributes or {})
                    attributes["outcome"] = outcome
                    if sip_status is not None:
                        attributes["sip_status"] = sip_status
                    row.attributes = attributes
                    row.state = InteractionState.FAILED.value
                    row.ended_at = row.closed_at = now
                    log_event(
                        s, row, InteractionEventType.FAILED, now, sip_status=sip_status, outcome=outcome
                    )
            elif attempt.interaction_id is not None:
                row = await s.get(Interaction, attempt.interaction_id)
                if row is not None:
                    row.attributes = {**(row.attributes or {}), "outcome": outcome}
                    if row.state == InteractionState.NEW.value:
                        # Answered but never queued (a notification heard to the end).
                        row.state = InteractionState.DONE.value
                        row.connected_at = attempt.answered_at
                        row.ended_at = row.closed_at = now
                        log_event(s, row, InteractionEventType.DONE, now, outcome=outcome)

    def _next_step(self, contact: CampaignContact, campaign: Campaign, outcome: str, now: datetime) -> None:
        contact.last_outcome = outcome
        contact.updated_at = now
        contact.agent_id = None
        if contact.state != ContactState.DIALLING.value:
            return  # an agent's disposition or callback during the call decided already
        if outcome == "abandoned":
            contact.abandoned_at = now
        if outcome in REACHED:
            contact.state = ContactState.DONE.value
            contact.next_attempt_at = None
            contact.callback_agent_id = None
            return
        after = rules.next_attempt_at(outcome, contact.attempts, campaign.retry or {}, now)
        if after is None:
            contact.state = ContactState.FAILED.value
            contact.next_attempt_at = None
        else:
            contact.state = ContactState.PENDING.value
            contact.next_attempt_at = after

    # ------------------------------------------------------------------ restart
    async def recover(self, *, own_only: bool = False) -> int:
        """End the attempts a stopped node left in flight as ``unknown`` (see the module docstring);
        returns how many. Run after the ACD is rebuilt (in a cluster: once commands reach the leader),
        before the dialler starts. ``own_only`` (a node of a cluster): only this node's attempts, and
        those written before attempts named their node; the other voice nodes' calls are up."""
        mine: ColumnElement[bool] | None = None
        if own_only:
            mine = or_(DialAttempt.node == self.node, DialAttempt.node.is_(None))
        ended = await self._end_in_flight(mine)
        if ended:
            log.warning("%d dial attempts were in flight at the last stop: ended as unknown", ended)
        return ended

    async def close_calls_of_silent_nodes(self, silent_after_s: float) -> list[int]:
        """End as ``unknown`` the attempts in flight on voice nodes not heard of for ``silent_after_s``
        (their heartbeat in the cluster's node table is older, or they stopped): their calls died
        with the node. Run by the routing leader (``SilentNodeSweep``) beside the voice channel's own
        sweep; their contacts are then retried by the campaign's rule, and answered calls leave the
        ACD (a waiting one withdrawn, one with an agent finished), so no agent stays busy on a dead
        call. Returns the attempts' ids."""
        cutoff = self.clock() - timedelta(seconds=silent_after_s)
        async with self.sessions() as s:
            nodes = set(
                await s.scalars(
                    select(DialAttempt.node).where(
                        DialAttempt.state.in_([AttemptState.DIALLING, AttemptState.ANSWERED]),
                        DialAttempt.node.is_not(None),
                        DialAttempt.node != self.node,
                    )
                )
            )
            heard = await last_heard(s, {n for n in nodes if n is not None})
        dead: list[ColumnElement[bool]] = []
        for node, h in heard.items():
            # Heard.lost, as a condition on the attempts' claim times.
            if h.silent(cutoff):
                dead.append(DialAttempt.node == node)
            elif h.stopped:
                dead.append(and_(DialAttempt.node == node, DialAttempt.claimed_at <= h.at))
        if not dead:
            return []
        ended: list[int] = []
        await self._end_in_flight(or_(*dead), ended)
        if ended:
            log.warning(
                "dial attempts in flight on silent voice nodes were ended as unknown",
                extra={"attempts": ended},
            )
        return ended

    async def _end_in_flight(self, where: ColumnElement[bool] | None, ids: list[int] | None = None) -> int:
        """End the attempts in flight (of ``where``) as ``unknown``; returns how many (their ids are
        appended to ``ids``)."""
        now = self.clock()
        waiting: list[int] = []
        talking: list[int] = []
        in_flight = DialAttempt.state.in_([AttemptState.DIALLING, AttemptState.ANSWERED])
        async with self.sessions.begin() as s:
            # FOR UPDATE: of two nodes ending the same attempts (a restart and the leader's sweep),
            # the second finds them ended and does nothing.
            attempts = list(
                await s.scalars(
                    select(DialAttempt)
                    .where(in_flight if where is None else and_(in_flight, where))
                    .order_by(DialAttempt.id)
                    .with_for_update()
                )
            )
            for attempt in attempts:
                attempt.state = AttemptState.ENDED
                attempt.outcome = "unknown"
                attempt.ended_at = now
                contact = await s.get(CampaignContact, attempt.contact_id)
                campaign = await s.get(Campaign, attempt.campaign_id)
                if contact is not None and campaign is not None:
                    self._next_step(contact, campaign, "unknown", now)
                if attempt.interaction_id is None:
                    continue
                row = await s.get(Interaction, attempt.interaction_id)
                if row is None:
                    continue
                if row.state == InteractionState.NEW.value:
                    row.state = InteractionState.FAILED.value
                    row.ended_at = row.closed_at = now
                    row.attributes = {**(row.attributes or {}), "outcome": "unknown"}
                    log_event(s, row, InteractionEventType.FAILED, now, outcome="unknown")
                elif row.state in (InteractionState.QUEUED.value, InteractionState.OFFERED.value):
                    waiting.append(row.id)
                elif row.state == InteractionState.CONNECTED.value:
                    talking.append(row.id)
        for interaction_id in waiting:
            await self._quietly(WithdrawContact(str(interaction_id)))
        for interaction_id in talking:
            await self._quietly(FinishContact(str(interaction_id)))
        if ids is not None:
            ids.extend(a.id for a in attempts)
        return len(attempts)

    async def _quietly(self, command: AcdCommand[Any]) -> None:
        try:
            await self.acd.execute(command)
        except Exception:
            log.exception("recovering a campaign call in the ACD failed")

    # ------------------------------------------------------------------ what the dialler reads
    async def running(self) -> list[Campaign]:
        """The running campaigns (detached rows), highest priority first."""
        async with self.sessions() as s:
            rows = list(
                await s.scalars(
                    select(Campaign)
                    .where(
                        Campaign.state == CampaignState.RUNNING.value,
                        Campaign.mode != CampaignMode.PREVIEW.value,
                    )
                    .order_by(Campaign.priority.desc(), Campaign.id)
                )
            )
            s.expunge_all()
            return rows

    async def calls_elsewhere(self) -> dict[int, CallsElsewhere]:
        """The calls in flight on other nodes, per campaign (a cluster's dialler paces with them: the
        calls a voice node placed before another took the dialler lease over are still up there)."""
        found: dict[int, CallsElsewhere] = {}
        async with self.sessions() as s:
            rows = await s.execute(
                select(DialAttempt.campaign_id, DialAttempt.state, DialAttempt.claimed_at).where(
                    DialAttempt.state.in_([AttemptState.DIALLING, AttemptState.ANSWERED]),
                    or_(DialAttempt.node.is_(None), DialAttempt.node != self.node),
                )
            )
            for campaign_id, state, claimed_at in rows.all():
                calls = found.setdefault(campaign_id, CallsElsewhere())
                if state == AttemptState.DIALLING:
                    calls.dialled_at.append(claimed_at)
                else:
                    calls.answered += 1
        return found

    async def day_counts(self, campaign_id: int, since: datetime) -> tuple[int, int]:
        """The campaign's live answered calls since ``since`` and how many of them were abandoned
        (the pacer's day, restored after a restart)."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(
                        # A detected answering machine is not a live answer (docs/outbound.md).
                        func.count(DialAttempt.answered_at).filter(
                            (DialAttempt.outcome.is_(None)) | (DialAttempt.outcome != "voicemail")
                        ),
                        func.count().filter(DialAttempt.outcome == "abandoned"),
                    ).where(DialAttempt.campaign_id == campaign_id, DialAttempt.claimed_at >= since)
                )
            ).one()
            return int(row[0] or 0), int(row[1] or 0)

    async def due_count(self, campaign_id: int) -> int:
        now = self.clock()
        async with self.sessions() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(CampaignContact)
                    .where(
                        and_(
                            CampaignContact.campaign_id == campaign_id,
                            CampaignContact.state == ContactState.PENDING.value,
                            (CampaignContact.next_attempt_at.is_(None))
                            | (CampaignContact.next_attempt_at <= now),
                        )
                    )
                )
                or 0
            )

    async def attempt(self, attempt_id: int) -> DialAttempt:
        async with self.sessions() as s:
            row = await s.get(DialAttempt, attempt_id)
            if row is None:
                raise NotFound("No such attempt", error_id="no-such-attempt")
            return row


@dataclass(slots=True)
class CallsElsewhere:
    """A campaign's calls in flight on other nodes: when each call still ringing was claimed, and
    how many are answered."""

    dialled_at: list[datetime] = field(default_factory=list)
    answered: int = 0

    def ringing_s(self, now: datetime) -> Sequence[float]:
        return [max(0.0, (_aware(now) - _aware(at)).total_seconds()) for at in self.dialled_at]


def _aware(at: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives them back naive)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class _Blocked(Exception):
    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


# ====================================================================== the ACD command
@dataclass(frozen=True, slots=True)
class QueueDialledCall(AcdCommand[list[r.Output]]):
    """An answered campaign call joins its campaign's queue (its interaction was recorded at claim)."""

    interaction_id: int
    queue_id: int
    priority: int
    preferred_agent_id: str | None = None


class _QueueDialledCallHandler(CommandHandler[QueueDialledCall]):
    prepares = True
    savepoint = False  # the prepare step only reads and checks

    def __init__(self, acd: AcdService) -> None:
        self.acd = acd

    async def prepare(self, uow: UnitOfWork, command: QueueDialledCall) -> r.Contact:
        row = await uow.interactions.get(command.interaction_id)
        if row is None or row.state != InteractionState.NEW.value:
            raise Conflict("This call cannot be queued", error_id="call-not-new")
        if str(command.queue_id) not in self.acd.engine.queue_ids():
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=command.queue_id)
        return r.Contact(
            contact_id=str(row.id),
            channel=Channel.VOICE.value,
            queue_id=str(command.queue_id),
            priority=command.priority,
            customer_id=None if row.customer_id is None else str(row.customer_id),
            preferred_agent_id=command.preferred_agent_id,
            attributes={},
        )

    def decide(
        self, engine: r.RoutingEngine, command: QueueDialledCall, prepared: r.Contact, now: float
    ) -> list[r.Output]:
        reserve = None if command.preferred_agent_id is None else 30.0
        return engine.contact_arrived(prepared, now, reserve_s=reserve)
