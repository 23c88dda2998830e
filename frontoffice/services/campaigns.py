"""Outbound campaigns: their settings and life cycle, their contact lists (CSV import with
line-numbered errors, or a CRM segment), agents' dispositions, callbacks and preview, and what a
supervisor watches. The dialling itself (claiming contacts, outcomes, recovery after a restart) is
:mod:`frontoffice.services.campaign_attempts`; the live scheduler is
:mod:`frontoffice.services.campaign_dialler`.

A campaign's ``state``: ``draft`` → ``running`` ⇄ ``paused``; ``running``/``paused`` → ``stopped``
(``start`` again resumes a stopped one); ``running`` → ``finished`` once no contact is left to try.
Only a running campaign dials; pausing or stopping places no new call and lets calls in flight end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import IdentityKind
from frontoffice.store.tables import (
    Campaign,
    CampaignContact,
    Customer,
    CustomerProject,
    CustomerTag,
    DialAttempt,
    Identity,
    Interaction,
    Project,
    Queue,
    User,
)

from . import campaign_rules as rules
from .campaign_schemas import (
    AgentShare,
    AttemptOut,
    CallbackIn,
    CampaignIn,
    CampaignMode,
    CampaignOut,
    CampaignPatch,
    CampaignProgressOut,
    CampaignSettings,
    CampaignState,
    ContactOut,
    ContactState,
    DeskCampaignOut,
    DispositionIn,
    PreviewOut,
    RetryRuleIn,
    SegmentIn,
    SkipIn,
    WindowIn,
)
from .context import Actor, Clock, audit, system_clock
from .csv_files import read_rows
from .identities import normalize_identity
from .schemas import ImportReport, ImportRowError, Page

__all__ = ["CSV_CONTACT_COLUMNS", "Campaigns", "campaign_out"]

# Columns a contact list may have; any other column is kept with the contact (``data``) and shown on
# the agent's card. Only ``phone`` is required.
CSV_CONTACT_COLUMNS = ("phone", "name", "time_zone", "priority")
MAX_IMPORT_ROWS = 200_000
MAX_SEGMENT = 200_000
PAGE_MAX = 500
# State moves: action -> (states it may start from, state it leads to).
_MOVES: dict[str, tuple[frozenset[CampaignState], CampaignState]] = {
    "start": (frozenset({CampaignState.DRAFT, CampaignState.STOPPED}), CampaignState.RUNNING),
    "pause": (frozenset({CampaignState.RUNNING}), CampaignState.PAUSED),
    "resume": (frozenset({CampaignState.PAUSED}), CampaignState.RUNNING),
    "stop": (frozenset({CampaignState.RUNNING, CampaignState.PAUSED}), CampaignState.STOPPED),
}
# Contacts that count as still to be worked.
OPEN_STATES = (ContactState.PENDING.value, ContactState.DIALLING.value, ContactState.PREVIEW.value)


def campaign_out(c: Campaign, counts: dict[str, int] | None = None) -> CampaignOut:
    message = c.message or {}
    return CampaignOut(
        id=c.id,
        name=c.name,
        mode=c.mode,
        state=c.state,
        project_id=c.project_id,
        queue_id=c.queue_id,
        caller_id=c.caller_id,
        trunk=c.trunk,
        priority=c.priority,
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        windows=[WindowIn.model_validate(w) for w in (c.windows or {}).get("windows", [])],
        retry={k: RetryRuleIn.model_validate(v) for k, v in (c.retry or {}).items()},
        dispositions=list((c.dispositions or {}).get("codes", [])),
        message_text=message.get("text", ""),
        message_language=message.get("language", "en"),
        message_audio=bool(message.get("wav")),
        settings=CampaignSettings.model_validate(c.settings or {}),
        contacts=counts or {},
        state_changed_at=c.state_changed_at,
    )


class Campaigns:
    """Campaign use cases, one transaction each. ``on_change`` is told when a campaign's state or
    settings change (the dialler re-reads its running campaigns)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        region: str,
        clock: Clock = system_clock,
        default_zone: str = "UTC",
    ) -> None:
        self.sessions = sessions
        self.region = region
        self.clock = clock
        self.default_zone = default_zone
        self.listeners: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    # ------------------------------------------------------------------ campaigns
    async def create(self, actor: Actor, data: CampaignIn) -> CampaignOut:
        actor.require("routing.write")
        now = self.clock()
        async with self.sessions.begin() as s:
            await self._check_refs(s, actor, data.project_id, data.queue_id, data.mode)
            campaign = Campaign(
                name=data.name,
                mode=data.mode.value,
                state=CampaignState.DRAFT.value,
                project_id=data.project_id,
                queue_id=data.queue_id,
                caller_id=data.caller_id,
                trunk=data.trunk,
                priority=data.priority,
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                windows={"windows": [w.model_dump() for w in data.windows]},
                retry={k: v.model_dump() for k, v in data.retry.items()},
                dispositions={"codes": data.dispositions},
                message={"text": data.message_text, "language": data.message_language},
                settings=data.settings.model_dump(),
                created_at=now,
                updated_at=now,
                state_changed_at=now,
            )
            s.add(campaign)
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict("A campaign of this name exists", error_id="campaign-name-taken") from None
            audit(s, actor, "campaign.create", "campaign", campaign.id, name=data.name, mode=data.mode.value)
            return campaign_out(campaign)

    async def _check_refs(
        self, s: AsyncSession, actor: Actor, project_id: int | None, queue_id: int | None, mode: CampaignMode
    ) -> None:
        if project_id is not None and (
            await s.get(Project, project_id) is None or not actor.sees_project(project_id)
        ):
            raise NotFound("No such project", error_id="no-such-project", project_id=project_id)
        if queue_id is not None and await s.get(Queue, queue_id) is None:
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)

    async def _campaign(
        self, s: AsyncSession, actor: Actor, campaign_id: int, *, lock: bool = False
    ) -> Campaign:
        campaign = await s.get(Campaign, campaign_id, with_for_update=lock)
        if campaign is None or not actor.sees_project(campaign.project_id):
            raise NotFound("No such campaign", error_id="no-such-campaign", campaign_id=campaign_id)
        return campaign

    async def get(self, actor: Actor, campaign_id: int) -> CampaignOut:
        actor.require("routing.read")
        async with self.sessions() as s:
            campaign = await self._campaign(s, actor, campaign_id)
            return campaign_out(campaign, await self._counts(s, campaign_id))

    async def _counts(self, s: AsyncSession, campaign_id: int) -> dict[str, int]:
        rows = await s.execute(
            select(CampaignContact.state, func.count())
            .where(CampaignContact.campaign_id == campaign_id)
            .group_by(CampaignContact.state)
        )
        return {state: count for state, count in rows}

    async def all(self, actor: Actor) -> list[CampaignOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            campaigns = [
                c
                for c in await s.scalars(select(Campaign).order_by(Campaign.id))
                if actor.sees_project(c.project_id)
            ]
            counts: dict[int, dict[str, int]] = {}
            rows = await s.execute(
                select(CampaignContact.campaign_id, CampaignContact.state, func.count()).group_by(
                    CampaignContact.campaign_id, CampaignContact.state
                )
            )
            for campaign_id, state, count in rows:
                counts.setdefault(campaign_id, {})[state] = count
            return [campaign_out(c, counts.get(c.id, {})) for c in campaigns]

    async def update(self, actor: Actor, campaign_id: int, patch: CampaignPatch) -> CampaignOut:
        actor.require("routing.write")
        fields = patch.model_fields_set
        async with self.sessions.begin() as s:
            c = await self._campaign(s, actor, campaign_id, lock=True)
            if "queue_id" in fields or "mode" in fields:
                await self._check_refs(s, actor, None, patch.queue_id, patch.mode or CampaignMode(c.mode))
            for name in ("name", "queue_id", "caller_id", "trunk", "priority", "starts_at", "ends_at"):
                if name in fields:
                    setattr(c, name, getattr(patch, name))
            if patch.mode is not None:
                c.mode = patch.mode.value
            if patch.windows is not None:
                c.windows = {"windows": [w.model_dump() for w in patch.windows]}
            if patch.retry is not None:
                c.retry = {k: v.model_dump() for k, v in patch.retry.items()}
            if patch.dispositions is not None:
                c.dispositions = {"codes": patch.dispositions}
            if patch.message_text is not None or patch.message_language is not None:
                message = dict(c.message or {})
                if patch.message_text is not None and patch.message_text != message.get("text"):
                    message["text"] = patch.message_text
                    message.pop("wav", None)  # rendered from the old text: render again
                if patch.message_language is not None:
                    message["language"] = patch.message_language
                c.message = message
            if patch.settings is not None:
                c.settings = patch.settings.model_dump()
            c.updated_at = self.clock()
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict("A campaign of this name exists", error_id="campaign-name-taken") from None
            audit(s, actor, "campaign.update", "campaign", campaign_id, fields=sorted(fields))
            out = campaign_out(c, await self._counts(s, campaign_id))
        self._changed()
        return out

    async def set_message_audio(self, actor: Actor | None, campaign_id: int, sha256: str | None) -> None:
        """The message's audio (a blob of 8 kHz mono 16-bit WAV), uploaded or rendered by the TTS job."""
        async with self.sessions.begin() as s:
            c = await self._campaign(s, actor or Actor.system(), campaign_id, lock=True)
            message = dict(c.message or {})
            if sha256 is None:
                message.pop("wav", None)
            else:
                message["wav"] = sha256
            c.message = message
        self._changed()

    async def message_of(self, campaign_id: int) -> dict[str, Any]:
        async with self.sessions() as s:
            c = await s.get(Campaign, campaign_id)
            return {**(c.message or {}), "mode": c.mode} if c is not None else {}

    async def move(self, actor: Actor, campaign_id: int, action: str) -> CampaignOut:
        """``start``, ``pause``, ``resume`` or ``stop``; a repeated action (already in the state it
        leads to) answers the campaign as it is."""
        actor.require("agents.supervise")
        if action not in _MOVES:
            raise InvalidInput("Unknown action", error_id="unknown-campaign-action", action=action)
        sources, target = _MOVES[action]
        async with self.sessions.begin() as s:
            c = await self._campaign(s, actor, campaign_id, lock=True)
            state = CampaignState(c.state)
            if state is not target:
                if state not in sources:
                    raise Conflict(
                        f"A {state.value} campaign cannot {action}",
                        error_id="campaign-state",
                        state=state.value,
                        action=action,
                    )
                if target is CampaignState.RUNNING:
                    if c.queue_id is None and c.mode != CampaignMode.NOTIFICATION.value:
                        raise Conflict("The campaign has no queue", error_id="campaign-without-queue")
                    if (
                        c.mode == CampaignMode.NOTIFICATION.value
                        and not (c.message or {}).get("text")
                        and not (c.message or {}).get("wav")
                    ):
                        raise Conflict("A notification needs a message", error_id="campaign-without-message")
                c.state = target.value
                c.state_changed_at = self.clock()
                audit(s, actor, f"campaign.{action}", "campaign", campaign_id)
            out = campaign_out(c, await self._counts(s, campaign_id))
        self._changed()
        return out

    async def delete(self, actor: Actor, campaign_id: int) -> None:
        actor.require("routing.write")
        async with self.sessions.begin() as s:
            c = await self._campaign(s, actor, campaign_id, lock=True)
            if c.state == CampaignState.RUNNING.value:
                raise Conflict("Stop the campaign first", error_id="campaign-running")
            await s.delete(c)
            audit(s, actor, "campaign.delete", "campaign", campaign_id)
        self._changed()

    # ------------------------------------------------------------------ the list
    def _e164(self, raw: str) -> str:
        return normalize_identity(IdentityKind.PHONE, raw, self.region)

    async def import_contacts(
        self, actor: Actor, campaign_id: int, data: bytes, *, dry_run: bool = False
    ) -> ImportReport:
        """Contacts from a CSV (``phone`` required; ``name``, ``time_zone``, ``priority`` optional; other
        columns kept for the agent's card). All or nothing: any bad row is reported with its line
        number (the file's, header = line 1) and nothing is added. A number already on the list (or
        twice in the file) is added once. Each number is linked to the CRM customer who has it."""
        actor.require("routing.write")
        errors: list[ImportRowError] = []
        parsed: dict[str, dict[str, Any]] = {}
        table = read_rows(data, required="phone", max_rows=MAX_IMPORT_ROWS)
        rows = len(table)
        for line, row in table:
            raw = (row.get("phone") or "").strip()
            try:
                phone = self._e164(raw)
            except InvalidInput:
                errors.append(
                    ImportRowError(line=line, field="phone", message=f"not a phone number: {raw!r}")
                )
                continue
            zone = (row.get("time_zone") or "").strip()
            if zone and not rules.is_zone(zone):
                errors.append(
                    ImportRowError(line=line, field="time_zone", message=f"unknown time zone: {zone!r}")
                )
                continue
            priority_cell = (row.get("priority") or "").strip()
            try:
                priority = int(priority_cell) if priority_cell else 0
            except ValueError:
                errors.append(ImportRowError(line=line, field="priority", message="not a whole number"))
                continue
            extra = {k: (v or "")[:500] for k, v in row.items() if k and k not in CSV_CONTACT_COLUMNS and v}
            parsed.setdefault(
                phone,
                {
                    "name": (row.get("name") or "").strip()[:200],
                    "time_zone": zone,
                    "priority": priority,
                    "data": extra,
                    "line": line,
                },
            )
        created = 0
        applied = False
        if not errors and not dry_run:
            created = await self._add_contacts(actor, campaign_id, parsed)
            applied = True
        elif not errors:
            async with self.sessions() as s:
                await self._campaign(s, actor, campaign_id)
        return ImportReport(
            dry_run=dry_run,
            mode="all_or_nothing",
            rows=rows,
            valid=rows - len(errors),
            created=created,
            errors=errors,
            applied=applied,
        )

    async def _add_contacts(self, actor: Actor, campaign_id: int, contacts: dict[str, dict[str, Any]]) -> int:
        now = self.clock()
        async with self.sessions.begin() as s:
            campaign = await self._campaign(s, actor, campaign_id, lock=True)
            if campaign.state == CampaignState.FINISHED.value:
                campaign.state = CampaignState.RUNNING.value  # new numbers to call: it goes on
                campaign.state_changed_at = now
            phones = list(contacts)
            known: set[str] = set()
            customers: dict[str, int] = {}
            for chunk in range(0, len(phones), 500):
                part = phones[chunk : chunk + 500]
                known |= set(
                    await s.scalars(
                        select(CampaignContact.phone).where(
                            CampaignContact.campaign_id == campaign_id, CampaignContact.phone.in_(part)
                        )
                    )
                )
                for value, customer_id in await s.execute(
                    select(Identity.value, Identity.customer_id).where(
                        Identity.kind == IdentityKind.PHONE.value, Identity.value.in_(part)
                    )
                ):
                    customers[value] = customer_id
            created = 0
            for phone, values in contacts.items():
                if phone in known:
                    continue
                zone = values.get("time_zone") or rules.zone_of(phone, self.default_zone)
                s.add(
                    CampaignContact(
                        campaign_id=campaign_id,
                        phone=phone,
                        customer_id=values.get("customer_id") or customers.get(phone),
                        name=values.get("name", ""),
                        time_zone=zone,
                        priority=values.get("priority", 0),
                        state=ContactState.PENDING.value,
                        attempts=0,
                        data=values.get("data", {}),
                        line=values.get("line"),
                        created_at=now,
                        updated_at=now,
                    )
                )
                created += 1
            audit(s, actor, "campaign.contacts_added", "campaign", campaign_id, created=created)
        self._changed()
        return created

    async def add_segment(self, actor: Actor, campaign_id: int, segment: SegmentIn) -> int:
        """Every CRM customer of the segment with a phone number (their first), added once."""
        actor.require("routing.write")
        stmt = select(Customer.id, Customer.first_name, Customer.last_name, Customer.custom).where(
            Customer.merged_into_id.is_(None)
        )
        for tag in segment.tags:
            stmt = stmt.where(Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag == tag)))
        if segment.project_id is not None:
            stmt = stmt.where(
                Customer.id.in_(
                    select(CustomerProject.customer_id).where(
                        CustomerProject.project_id == segment.project_id
                    )
                )
                | Customer.id.in_(
                    select(Interaction.customer_id).where(Interaction.project_id == segment.project_id)
                )
            )
        contacts: dict[str, dict[str, Any]] = {}
        async with self.sessions() as s:
            found = [
                row
                for row in await s.execute(stmt.order_by(Customer.id).limit(MAX_SEGMENT))
                if all(str((row.custom or {}).get(k, "")) == v for k, v in segment.custom.items())
            ]
            ids = [row.id for row in found]
            phones: dict[int, str] = {}
            for chunk in range(0, len(ids), 500):
                for customer_id, value in await s.execute(
                    select(Identity.customer_id, Identity.value)
                    .where(
                        Identity.kind == IdentityKind.PHONE.value,
                        Identity.customer_id.in_(ids[chunk : chunk + 500]),
                    )
                    .order_by(Identity.id)
                ):
                    phones.setdefault(customer_id, value)
        for row in found:
            phone = phones.get(row.id)
            if phone is not None:
                name = f"{row.first_name} {row.last_name}".strip()
                contacts.setdefault(phone, {"name": name, "customer_id": row.id, "data": {}})
        return await self._add_contacts(actor, campaign_id, contacts)

    async def contacts(
        self, actor: Actor, campaign_id: int, *, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[ContactOut]:
        actor.require("routing.read")
        limit = max(1, min(limit, PAGE_MAX))
        stmt = select(CampaignContact).where(CampaignContact.campaign_id == campaign_id)
        if state:
            stmt = stmt.where(CampaignContact.state == state)
        async with self.sessions() as s:
            await self._campaign(s, actor, campaign_id)
            rows = list(await s.scalars(stmt.order_by(CampaignContact.id).offset(offset).limit(limit + 1)))
        return Page(
            items=[ContactOut.model_validate(r) for r in rows[:limit]],
            next_cursor=str(offset + limit) if len(rows) > limit else None,
        )

    async def attempts(
        self, actor: Actor, campaign_id: int, *, limit: int = 100, offset: int = 0
    ) -> Page[AttemptOut]:
        """The dial attempts log, newest first: every DNC check and its result, every outcome."""
        actor.require("routing.read")
        limit = max(1, min(limit, PAGE_MAX))
        async with self.sessions() as s:
            await self._campaign(s, actor, campaign_id)
            rows = list(
                await s.scalars(
                    select(DialAttempt)
                    .where(DialAttempt.campaign_id == campaign_id)
                    .order_by(DialAttempt.id.desc())
                    .offset(offset)
                    .limit(limit + 1)
                )
            )
        return Page(
            items=[AttemptOut.model_validate(r) for r in rows[:limit]],
            next_cursor=str(offset + limit) if len(rows) > limit else None,
        )

    async def amd_audio(self, actor: Actor, campaign_id: int, attempt_id: int) -> Path:
        """The WAV of the audio answering-machine detection analysed on an attempt, for review (the
        caller checks the file exists). It is one of the call's recordings: gone when they are
        (retention, erasure)."""
        actor.require("routing.read")
        actor.require("interactions.read")
        async with self.sessions() as s:
            await self._campaign(s, actor, campaign_id)
            attempt = await s.get(DialAttempt, attempt_id)
            if attempt is None or attempt.campaign_id != campaign_id:
                raise NotFound("No such attempt", error_id="no-such-attempt", attempt_id=attempt_id)
            row = None if attempt.interaction_id is None else await s.get(Interaction, attempt.interaction_id)
            recordings = [] if row is None else (row.attributes or {}).get("recordings", [])
        for stored in recordings:
            path = Path(stored)
            if attempt.amd_audio is not None and path.name == attempt.amd_audio:
                return path
        raise NotFound("No answering-machine detection audio for this attempt", error_id="no-amd-audio")

    # ------------------------------------------------------------------ agents: dispositions, callbacks
    async def _contact(
        self, s: AsyncSession, actor: Actor, contact_id: int
    ) -> tuple[CampaignContact, Campaign]:
        contact = await s.get(CampaignContact, contact_id, with_for_update=True)
        campaign = None if contact is None else await s.get(Campaign, contact.campaign_id)
        if contact is None or campaign is None or not actor.sees_project(campaign.project_id):
            raise NotFound(
                "No such campaign contact", error_id="no-such-campaign-contact", contact_id=contact_id
            )
        return contact, campaign

    async def set_disposition(self, actor: Actor, contact_id: int, data: DispositionIn) -> ContactOut:
        """The agent's result for the contact (one of the campaign's dispositions). With a
        ``callback_at`` the contact is called again then (for the agent, or for the team)."""
        actor.require("interactions.write")
        async with self.sessions.begin() as s:
            contact, campaign = await self._contact(s, actor, contact_id)
            codes = list((campaign.dispositions or {}).get("codes", []))
            if codes and data.code not in codes:
                raise InvalidInput(
                    "Not a disposition of this campaign",
                    error_id="unknown-disposition",
                    code=data.code,
                    codes=codes,
                )
            contact.disposition = data.code
            now = self.clock()
            if data.callback_at is not None:
                self._callback(contact, actor, data.callback_at, data.callback_to, now)
            elif contact.state in (
                ContactState.PREVIEW.value,
                ContactState.DIALLING.value,
                ContactState.PENDING.value,
            ):
                contact.state = ContactState.DONE.value
                contact.agent_id = None
                contact.next_attempt_at = None
            contact.updated_at = now
            audit(s, actor, "campaign.disposition", "campaign_contact", contact_id, code=data.code)
            out = ContactOut.model_validate(contact)
        self._changed()
        return out

    def _callback(self, contact: CampaignContact, actor: Actor, at: datetime, to: str, now: datetime) -> None:
        if at.tzinfo is None:
            raise InvalidInput("Give the time with its offset", error_id="naive-datetime")
        if at < now - timedelta(minutes=1):
            raise InvalidInput("The callback is in the past", error_id="callback-in-the-past")
        contact.state = ContactState.PENDING.value
        contact.callback_at = at
        contact.next_attempt_at = at
        contact.callback_agent_id = actor.user_id if to == "me" else None
        contact.agent_id = None

    async def schedule_callback(self, actor: Actor, contact_id: int, data: CallbackIn) -> ContactOut:
        """Call this contact again at ``data.at``: for the agent themselves (the dialler offers the
        answered call to them only; in preview it lands on their desk first) or for the team."""
        actor.require("interactions.write")
        async with self.sessions.begin() as s:
            contact, campaign = await self._contact(s, actor, contact_id)
            now = self.clock()
            self._callback(contact, actor, data.at, data.to, now)
            contact.updated_at = now
            audit(
                s,
                actor,
                "campaign.callback",
                "campaign_contact",
                contact_id,
                at=data.at.isoformat(),
                to=data.to,
            )
            out = ContactOut.model_validate(contact)
            if campaign.state == CampaignState.FINISHED.value:
                campaign.state = CampaignState.RUNNING.value
                campaign.state_changed_at = now
        self._changed()
        return out

    async def my_callbacks(self, actor: Actor) -> list[ContactOut]:
        actor.require("interactions.read")
        async with self.sessions() as s:
            rows = await s.scalars(
                select(CampaignContact)
                .where(
                    CampaignContact.callback_agent_id == actor.user_id,
                    CampaignContact.state == ContactState.PENDING.value,
                )
                .order_by(CampaignContact.next_attempt_at)
                .limit(100)
            )
            return [ContactOut.model_validate(r) for r in rows]

    # ------------------------------------------------------------------ preview
    async def preview_next(self, actor: Actor, campaign_id: int) -> PreviewOut | None:
        """The contact this agent previews: the one they hold already, else the next due (their own
        callbacks first) whose calling window is open, taken for them in this transaction. ``None``
        when nothing is due."""
        actor.require("interactions.write")
        now = self.clock()
        async with self.sessions.begin() as s:
            campaign = await self._campaign(s, actor, campaign_id)
            if campaign.mode != CampaignMode.PREVIEW.value:
                raise Conflict("Not a preview campaign", error_id="campaign-not-preview")
            if campaign.state != CampaignState.RUNNING.value:
                raise Conflict(
                    "The campaign is not running", error_id="campaign-not-running", state=campaign.state
                )
            held = await s.scalar(
                select(CampaignContact).where(
                    CampaignContact.campaign_id == campaign_id,
                    CampaignContact.state == ContactState.PREVIEW.value,
                    CampaignContact.agent_id == actor.user_id,
                )
            )
            if held is None:
                held = await self._take_for_preview(s, campaign, actor, now)
                if held is None:
                    return None
            return await self._preview_out(s, campaign, held)

    async def _take_for_preview(
        self, s: AsyncSession, campaign: Campaign, actor: Actor, now: datetime
    ) -> CampaignContact | None:
        windows = (campaign.windows or {}).get("windows", [])
        due = and_(
            CampaignContact.campaign_id == campaign.id,
            CampaignContact.state == ContactState.PENDING.value,
            (CampaignContact.next_attempt_at.is_(None)) | (CampaignContact.next_attempt_at <= now),
            (CampaignContact.callback_agent_id.is_(None))
            | (CampaignContact.callback_agent_id == actor.user_id),
        )
        candidates = await s.scalars(
            select(CampaignContact)
            .where(due)
            .order_by(
                (CampaignContact.callback_agent_id == actor.user_id).desc(),
                CampaignContact.priority.desc(),
                CampaignContact.next_attempt_at,
                CampaignContact.id,
            )
            .limit(50)
            .with_for_update(skip_locked=True)
        )
        for contact in candidates:
            opens = rules.window_opens(windows, contact.time_zone or self.default_zone, now)
            if opens is not None:
                contact.next_attempt_at = opens  # not now: it comes back when its window opens
                continue
            contact.state = ContactState.PREVIEW.value
            contact.agent_id = actor.user_id
            contact.updated_at = now
            return contact
        return None

    async def _preview_out(self, s: AsyncSession, campaign: Campaign, contact: CampaignContact) -> PreviewOut:
        customer = None
        if contact.customer_id is not None:
            row = await s.get(Customer, contact.customer_id)
            if row is not None:
                customer = {
                    "id": row.id,
                    "first_name": row.first_name,
                    "last_name": row.last_name,
                    "vip": row.vip,
                    "custom": {k: v for k, v in (row.custom or {}).items() if not k.startswith("sms_")},
                }
        attempts = await s.scalars(
            select(DialAttempt)
            .where(DialAttempt.contact_id == contact.id)
            .order_by(DialAttempt.id.desc())
            .limit(20)
        )
        return PreviewOut(
            contact=ContactOut.model_validate(contact),
            campaign=campaign.name,
            campaign_id=campaign.id,
            dispositions=list((campaign.dispositions or {}).get("codes", [])),
            customer=customer,
            attempts=[AttemptOut.model_validate(a) for a in attempts],
        )

    async def preview_skip(self, actor: Actor, contact_id: int, data: SkipIn) -> ContactOut:
        """The agent does not call this contact, saying why: it is not dialled by this campaign."""
        actor.require("interactions.write")
        async with self.sessions.begin() as s:
            contact, _ = await self._contact(s, actor, contact_id)
            if contact.state != ContactState.PREVIEW.value or contact.agent_id != actor.user_id:
                raise Conflict("This contact is not on your desk", error_id="contact-not-previewed")
            contact.state = ContactState.SKIPPED.value
            contact.skip_reason = data.reason
            contact.agent_id = None
            contact.updated_at = self.clock()
            audit(s, actor, "campaign.skip", "campaign_contact", contact_id, reason=data.reason)
            return ContactOut.model_validate(contact)

    # ------------------------------------------------------------------ the desk
    async def desk_campaigns(self, actor: Actor) -> list[DeskCampaignOut]:
        """Running and paused campaigns an agent works (preview ones take contacts from the desk)."""
        actor.require("interactions.write")
        async with self.sessions() as s:
            rows = await s.scalars(
                select(Campaign)
                .where(Campaign.state.in_([CampaignState.RUNNING.value, CampaignState.PAUSED.value]))
                .order_by(Campaign.priority.desc(), Campaign.id)
            )
            return [
                DeskCampaignOut(
                    id=c.id,
                    name=c.name,
                    mode=c.mode,
                    state=c.state,
                    dispositions=list((c.dispositions or {}).get("codes", [])),
                )
                for c in rows
                if actor.sees_project(c.project_id)
            ]

    async def current_contact(self, actor: Actor) -> PreviewOut | None:
        """The campaign contact of the agent's latest campaign call (progressive, predictive,
        notification's operator, or preview): what the desk's outbound card shows for the result."""
        actor.require("interactions.write")
        async with self.sessions() as s:
            attempt = await s.scalar(
                select(DialAttempt)
                .where(DialAttempt.agent_id == actor.user_id, DialAttempt.connected_at.is_not(None))
                .order_by(DialAttempt.id.desc())
                .limit(1)
            )
            if attempt is None:
                return None
            contact = await s.get(CampaignContact, attempt.contact_id)
            campaign = await s.get(Campaign, attempt.campaign_id)
            if contact is None or campaign is None:
                return None
            out = await self._preview_out(s, campaign, contact)
            return out.model_copy(update={"interaction_id": attempt.interaction_id})

    # ------------------------------------------------------------------ supervision
    async def progress(
        self, actor: Actor, campaign_id: int, *, effective_mode: str | None = None
    ) -> CampaignProgressOut:
        """Progress through the list, and the last hour's pace and rates; the agents' talk share is
        over the last hour too."""
        actor.require("routing.read")
        now = self.clock()
        hour_ago = now - timedelta(hours=1)
        async with self.sessions() as s:
            c = await self._campaign(s, actor, campaign_id)
            counts = await self._counts(s, campaign_id)
            attempts = list(
                await s.execute(
                    select(
                        DialAttempt.state,
                        DialAttempt.outcome,
                        DialAttempt.answered_at,
                        DialAttempt.connected_at,
                        DialAttempt.ended_at,
                        DialAttempt.agent_id,
                        DialAttempt.contact_id,
                    ).where(DialAttempt.campaign_id == campaign_id, DialAttempt.claimed_at >= hour_ago)
                )
            )
            confirmations: dict[str, int] = {
                str(k): v
                for k, v in await s.execute(
                    select(CampaignContact.confirmation, func.count())
                    .where(
                        CampaignContact.campaign_id == campaign_id, CampaignContact.confirmation.is_not(None)
                    )
                    .group_by(CampaignContact.confirmation)
                )
            }
            agent_ids = {a.agent_id for a in attempts if a.agent_id is not None}
            names = {
                u.id: u.display_name or u.username
                for u in (await s.scalars(select(User).where(User.id.in_(agent_ids))) if agent_ids else [])
            }
        dialled = [a for a in attempts if a.outcome != "dnc"]
        # Live answers: an answering machine that detection recognised (voicemail) is not one.
        voicemail = sum(1 for a in dialled if a.outcome == "voicemail")
        answered = sum(1 for a in dialled if a.answered_at is not None and a.outcome != "voicemail")
        ended = sum(1 for a in dialled if a.ended_at is not None)
        abandoned = sum(1 for a in dialled if a.outcome == "abandoned")
        in_flight = sum(1 for a in dialled if a.ended_at is None)
        talk: dict[int, list[float]] = {}
        for a in dialled:
            if a.agent_id is None or a.connected_at is None:
                continue
            end = a.ended_at or now
            talk.setdefault(a.agent_id, []).append(
                max(0.0, (end - max(a.connected_at, hour_ago)).total_seconds())
            )
        total = sum(counts.values())
        settled = sum(v for k, v in counts.items() if k not in OPEN_STATES)
        settings = CampaignSettings.model_validate(c.settings or {})
        return CampaignProgressOut(
            campaign_id=campaign_id,
            state=c.state,
            mode=c.mode,
            effective_mode=effective_mode or c.mode,
            contacts=counts,
            total=total,
            done_share=0.0 if total == 0 else round(settled / total, 4),
            in_flight=in_flight,
            attempts_last_hour=len(dialled),
            contacts_per_hour=float(len({a.contact_id for a in dialled})),
            answered=answered,
            voicemail=voicemail,
            answer_rate=0.0 if ended == 0 else round(answered / max(ended, answered), 4),
            abandoned=abandoned,
            abandon_rate=0.0 if answered == 0 else round(abandoned / answered, 4),
            abandon_cap=settings.abandon_cap,
            confirmations=confirmations,
            agents=[
                AgentShare(
                    agent_id=agent_id,
                    name=names.get(agent_id, str(agent_id)),
                    calls=len(spans),
                    talk_s=round(sum(spans), 1),
                    share=round(min(1.0, sum(spans) / 3600.0), 4),
                )
                for agent_id, spans in sorted(talk.items())
            ],
        )
