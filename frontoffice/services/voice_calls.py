"""Voice use cases: the SIP channel's calls into the ACD and the store (one transaction each).

The voice channel (``frontoffice/channels/voice``) never touches tables: it calls these methods. A call
becomes an interaction the same way a web form does (:meth:`ContactCenter.create_contact`), with the
Call-ID as ``external_ref`` and the caller's number as the customer's phone identity (screen-pop: the
customer is found, or created, before the ACD offers the contact).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Table, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.aio import cancel_and_wait
from frontoffice.domain import routing as r
from frontoffice.domain.contact_log import RoutedContact
from frontoffice.domain.exceptions import Conflict, DomainError, InvalidInput, NotFound
from frontoffice.domain.model import Channel, IdentityKind, InteractionEventType
from frontoffice.domain.model import InteractionState as St
from frontoffice.domain.sip_credentials import sip_digest_ha1
from frontoffice.store.tables import (
    AgentProfile,
    Customer,
    EntryPoint,
    Interaction,
    InteractionEvent,
    Queue,
    SipRegistration,
    User,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService
from .acd_commands import (
    AcceptOffer,
    AcdCommand,
    CommandHandler,
    EngineCommand,
    FinishContact,
    RejectOffer,
    SetAgentState,
    TransferToAgent,
    TransferToQueue,
    WithdrawContact,
    engine_step,
)
from .channel_contract import CustomerIdentity, InboundContact
from .cluster_status import last_heard
from .contact_center import ContactCenter
from .context import Actor, audit
from .csv_safe import csv_lines
from .identities import normalize_identity
from .interactions import EventSubject, log_event
from .scope import check_agent_takes_contact, event_visible, user_works_in, visible_interaction, where

log = logging.getLogger("frontoffice.voice")

__all__ = [
    "CALL_RECORD_COLUMNS",
    "LOST_NODE_FAILURE",
    "CallControl",
    "CallRecordsOut",
    "ConferenceTarget",
    "InboundCall",
    "IvrMenu",
    "LiveCall",
    "SilentNodeCalls",
    "SilentNodeSweep",
    "SipAccount",
    "SipCredentialsIn",
    "SipCredentialsOut",
    "StoredRegistration",
    "TransferTargetsOut",
    "TrunkState",
    "VoiceCalls",
    "VoiceEntry",
]

# RFC 3261 §25.1: a user part is unreserved characters and escapes; we allow the usual subset
# softphones accept in their account dialogs, so the same name works everywhere.
SIP_USERNAME_PATTERN = r"^[A-Za-z0-9._~+-]{1,64}$"
# Columns of the call-record CSV export, one row per call leg.
CALL_RECORD_COLUMNS = (
    "interaction_id",
    "queue_id",
    "leg",
    "transfer",
    "call_id",
    "peer",
    "agent_id",
    "setup_at",
    "ringing_at",
    "answered_at",
    "ended_at",
    "status",
    "cause",
    "ring_s",
    "talk_s",
    "duration_s",
    "foreign_packets",
)
# Rows read per query while streaming the export (bounded memory for months of calls).
EXPORT_BATCH = 500
# A request for more than this many days of call records is refused: narrow the range or use the
# event log through the database for bulk analytics.
MAX_EXPORT_DAYS = 366
# What a call-leg event copies from its interaction (see ``log_event``), read with one prebuilt statement
# for all the legs written together.
_INTERACTIONS = cast(Table, Interaction.__table__)
_LEG_SUBJECTS = select(
    *(_INTERACTIONS.c[name] for name in ("id", "state", "queue_id", "agent_id", "project_id", "channel"))
).where(_INTERACTIONS.c.id.in_(bindparam("ids", expanding=True)))
# A finished call leg waiting to be written: (interaction id, leg data, time, settled when committed).
_PendingLeg = tuple[int, dict[str, Any], datetime, "asyncio.Future[None]"]
# Dialled numbers whose entry point is kept in memory (see VoiceCalls.entry_for): far more than a
# site has numbers, small enough that odd spellings of numbers sent by a scanner cannot grow it.
ENTRY_CACHE_SIZE = 1024
# The cause of call legs (and the failure of waiting calls) lost because their voice node died.
LOST_NODE_FAILURE = "lost_node_failure"
# Short SIP passwords are brute-forced by scanners within hours; 10 characters is the floor most
# carriers enforce for SIP accounts.
MIN_SIP_PASSWORD = 10
# The not_ready reason an agent gets while none of their phones answers OPTIONS (the voice channel's
# qualify); the agent list and the wallboard show it. Cleared only by the channel, never a manual one.
UNREACHABLE_REASON = "unreachable"


class SipCredentialsIn(BaseModel):
    """An agent's SIP phone account. The password is hashed into digest HA1 values and dropped."""

    username: str = Field(pattern=SIP_USERNAME_PATTERN)
    password: str = Field(min_length=MIN_SIP_PASSWORD, max_length=128)


class IvrMenu(BaseModel):
    """A voice menu before the queue: the caller's digit becomes ``ivr.choice`` for routing rules."""

    choices: list[str] = Field(min_length=1, max_length=12, description="accepted digits, e.g. ['1', '2']")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="wait for a digit after each prompt")
    repeats: int = Field(default=2, ge=0, le=5, description="prompt again this often without input")
    default_choice: str | None = Field(default=None, description="choice when the caller presses nothing")


class SipCredentialsOut(BaseModel):
    user_id: int
    username: str
    realm: str


class TransferTarget(BaseModel):
    id: int
    name: str
    state: str | None = None  # agents: their live state (available, on_contact...)


class TransferTargetsOut(BaseModel):
    """Where an agent can send a call: every queue, and the agents signed in right now."""

    queues: list[TransferTarget]
    agents: list[TransferTarget]


class CallRecordsOut(BaseModel):
    """The voice side of an interaction: its call legs (oldest first) and recording file names."""

    interaction_id: int
    legs: list[dict[str, Any]]
    recordings: list[str]


@dataclass(frozen=True, slots=True)
class SipAccount:
    """What the registrar needs to check a phone's digest: HA1 per algorithm, for ``realm``."""

    user_id: int
    username: str
    realm: str
    ha1: dict[str, str]


@dataclass(frozen=True, slots=True)
class VoiceEntry:
    """The entry point a dialled number reaches, with its menu if it has one."""

    entry_point_id: int
    ivr: IvrMenu | None


@dataclass(frozen=True, slots=True)
class InboundCall:
    """A call arriving at an entry point."""

    call_id: str
    dialled: str
    caller: str | None
    caller_name: str = ""
    entry_point_id: int | None = None
    ivr_choice: str | None = None


@dataclass(frozen=True, slots=True)
class StoredRegistration:
    """One registered phone of an agent as the database keeps it (wall-clock times)."""

    user_id: int
    username: str
    contact: str
    transport: str
    host: str
    port: int
    call_id: str
    cseq: int
    registered_at: datetime
    expires_at: datetime


class VoiceCalls:
    """The voice channel's use cases over the ACD service and the store."""

    def __init__(self, contact_center: ContactCenter, *, realm: str, node: str = "") -> None:
        self.contact_center = contact_center
        self.acd: AcdService = contact_center.acd
        self.sessions = contact_center.sessions
        self.realm = realm
        # Which node and which SIP address take this process's calls (recorded with each call, so
        # that a voice node taking the address over knows the calls it lost: close_lost_calls), and
        # this process's run, so that none of its own calls is taken for a lost one.
        self.node = node
        self.sip_address: str | None = None
        self.run_id = uuid.uuid4().hex
        # Call legs are written in batches (see record_leg): those not yet written, the task writing
        # them, and how many ACD commands of calls are about to start and will take them along.
        self._legs: list[_PendingLeg] = []
        self._leg_writer: asyncio.Task[None] | None = None
        self._acd_starting = 0
        # entry_for's answers by dialled number, with the ContactCenter.entry_points_version they were
        # read at (a change to any entry point makes them stale). Process-local: see
        # ContactCenter.entry_points_changed for what that means with several nodes.
        self._entries: dict[str, tuple[int, VoiceEntry]] = {}
        self.acd.register(CallStep, _CallStepHandler(self))

    # ------------------------------------------------------------------ SIP accounts
    async def set_sip_credentials(
        self, actor: Actor, user_id: int, data: SipCredentialsIn
    ) -> SipCredentialsOut:
        """Give an agent a SIP account for their phone (admins: ``routing.write``)."""
        actor.require("routing.write")
        async with self.sessions.begin() as s:
            profile = await s.get(AgentProfile, user_id)
            if profile is None:
                raise NotFound("This user is not an agent", error_id="not-an-agent", user_id=user_id)
            taken = await s.scalar(
                select(AgentProfile.user_id).where(
                    AgentProfile.sip_username == data.username, AgentProfile.user_id != user_id
                )
            )
            if taken is not None:
                raise Conflict("This SIP username is taken", error_id="sip-username-taken")
            profile.sip_username = data.username
            profile.sip_realm = self.realm
            profile.sip_ha1_md5 = sip_digest_ha1("MD5", data.username, self.realm, data.password)
            profile.sip_ha1_sha256 = sip_digest_ha1("SHA-256", data.username, self.realm, data.password)
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict("This SIP username is taken", error_id="sip-username-taken") from None
            audit(s, actor, "agent.sip_credentials", "agent", user_id, username=data.username)
        return SipCredentialsOut(user_id=user_id, username=data.username, realm=self.realm)

    async def sip_account(self, username: str) -> SipAccount | None:
        """The account a phone registers as, or ``None`` (unknown, or hashed for another realm)."""
        async with self.sessions() as s:
            profile = await s.scalar(select(AgentProfile).where(AgentProfile.sip_username == username))
        if profile is None or profile.sip_realm != self.realm:
            return None
        ha1 = {
            algorithm: value
            for algorithm, value in (("MD5", profile.sip_ha1_md5), ("SHA-256", profile.sip_ha1_sha256))
            if value
        }
        return SipAccount(profile.user_id, username, self.realm, ha1)

    # ------------------------------------------------------------------ calls
    async def call_arrived(self, call: InboundCall) -> int:
        """Record the call as an interaction and queue it in the ACD; returns the interaction id.

        Raises :class:`NotFound` when no voice entry point has the dialled number.
        """
        entry = call.entry_point_id or (await self.entry_for(call.dialled)).entry_point_id
        first, _, last = call.caller_name.partition(" ")
        phone = _phone(call.caller)
        if phone is not None:
            try:
                normalize_identity(IdentityKind.PHONE, phone, self.contact_center.crm.region)
            except InvalidInput:
                # A caller id that is not a phone number (sip:user@host, a carrier's garbage) must
                # not block the call: it is taken without one (checked here, not by a failed insert).
                phone = None
        attributes: dict[str, str | int | float | bool | None] = {
            "sip_call_id": call.call_id[:200],
            "dialled": call.dialled[:64],
            "voice_node": self.node,
            "voice_run": self.run_id,
        }
        if self.sip_address is not None:
            attributes["sip_address"] = self.sip_address
        if call.ivr_choice is not None:
            attributes["ivr_choice"] = call.ivr_choice
        name = {"first_name": first[:200], "last_name": last[:200]}
        inbound = InboundContact(
            channel=Channel.VOICE,
            entry_point_id=entry,
            customer=CustomerIdentity(phone=phone, **name),
            subject=f"Call from {call.caller or 'anonymous'}",
            external_id=call.call_id[:500],
            attributes=attributes,
        )
        # The Call-ID dedupes: a repeated INVITE that reached us as a new call returns the first
        # interaction (see Intake.take_in).
        intake = self.contact_center.intake
        try:
            created = await intake.take_in(inbound, dedupe_key=inbound.dedupe_key)
        except InvalidInput as exc:
            if exc.error_id != "invalid-phone":
                raise
            # A caller id that is not a phone number (sip:user@host) must not block the call.
            inbound = replace(inbound, customer=CustomerIdentity(**name))
            created = await intake.take_in(inbound, dedupe_key=inbound.dedupe_key)
        return created.interaction.id

    async def set_ivr(self, actor: Actor, entry_point_id: int, menu: IvrMenu | None) -> None:
        """Give a voice entry point a menu (or remove it with ``None``)."""
        actor.require("routing.write")
        try:
            await self._set_ivr(actor, entry_point_id, menu)
        finally:
            self.contact_center.entry_points_changed()

    async def _set_ivr(self, actor: Actor, entry_point_id: int, menu: IvrMenu | None) -> None:
        async with self.sessions.begin() as s:
            entry = await s.get(EntryPoint, entry_point_id)
            if entry is None or entry.channel != Channel.VOICE.value:
                raise NotFound(
                    "No such voice entry point", error_id="no-such-entry-point", entry_point_id=entry_point_id
                )
            entry.voice_ivr = None if menu is None else menu.model_dump()
            audit(s, actor, "entry_point.ivr", "entry_point", entry_point_id)

    async def entry_for(self, dialled: str) -> VoiceEntry:
        """The voice entry point of a dialled number; :class:`NotFound` when there is none.

        Every inbound call asks this, and entry points change rarely: answers are kept in memory until
        an entry point changes (:meth:`ContactCenter.entry_points_changed`). An unknown number is not
        kept (it is read again: a number added by other means is found at once).
        """
        version = self.contact_center.entry_points_version
        cached = self._entries.get(dialled)
        if cached is not None and cached[0] == version:
            return cached[1]
        entry = await self._read_entry(dialled)
        if self.contact_center.entry_points_version == version:  # no change while reading
            if len(self._entries) >= ENTRY_CACHE_SIZE:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[dialled] = (version, entry)
        return entry

    async def _read_entry(self, dialled: str) -> VoiceEntry:
        candidates = [dialled]
        digits = re.sub(r"[^\d]", "", dialled)
        if digits:
            candidates += [f"+{digits}", digits]
            if len(digits) == 11 and digits[0] == "8":
                candidates.append(f"+7{digits[1:]}")  # Russian trunk prefix 8 = +7
        async with self.sessions() as s:
            for address in candidates:
                found = await s.scalar(
                    select(EntryPoint).where(
                        EntryPoint.channel == Channel.VOICE.value, EntryPoint.address == address
                    )
                )
                if found is not None:
                    menu = IvrMenu.model_validate(found.voice_ivr) if found.voice_ivr else None
                    return VoiceEntry(found.id, menu)
        raise NotFound(
            "No voice entry point for this number", error_id="no-such-entry-point", dialled=dialled
        )

    async def call_abandoned(self, interaction_id: int) -> None:
        """The caller hung up before an agent answered."""
        await self._acd(WithdrawContact(str(interaction_id)))

    async def offer_answered(self, interaction_id: int, agent_id: int) -> None:
        """The agent's phone answered the offer: connected."""
        await self._acd(AcceptOffer(str(interaction_id), str(agent_id)))

    async def offer_declined(self, interaction_id: int, agent_id: int) -> None:
        """The agent's phone was busy, declined or unreachable: the caller returns to their place."""
        await self._acd(RejectOffer(str(interaction_id), str(agent_id)))

    async def call_ended(self, interaction_id: int) -> None:
        """Either side hung up a bridged call: wrap-up starts."""
        await self._acd(FinishContact(str(interaction_id)))

    async def phones_reachable(self, agent_id: int, reachable: bool) -> None:
        """Every phone of the agent stopped answering (``False``): a ready agent goes not_ready with
        :data:`UNREACHABLE_REASON`, so no call is offered to a phone that cannot ring. A phone answers
        again or registers anew (``True``): an agent not_ready for that reason is available again."""
        agent = str(agent_id)
        if agent not in self.acd.view.agent_ids():
            return
        status = self.acd.view.agent_status(agent)
        if status.state == "offline":
            return
        if not reachable and status.ready:
            await self.acd.execute(SetAgentState(agent, "not_ready", UNREACHABLE_REASON))
        elif reachable and status.reason == UNREACHABLE_REASON:
            await self.acd.execute(SetAgentState(agent, "available"))

    async def _acd(self, step: EngineCommand) -> None:
        """Run a call's ACD command; call legs waiting to be written go into its transaction (a hang-up
        closes both legs and ends the contact at once: one commit instead of three)."""
        command = CallStep(step, origin=self.run_id)
        self._acd_starting += 1
        try:
            await self.acd.execute(command)
        except BaseException:
            self._legs[:0] = command.legs  # rolled back with the command: the writer takes them
            raise
        else:
            _settle(command.legs)
        finally:
            if command.starting:
                self._acd_starting -= 1
            self._write_legs_soon()

    async def take_legs(self, uow: UnitOfWork, command: CallStep) -> None:
        """A call command's prepare step: the legs finished so far join the command (and its
        transaction). Runs again if the batch the command was in failed (the first attempt rolled
        back; the legs it took are still the command's)."""
        if command.origin != self.run_id:
            # Forwarded from a standby voice node (a copy): its legs and counter are that node's.
            await self._log_legs(uow.session, command.legs, uow.interactions.load)
            return
        if command.starting:
            self._acd_starting -= 1
            command.starting = False
        command.legs.extend(self._legs)
        self._legs.clear()
        # Read with the command's repository: its outputs use the rows (one read of the call).
        await self._log_legs(uow.session, command.legs, uow.interactions.load)

    async def annotate(self, interaction_id: int, **attributes: Any) -> None:
        """Merge attributes (IVR choice, recording files, SIP causes) into the interaction record."""
        async with self.sessions.begin() as s:
            row = await s.get(Interaction, interaction_id)
            if row is None:
                return
            merged = dict(row.attributes or {})
            for key, value in attributes.items():
                if isinstance(value, list) and isinstance(merged.get(key), list):
                    merged[key] = [*merged[key], *value]
                else:
                    merged[key] = value
            row.attributes = merged

    # ------------------------------------------------------------------ fail-over of a voice node
    async def save_registrations(self, user_id: int, registrations: list[StoredRegistration]) -> None:
        """Replace the stored registrations of agent ``user_id`` with ``registrations`` (the
        registrar's live bindings after a REGISTER): another voice node that starts or takes the SIP
        address over serves the phones without a new REGISTER."""
        async with self.sessions.begin() as s:
            await s.execute(delete(SipRegistration).where(SipRegistration.user_id == user_id))
            s.add_all(SipRegistration(**asdict(registration)) for registration in registrations)

    async def stored_registrations(self) -> list[StoredRegistration]:
        """The stored registrations that have not expired (see :meth:`save_registrations`)."""
        async with self.sessions() as s:
            rows = await s.scalars(
                select(SipRegistration)
                .where(SipRegistration.expires_at > self.now())
                .order_by(SipRegistration.id)
            )
            return [
                StoredRegistration(**{f.name: getattr(row, f.name) for f in fields(StoredRegistration)})
                for row in rows
            ]

    async def close_lost_calls(self) -> list[int]:
        """Close the calls that a voice node which held this node's SIP address left up when it
        died (``kill -9``, a host lost): their SIP dialogs and media died with it. Called once this
        node holds the address (at start, or when it took the address over as a standby), so the node
        that recorded them cannot be serving them any more.

        Each gets call legs with the cause :data:`LOST_NODE_FAILURE`, ended at the dead node's last
        heartbeat (in a cluster) or now; a waiting call fails with that cause (statistics count it as
        failed, not abandoned); a connected one ends (the agent's wrap-up starts). Returns their ids.
        """
        if self.sip_address is None:
            return []
        async with self.sessions() as s:
            lost = [
                i
                for i in await self._open_inbound_calls(s)
                if (i.attributes or {}).get("sip_address") == self.sip_address
                and (i.attributes or {}).get("voice_run") != self.run_id
            ]
            heard = await last_heard(s, {_voice_node(i) for i in lost} - {"", self.node})
        return await self._close_lost(lost, {node: h.at for node, h in heard.items()})

    async def close_calls_of_silent_nodes(self, silent_after_s: float) -> list[int]:
        """Close the calls of voice nodes not heard of for ``silent_after_s`` (their heartbeat in the
        cluster's node table is older, or they stopped), as :meth:`close_lost_calls` does for the node
        that takes a dead node's address over — for when none does (no standby voice node, or it is
        down too). Run by the routing leader (scheduled work); without it an agent stayed busy on a
        call that had died with its node, and the caller's record said it was still up."""
        cutoff = self.now() - timedelta(seconds=silent_after_s)
        async with self.sessions() as s:
            calls = [i for i in await self._open_inbound_calls(s) if _voice_node(i) not in ("", self.node)]
            heard = await last_heard(s, {_voice_node(i) for i in calls})
        lost = [
            i for i in calls if (h := heard.get(_voice_node(i))) is not None and h.lost(i.created_at, cutoff)
        ]
        return await self._close_lost(lost, {node: h.at for node, h in heard.items()})

    @staticmethod
    async def _open_inbound_calls(s: AsyncSession) -> list[Interaction]:
        open_states = [St.NEW.value, St.QUEUED.value, St.OFFERED.value, St.CONNECTED.value]
        rows = await s.scalars(
            select(Interaction).where(
                Interaction.channel == Channel.VOICE.value,
                Interaction.direction == "inbound",
                Interaction.state.in_(open_states),
            )
        )
        return list(rows)

    async def _close_lost(self, lost: list[Interaction], heard: Mapping[str, datetime]) -> list[int]:
        """Close ``lost`` calls (see :meth:`close_lost_calls`); ``heard``: when each dead node was last
        heard of. The ACD's command comes first and is the claim: of two nodes closing the same call
        (the one taking the address over and the leader's sweep), the second finds it closed and
        writes nothing, so no call gets its lost legs twice."""
        now = self.now()
        closed = []
        for i in lost:
            attributes = i.attributes or {}
            start = _aware(i.created_at)
            died = heard.get(_voice_node(i))
            ended = min(now, max(_aware(died), _aware(i.connected_at or i.created_at))) if died else now
            connected = i.state == St.CONNECTED.value
            step: EngineCommand = (
                FinishContact(str(i.id)) if connected else WithdrawContact(str(i.id), cause=LOST_NODE_FAILURE)
            )
            try:
                await self.acd.execute(step)
            except DomainError as exc:  # the engine no longer has it (ended meanwhile, or closed by another)
                log.info(
                    "a lost call was closed already",
                    extra={"interaction": i.id, "error": str(exc)},
                )
                continue
            legs = [_lost_leg("caller", str(attributes.get("sip_call_id") or ""), start, ended, None)]
            if connected and i.agent_id is not None and i.connected_at is not None:
                legs.append(_lost_leg("agent", "", _aware(i.connected_at), ended, i.agent_id))
            for leg in legs:
                await self.record_leg(i.id, leg, ended)
            # After the ACD's command, which runs on the leader once it has rebuilt its engine: a
            # rebuild running meanwhile rewrites the rows it read, attributes included.
            await self.annotate(i.id, call_lost=LOST_NODE_FAILURE, lost_at=ended.isoformat())
            closed.append(i.id)
        if closed:
            log.warning("calls lost with a voice node were closed", extra={"interactions": closed})
        return closed

    # ------------------------------------------------------------------ call records and recordings
    def now(self) -> datetime:
        """Wall-clock time for call records (the contact center's injected clock)."""
        return self.contact_center.clock()

    async def record_leg(self, interaction_id: int, leg: dict[str, Any], at: datetime) -> None:
        """Append one finished call leg (see ``channels/voice/call_records.py``) to the event log;
        returns once it is committed (nothing happens for an interaction that does not exist).

        Legs are written in batches: with the call's next ACD command when one is starting (a
        hang-up), else by one writer task that takes every leg finished meanwhile into one transaction.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._legs.append((interaction_id, leg, at, done))
        self._write_legs_soon()
        await done

    def _write_legs_soon(self) -> None:
        if self._legs and (self._leg_writer is None or self._leg_writer.done()):
            self._leg_writer = asyncio.get_running_loop().create_task(self._write_legs())

    async def _write_legs(self) -> None:
        # One turn of the loop first: an ACD command started by the same hang-up takes the legs along.
        await asyncio.sleep(0)
        while self._legs and not self._acd_starting:
            batch, self._legs = self._legs, []
            try:
                async with self.sessions.begin() as s:
                    await self._log_legs(s, batch, partial(_leg_subjects, s))
            except Exception as exc:
                _settle(batch, exc)
            else:
                _settle(batch)

    async def _log_legs(
        self,
        s: AsyncSession,
        legs: list[_PendingLeg],
        load: Callable[[list[int]], Awaitable[Mapping[int, EventSubject]]]
        | Callable[[Iterable[int]], Awaitable[Mapping[int, RoutedContact]]],
    ) -> None:
        if not legs:
            return
        subjects = await load(sorted({interaction_id for interaction_id, *_ in legs}))
        for interaction_id, leg, at, _ in legs:
            subject = subjects.get(interaction_id)
            if subject is not None:
                log_event(s, subject, InteractionEventType.CALL_LEG, at, **leg)

    async def call_records(self, actor: Actor, interaction_id: int) -> CallRecordsOut:
        """The call legs and recordings of one interaction."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            row = await visible_interaction(s, actor, interaction_id)  # 404 outside the user's projects
            events = await s.scalars(
                select(InteractionEvent)
                .where(
                    InteractionEvent.interaction_id == interaction_id,
                    InteractionEvent.type == InteractionEventType.CALL_LEG.value,
                )
                .order_by(InteractionEvent.id)
            )
            legs = [dict(e.data) for e in events]
            recordings = [Path(p).name for p in (row.attributes or {}).get("recordings", [])]
        return CallRecordsOut(interaction_id=interaction_id, legs=legs, recordings=recordings)

    async def recording_file(self, actor: Actor, interaction_id: int, name: str) -> Path:
        """The WAV file ``name`` of an interaction's recordings; only names the call recorded (the
        caller checks the file exists: it appears when the call ends)."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            row = await visible_interaction(s, actor, interaction_id)  # 404 outside the user's projects
        for stored in (row.attributes or {}).get("recordings", []):
            path = Path(stored)
            if path.name == name:
                return path
        raise NotFound("The recording is not available", error_id="no-such-recording")

    async def export_call_records(self, actor: Actor, start: datetime, end: datetime) -> AsyncIterator[str]:
        """Stream every call leg that ended in ``[start, end)`` as CSV (supervisors: ``stats.read``)."""
        actor.require("stats.read")
        if end <= start:
            raise InvalidInput("The end must be after the start", error_id="invalid-range")
        if (end - start).days > MAX_EXPORT_DAYS:
            raise InvalidInput("The range is too long", error_id="range-too-long", max_days=MAX_EXPORT_DAYS)
        return self._export_rows(start, end, event_visible(actor))

    async def _export_rows(
        self, start: datetime, end: datetime, visible: ColumnElement[bool] | None
    ) -> AsyncIterator[str]:
        yield csv_lines([CALL_RECORD_COLUMNS])
        last_id = 0
        while True:
            async with self.sessions() as s:
                stmt = select(InteractionEvent).where(
                    InteractionEvent.type == InteractionEventType.CALL_LEG.value,
                    InteractionEvent.at >= start,
                    InteractionEvent.at < end,
                    InteractionEvent.id > last_id,
                )
                # A user limited to projects exports their projects' calls only.
                stmt = where(stmt, visible)
                batch = list(await s.scalars(stmt.order_by(InteractionEvent.id).limit(EXPORT_BATCH)))
            if not batch:
                return
            lines = []
            for event in batch:
                data = {**event.data, "interaction_id": event.interaction_id, "queue_id": event.queue_id}
                lines.append([data.get(column) for column in CALL_RECORD_COLUMNS])
            last_id = batch[-1].id
            yield csv_lines(lines)

    # ------------------------------------------------------------------ agent call control
    async def check_call_view(self, actor: Actor, interaction_id: int) -> None:
        """Whether ``actor`` may see the live call of ``interaction_id``: a user limited to some
        projects sees only the calls of interactions they may see (``404 no-such-call`` otherwise, as
        for a call that does not exist); users without a limit see every call (no read)."""
        actor.require("interactions.read")
        if actor.project_ids is None:
            return
        async with self.sessions() as s:
            try:
                await visible_interaction(s, actor, interaction_id)
            except NotFound:
                raise NotFound("No such active call", error_id="no-such-call") from None

    def check_call_control(self, actor: Actor, interaction_id: int) -> None:
        """Agents control their own connected calls; supervisors any tracked call of their projects
        (a supervisor limited to some projects: the calls waiting in or taken from those projects'
        queues)."""
        actor.require("interactions.write")
        if actor.can("agents.supervise"):
            if actor.project_ids is not None and not self._supervises_call(actor, interaction_id):
                raise NotFound("No such active call", error_id="no-such-call")
            return
        try:
            status = self.acd.view.contact_status(str(interaction_id))
        except r.UnknownContact:
            raise NotFound("No such active call", error_id="no-such-call") from None
        if actor.user_id is None or str(actor.user_id) not in status.agent_ids:
            raise Conflict("This call is not connected to you", error_id="not-your-contact")

    def _supervises_call(self, actor: Actor, interaction_id: int) -> bool:
        """Whether a supervisor limited to some projects may control this call: the ACD tracks it in
        a queue of their projects (or of none), or it is their own."""
        try:
            status = self.acd.view.contact_status(str(interaction_id))
        except r.UnknownContact:
            return False
        if actor.user_id is not None and str(actor.user_id) in status.agent_ids:
            return True
        queue = status.queue_id
        return queue.isdigit() and actor.sees_project(self.acd.project_of_queue(int(queue)))

    async def transfer_targets(self, actor: Actor) -> TransferTargetsOut:
        """Queues and signed-in agents for the desktop's transfer picker (agents may not read the
        routing configuration, so this is its own, smaller view)."""
        actor.require("interactions.write")
        engine = self.acd.view
        live = {
            int(a): engine.agent_status(a).state
            for a in engine.agent_ids()
            if engine.agent_status(a).state != "offline" and int(a) != actor.user_id
        }
        async with self.sessions() as s:
            queues = [
                TransferTarget(id=q.id, name=q.name)
                for q in await s.scalars(select(Queue).order_by(Queue.name))
                # A user limited to some projects transfers within them (and to queues of none).
                if actor.sees_project(q.project_id)
            ]
            # A limited user's colleagues only (those of their projects and the unrestricted staff), as
            # the @-picker lists them: a transfer hands the contact to the agent.
            colleagues = where(select(User).where(User.id.in_(live)), user_works_in(actor.project_ids))
            users = list(await s.scalars(colleagues)) if live else []
        agents = sorted(
            (TransferTarget(id=u.id, name=u.display_name or u.username, state=live[u.id]) for u in users),
            key=lambda target: target.name.lower(),
        )
        return TransferTargetsOut(queues=queues, agents=agents)

    def check_transfer_target(self, agent_id: int) -> None:
        """Whether the ACD can hand a call to colleague ``agent_id`` by an attended transfer (from the
        desk or the phone); raises :class:`Conflict` before anything changes when it cannot: the
        colleague is no agent (``colleague-not-an-agent``) or is not signed in
        (``colleague-not-signed-in``). A contact must have an agent who is accountable for it (wrap-up,
        disposition, statistics), so a transfer to someone outside the ACD is refused rather than left
        ownerless; talking to them (consultation, conference) needs no sign-in."""
        try:
            status = self.acd.view.agent_status(str(agent_id))
        except r.UnknownAgent:
            raise Conflict(
                "This colleague is not an agent", error_id="colleague-not-an-agent", agent_id=agent_id
            ) from None
        if status.state == "offline":
            raise Conflict(
                "The colleague is not signed in to take calls",
                error_id="colleague-not-signed-in",
                agent_id=agent_id,
            )

    async def check_agent_takes(self, interaction_id: int, agent_id: int) -> None:
        """Whether colleague ``agent_id`` may become the agent of contact ``interaction_id`` (they would
        see it and its customer): ``422`` at ``agent_id`` when they could not see its project
        (:func:`~frontoffice.services.scope.check_agent_takes_contact`). Asked before a blind transfer
        and before the consultation that starts an attended one, while nothing has changed yet."""
        async with self.sessions() as s:
            await check_agent_takes_contact(s, agent_id, interaction_id)

    async def transfer(self, interaction_id: int, *, queue_id: int | None, agent_id: int | None) -> None:
        """A transfer asked for by the agent's phone: the ACD moves the contact. To a named agent who
        could not see the contact's project it is refused, as from the desk (:meth:`check_agent_takes`):
        a blind one (REFER) keeps the call with the agent; at the hand-over that ends an attended
        transfer (the media has moved already) the contact stays the transferring agent's, so the
        colleague never gets its card."""
        if queue_id is None and agent_id is not None:
            await self.check_agent_takes(interaction_id, agent_id)
        if queue_id is not None:
            await self.acd.execute(TransferToQueue(str(interaction_id), str(queue_id)))
        elif agent_id is not None:
            await self.acd.execute(TransferToAgent(str(interaction_id), str(agent_id)))

    async def transferred_out(self, interaction_id: int, number: str) -> None:
        """The call left for an external number (the contact itself ends with :meth:`call_ended`)."""
        async with self.sessions.begin() as s:
            row = await s.get(Interaction, interaction_id)
            if row is None:
                return
            log_event(
                s,
                row,
                InteractionEventType.TRANSFERRED,
                self.now(),
                to_number=number,
                from_agent_id=row.agent_id,
            )

    async def refer_target(self, user: str) -> tuple[int | None, int | None]:
        """``(queue_id, agent_id)`` a REFER's target user names: ``queue-<id>`` (or ``q<id>``) is a
        queue, an agent's SIP username is that agent; ``(None, None)`` when it names neither."""
        match = re.fullmatch(r"(?:queue-?|q)(\d{1,9})", user, re.IGNORECASE)
        if match:
            return int(match.group(1)), None
        async with self.sessions() as s:
            agent = await s.scalar(select(AgentProfile.user_id).where(AgentProfile.sip_username == user))
        return (None, agent) if agent is not None else (None, None)

    async def caller_language(self, interaction_id: int) -> str | None:
        """The language of the caller's customer record (``en``/``ru``), if known."""
        async with self.sessions() as s:
            language = await s.scalar(
                select(Customer.language)
                .join(Interaction, Interaction.customer_id == Customer.id)
                .where(Interaction.id == interaction_id)
            )
        return language or None


class SilentNodeCalls(Protocol):
    """Calls of one kind that a voice node keeps in the store and that die with it."""

    async def close_calls_of_silent_nodes(self, silent_after_s: float) -> list[int]:
        """Close those of voice nodes not heard of for ``silent_after_s``; returns their ids."""
        ...


class SilentNodeSweep:
    """The routing leader's periodic ``close_calls_of_silent_nodes`` of each kind of call a voice node
    keeps in the store (its ACD calls, its campaign calls' dial attempts): scheduled work, started
    and stopped with the leadership, so it runs once per cluster."""

    def __init__(self, sweeps: Sequence[SilentNodeCalls], silent_after_s: float) -> None:
        self.sweeps = tuple(sweeps)
        self.silent_after_s = silent_after_s
        # Looked at three times within the silence, so a dead node's calls close within 4/3 of it.
        self.interval_s = max(0.2, silent_after_s / 3)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-silent-nodes")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            for calls in self.sweeps:
                try:
                    await calls.close_calls_of_silent_nodes(self.silent_after_s)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database is away, or the leadership moved: the next turn retries
                    log.exception("closing the calls of silent voice nodes failed")


@dataclass(eq=False, slots=True)
class CallStep(AcdCommand[list[r.Output]]):
    """An engine step of a call that takes along the call legs finished so far, written in its
    transaction. Not frozen: its handler moves the waiting legs into ``legs`` (kept across a retry of
    the batch), so that the caller can settle them after the commit or hand them back on failure."""

    step: EngineCommand
    legs: list[_PendingLeg] = field(default_factory=list)
    starting: bool = True  # counted in VoiceCalls' commands about to start until its prepare runs
    # The VoiceCalls (its run_id) that sent it: a command a standby forwarded runs on the leader,
    # whose legs and counter are not the sender's.
    origin: str = ""


class _CallStepHandler(CommandHandler[Any]):
    prepares = True

    def __init__(self, calls: VoiceCalls) -> None:
        self.calls = calls

    async def prepare(self, uow: UnitOfWork, command: CallStep) -> None:
        await self.calls.take_legs(uow, command)

    def decide(
        self, engine: r.RoutingEngine, command: CallStep, prepared: None, now: float
    ) -> list[r.Output]:
        return engine_step(command.step, engine, now)

    async def finish(
        self, uow: UnitOfWork, command: CallStep, outputs: list[r.Output], prepared: None
    ) -> list[r.Output]:
        return outputs


async def _leg_subjects(s: AsyncSession, ids: list[int]) -> dict[int, EventSubject]:
    return {row.id: row for row in await s.execute(_LEG_SUBJECTS, {"ids": ids})}


def _settle(legs: list[_PendingLeg], error: BaseException | None = None) -> None:
    for *_, done in legs:
        if not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)


def _phone(caller: str | None) -> str | None:
    """The caller's number as the CRM stores phones, or ``None`` for anonymous / non-numeric ids."""
    if not caller:
        return None
    digits = re.sub(r"[^\d+]", "", caller)
    return digits if len(digits.lstrip("+")) >= 3 else None


# ====================================================================== the voice channel's interface
@dataclass(frozen=True, slots=True)
class LiveCall:
    """A live call as the desk's call panel shows it."""

    interaction_id: int
    state: str  # queued (waiting, or back in the queue after a transfer), bridged, external ...
    held: bool
    hold_synced: bool  # the caller's session agrees with ``held`` (no re-INVITE in flight)
    caller: str
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConferenceTarget:
    """Whom an agent brings into a three-way conference: exactly one of a colleague (an agent id: their
    registered phone rings) and an external number (dialled through a carrier trunk)."""

    agent_id: int | None = None
    number: str | None = None

    def __post_init__(self) -> None:
        if (self.agent_id is None) == (self.number is None):
            raise ValueError("a conference target is exactly one of an agent and a number")


@dataclass(frozen=True, slots=True)
class TrunkState:
    """A carrier trunk's registration and load, for administrators."""

    name: str
    host: str
    port: int
    transport: str
    registers: bool
    registered: bool
    registration_state: str
    registered_for_s: float | None
    last_error: str | None
    active_calls: int
    max_calls: int


class CallControl(Protocol):
    """What the web layer may ask of the running voice channel (agent call control, click-to-call,
    trunk state). Implemented by :class:`~frontoffice.channels.voice.service.VoiceService`, registered
    in ``bootstrap.py`` as ``Container.call_control``; every call raises :class:`NotFound` for an
    interaction without a live call on this node and :class:`Conflict` when the call's state forbids
    the command."""

    def call_state(self, interaction_id: int) -> LiveCall: ...

    def hold(self, interaction_id: int) -> None: ...

    def resume(self, interaction_id: int) -> None: ...

    def hang_up(self, interaction_id: int) -> None: ...

    async def transfer_out(self, interaction_id: int, number: str, *, trunk: str | None = None) -> None:
        """Blind transfer to an external number through a trunk."""

    async def conference(self, interaction_id: int, target: ConferenceTarget) -> None:
        """Bring a third party into the connected call: once it answers, caller, agent and third party
        hear each other (a three-way conference); a third party that does not answer changes nothing."""

    async def consult(self, interaction_id: int, target: ConferenceTarget) -> None:
        """Attended transfer: hold the caller and call ``target`` (the consultation leg)."""

    def complete_transfer(self, interaction_id: int) -> None:
        """Attended transfer: bridge the caller to the consulted party; the agent leaves and a
        colleague gets the contact (:class:`Conflict` ``colleague-not-signed-in`` when the ACD could
        not give it to them: nothing changes)."""

    def cancel_consultation(self, interaction_id: int) -> None:
        """Attended transfer given up: hang up the consulted party, back to the caller off hold."""

    async def click_to_call(
        self, user_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        """Ring the agent's phone, then dial ``number``; returns the outbound interaction's id."""

    def trunk_states(self) -> list[TrunkState]: ...


def _voice_node(call: Interaction) -> str:
    """The voice node that took ``call`` (recorded with it when it arrived)."""
    return str((call.attributes or {}).get("voice_node") or "")


def _aware(at: datetime) -> datetime:
    # SQLite gives back naive datetimes; they are UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _lost_leg(
    leg: str, call_id: str, start: datetime, ended: datetime, agent_id: int | None
) -> dict[str, Any]:
    """A call leg that was up when its voice node died, as ``channels/voice/call_records.py`` writes
    legs: answered (a caller waiting in the queue hears music; an agent's leg was talking), ended by
    :data:`LOST_NODE_FAILURE`."""
    seconds = round(max(0.0, (ended - start).total_seconds()), 3)
    return {
        "leg": leg,
        "call_id": call_id,
        "peer": "",
        "agent_id": agent_id,
        "transfer": False,
        "setup_at": start.isoformat(),
        "ringing_at": start.isoformat(),
        "answered_at": start.isoformat(),
        "ended_at": ended.isoformat(),
        "status": 200,
        "cause": LOST_NODE_FAILURE,
        "ring_s": 0.0,
        "talk_s": seconds,
        "duration_s": seconds,
        "foreign_packets": None,
    }
