"""Personal data (152-FZ, GDPR; docs/privacy.md): one customer's data exported, one customer erased,
recordings and message content deleted after a retention period per project.

- **Export** (:class:`PersonalDataExportJob`, a background job): a ZIP with ``customer.json`` —
  the card, notes, contacts with their messages, tickets with their posts, deals, tasks — and the
  contacts' call recordings and message attachments as files. Audited (``customer.personal_data_export``).
- **Erasure** (:meth:`Privacy.erase`, one transaction): what identifies or describes the person goes
  — the card, identities, notes, tags, tasks, message bodies, subjects, addresses and attachments,
  raw messages, recordings, ticket posts and subjects, call peers in the event log — and what the
  statistics count stays: every contact keeps its channel, direction, times, queue, agent, state and
  disposition; tickets and deals stay without a customer. Audited (``customer.erase``), with counts,
  never with the erased values.
- **Retention** (:class:`RetentionJob`, scheduled by the server once a day): for each project with
  ``recordings_retention_days`` or ``messages_retention_days``, the recordings and the message content
  (bodies, HTML, attachments, raw messages) of its contacts older than that are deleted. The sweep is a
  job with one idempotency key per day, so it runs once a day whatever the number of nodes. The same
  sweep removes the change feeds' tombstones of deletions older than ``change_feed_retention_days``
  (:func:`frontoffice.services.change_feeds.prune_tombstones`).

Files (recordings, blobs) are deleted after the transaction that forgets them commits; a crash in
between leaves a file no row refers to, never a row without its file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, Field
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from frontoffice.domain.exceptions import Conflict, NotFound
from frontoffice.domain.model import InteractionState
from frontoffice.store.blobs import BlobStore
from frontoffice.store.tables import (
    Activity,
    Blob,
    Customer,
    CustomerProject,
    CustomerTag,
    Deal,
    Identity,
    Interaction,
    InteractionEvent,
    Message,
    MessageAttachment,
    Note,
    OutboxItem,
    Project,
    SiteSetting,
    Thread,
    Ticket,
    TicketPost,
)

from .change_feeds import DEFAULT_TOMBSTONE_DAYS, prune_tombstones
from .context import Actor, Clock, audit, system_clock
from .crm import customer_out
from .jobs import RESULT_KEEP_DAYS, JobContext, JobOut, JobOutcome, JobRunner
from .scope import visible_customer

__all__ = [
    "ERASED",
    "PERSONAL_DATA_JOB",
    "RETENTION_JOB",
    "ErasureOut",
    "PersonalDataExportJob",
    "Privacy",
    "RetentionIn",
    "RetentionJob",
    "RetentionOut",
]

PERSONAL_DATA_JOB = "customer.personal_data"
RETENTION_JOB = "privacy.retention"
# What an erased subject or ticket title reads: the record stays (statistics), its words go.
ERASED = "[erased]"
# Keys of an event's data that name the customer's address (a call leg's remote party).
PERSONAL_EVENT_KEYS = frozenset({"peer", "caller", "from", "to", "address", "from_address", "sender"})
# Contacts a retention batch handles per transaction.
RETENTION_BATCH = 500
_RETENTION_MARKS = "privacy.retention"
log = logging.getLogger("frontoffice.privacy")
_EVENTS = cast(Table, InteractionEvent.__table__)
_INTERACTIONS = cast(Table, Interaction.__table__)


class ErasureOut(BaseModel):
    """What an erasure did: how many records of each kind were deleted or anonymised."""

    customer_id: int
    deleted: dict[str, int]
    anonymised: dict[str, int]
    files_deleted: int


class RetentionIn(BaseModel):
    """A project's retention: days after a contact when its recordings / message content are
    deleted; null keeps them."""

    model_config = {"extra": "forbid"}

    recordings_retention_days: int | None = Field(default=None, ge=1, le=36_500)
    messages_retention_days: int | None = Field(default=None, ge=1, le=36_500)


class RetentionOut(RetentionIn):
    model_config = {"extra": "forbid"}

    project_id: int


@dataclass(slots=True)
class _Leftovers:
    """Files to delete once the transaction that forgot them has committed."""

    recordings: list[str]
    blobs: list[str]


def _finished_states() -> list[str]:
    return [s.value for s in InteractionState if s.is_final]


async def _customer_chain(s: AsyncSession, customer_id: int) -> list[int]:
    """The customer and the cards merged into it (and into those): one person."""
    chain = [customer_id]
    frontier = [customer_id]
    while frontier:
        frontier = list(await s.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier))))
        chain += frontier
    return chain


async def _customer_project(s: AsyncSession, ids: Sequence[int]) -> int | None:
    """The one project the customer belongs to (cards and contacts), or None (none or several)."""
    projects = set(
        await s.scalars(select(CustomerProject.project_id).where(CustomerProject.customer_id.in_(ids)))
    )
    projects |= set(
        await s.scalars(
            select(Interaction.project_id)
            .where(Interaction.customer_id.in_(ids), Interaction.project_id.is_not(None))
            .distinct()
        )
    )
    return next(iter(projects)) if len(projects) == 1 else None


async def _orphan_blobs(s: AsyncSession, shas: set[str]) -> list[str]:
    """Of ``shas``, the blobs no attachment and no raw message refers to any more: their rows are
    deleted in ``s``; their files are for the caller to delete after the commit."""
    if not shas:
        return []
    wanted = sorted(shas)
    used = set(await s.scalars(select(MessageAttachment.sha256).where(MessageAttachment.sha256.in_(wanted))))
    used |= set(await s.scalars(select(Message.raw_sha256).where(Message.raw_sha256.in_(wanted))))
    orphans = [sha for sha in wanted if sha not in used]
    if orphans:
        await s.execute(delete(Blob).where(Blob.sha256.in_(orphans)))
    return orphans


async def _clear_message_content(
    s: AsyncSession, message_ids: Sequence[int], *, subjects: bool
) -> tuple[int, set[str]]:
    """Delete the content of messages: bodies, HTML, attachments, raw message (and, on erasure,
    subject, addresses and external ids). Returns how many and the blobs they referred to."""
    values: dict[str, Any] = {"body": "", "html_body": None, "raw_sha256": None}
    if subjects:
        values |= {
            "subject": "",
            "sender": "",
            "recipients": {},
            "external_id": None,
            "rfc_message_id": None,
            "in_reply_to": None,
            "reference_ids": "",
            "delivery_error": None,
            "flags": {"erased": True},
        }
    shas: set[str] = set()
    for start in range(0, len(message_ids), RETENTION_BATCH):
        ids = list(message_ids[start : start + RETENTION_BATCH])
        shas |= set(
            await s.scalars(select(MessageAttachment.sha256).where(MessageAttachment.message_id.in_(ids)))
        )
        shas |= {
            sha
            for sha in await s.scalars(select(Message.raw_sha256).where(Message.id.in_(ids)))
            if sha is not None
        }
        await s.execute(delete(MessageAttachment).where(MessageAttachment.message_id.in_(ids)))
        await s.execute(update(Message).where(Message.id.in_(ids)).values(**values))
        # A reply's text is kept on its ticket post too.
        await s.execute(update(TicketPost).where(TicketPost.message_id.in_(ids)).values(body=""))
        if subjects:
            # Undelivered messages to the customer are not sent any more; the outbox keeps no copy of
            # what was sent (its payload: addresses and text) either.
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.message_id.in_(ids), OutboxItem.state == "queued")
                .values(state="cancelled")
            )
            await s.execute(
                update(OutboxItem).where(OutboxItem.message_id.in_(ids)).values(payload={}, last_error=None)
            )
    return len(message_ids), shas


def _delete_files(paths: Sequence[Path]) -> int:
    count = 0
    for path in paths:
        try:
            path.unlink()
            count += 1
        except FileNotFoundError:
            pass
    return count


class Privacy:
    """Erasure, retention settings and the personal data export (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        jobs: JobRunner,
        *,
        data_dir: Path,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.jobs = jobs
        self.data_dir = data_dir
        self.clock = clock

    # ------------------------------------------------------------------ export (a job)
    async def start_export(
        self, actor: Actor, customer_id: int, idempotency_key: str | None = None
    ) -> JobOut:
        """Queue the export of everything about one customer (a ZIP to download when it is done)."""
        actor.require("customers.export")
        async with self.sessions() as s:
            await visible_customer(s, actor, customer_id)  # 404 outside the user's projects
            project_id = await _customer_project(s, [customer_id])
        return await self.jobs.submit(
            actor,
            PERSONAL_DATA_JOB,
            {"customer_id": customer_id},
            idempotency_key=idempotency_key,
            project_id=project_id,
        )

    # ------------------------------------------------------------------ erasure
    async def erase(self, actor: Actor, customer_id: int) -> ErasureOut:
        """Erase one customer in one transaction (see the module docstring); refused while one of
        their contacts is still live (waiting, offered, talking): finish or withdraw it first."""
        actor.require("customers.delete")
        async with self.sessions.begin() as s:
            await visible_customer(s, actor, customer_id)
            chain = await _customer_chain(s, customer_id)
            project_id = await _customer_project(s, chain)
            interactions = list(
                await s.execute(
                    select(Interaction.id, Interaction.state, Interaction.attributes).where(
                        Interaction.customer_id.in_(chain)
                    )
                )
            )
            live = [i for i, state, _ in interactions if state not in _finished_states()]
            if live:
                raise Conflict(
                    "The customer has a contact in progress; erase them when it has ended",
                    error_id="customer-has-live-contacts",
                    interaction_ids=live[:20],
                )
            interaction_ids = [i for i, _, _ in interactions]
            recordings = [p for _, _, attrs in interactions for p in (attrs or {}).get("recordings", [])]
            anonymised: dict[str, int] = {}
            deleted: dict[str, int] = {}
            shas: set[str] = set()
            for start in range(0, len(interaction_ids), RETENTION_BATCH):
                ids = interaction_ids[start : start + RETENTION_BATCH]
                message_ids = list(await s.scalars(select(Message.id).where(Message.interaction_id.in_(ids))))
                count, found = await _clear_message_content(s, message_ids, subjects=True)
                anonymised["messages"] = anonymised.get("messages", 0) + count
                shas |= found
                await s.execute(
                    update(Interaction)
                    .where(Interaction.id.in_(ids))
                    .values(
                        customer_id=None,
                        subject="",
                        from_address="",
                        to_address="",
                        external_ref=None,
                        attributes={"erased": True},
                    )
                )
                anonymised["interactions"] = anonymised.get("interactions", 0) + len(ids)
                events = list(
                    await s.execute(
                        select(InteractionEvent.id, InteractionEvent.data).where(
                            InteractionEvent.interaction_id.in_(ids)
                        )
                    )
                )
                changed = [
                    {
                        "b_id": event_id,
                        "data": {k: v for k, v in data.items() if k not in PERSONAL_EVENT_KEYS},
                    }
                    for event_id, data in events
                    if data and PERSONAL_EVENT_KEYS & set(data)
                ]
                if changed:
                    table = _EVENTS
                    await s.execute(
                        update(table)
                        .where(table.c.id == bindparam("b_id"))
                        .values(data=bindparam("v_data", type_=table.c.data.type)),
                        changed,
                    )
                anonymised["events"] = anonymised.get("events", 0) + len(changed)
            threads = await s.execute(
                update(Thread).where(Thread.customer_id.in_(chain)).values(customer_id=None, subject="")
            )
            anonymised["threads"] = threads.rowcount  # type: ignore[attr-defined]
            ticket_ids = list(await s.scalars(select(Ticket.id).where(Ticket.customer_id.in_(chain))))
            if ticket_ids:
                await s.execute(
                    update(Ticket)
                    .where(Ticket.id.in_(ticket_ids))
                    .values(customer_id=None, subject=ERASED, description="")
                )
                await s.execute(
                    update(TicketPost).where(TicketPost.ticket_id.in_(ticket_ids)).values(body="")
                )
                await s.execute(
                    update(Activity).where(Activity.ticket_id.in_(ticket_ids)).values(title=ERASED, note="")
                )
            anonymised["tickets"] = len(ticket_ids)
            deals = await s.execute(update(Deal).where(Deal.customer_id.in_(chain)).values(customer_id=None))
            anonymised["deals"] = deals.rowcount  # type: ignore[attr-defined]
            for name, owned in (
                ("identities", Identity),
                ("notes", Note),
                ("tasks", Activity),
                ("tags", CustomerTag),
                ("project_links", CustomerProject),
            ):
                result = await s.execute(delete(owned).where(owned.customer_id.in_(chain)))
                deleted[name] = result.rowcount  # type: ignore[attr-defined]
            for gone in reversed(chain):  # children first: a merged card points at its survivor
                await s.execute(delete(Customer).where(Customer.id == gone))
            deleted["customers"] = len(chain)
            orphans = await _orphan_blobs(s, shas)
            audit(
                s,
                actor,
                "customer.erase",
                "customer",
                customer_id,
                self.clock(),
                project_id=project_id,
                merged_ids=chain[1:],
                deleted=deleted,
                anonymised=anonymised,
                recordings=len(recordings),
                attachments=len(orphans),
            )
        files = await self._delete_files(_Leftovers(recordings, orphans))
        return ErasureOut(
            customer_id=customer_id, deleted=deleted, anonymised=anonymised, files_deleted=files
        )

    async def _delete_files(self, leftovers: _Leftovers) -> int:
        paths = [self._own_file(Path(p)) for p in leftovers.recordings]
        paths += [self.blobs.path(sha) for sha in leftovers.blobs]
        return await asyncio.to_thread(_delete_files, [p for p in paths if p is not None])

    def _own_file(self, path: Path) -> Path | None:
        """A recording path from the store, if it is under the data directory (never anything else)."""
        try:
            resolved = path.resolve()
            resolved.relative_to(self.data_dir.resolve())
        except (OSError, ValueError):
            return None
        return resolved

    # ------------------------------------------------------------------ retention settings
    async def retention(self, actor: Actor, project_id: int) -> RetentionOut:
        actor.require("projects.read")
        if not actor.sees_project(project_id):
            raise NotFound("No such project", error_id="no-such-project", project_id=project_id)
        async with self.sessions() as s:
            project = await s.get(Project, project_id)
        if project is None:
            raise NotFound("No such project", error_id="no-such-project", project_id=project_id)
        return RetentionOut(
            project_id=project.id,
            recordings_retention_days=project.recordings_retention_days,
            messages_retention_days=project.messages_retention_days,
        )

    async def set_retention(self, actor: Actor, project_id: int, data: RetentionIn) -> RetentionOut:
        actor.require("projects.write")
        async with self.sessions.begin() as s:
            project = await s.get(Project, project_id)
            if project is None:
                raise NotFound("No such project", error_id="no-such-project", project_id=project_id)
            project.recordings_retention_days = data.recordings_retention_days
            project.messages_retention_days = data.messages_retention_days
            audit(
                s,
                actor,
                "project.retention",
                "project",
                project_id,
                self.clock(),
                project_id=project_id,
                recordings_retention_days=data.recordings_retention_days,
                messages_retention_days=data.messages_retention_days,
            )
        return RetentionOut(project_id=project_id, **data.model_dump())


class RetentionJob:
    """The daily retention sweep (see the module docstring). Each project's sweep continues from the
    last contact it handled (kept in ``site_settings``), so a day's sweep reads only the contacts that
    came of age since the day before."""

    kind = RETENTION_JOB

    def __init__(
        self, privacy: Privacy, jobs: JobRunner, *, tombstone_days: int = DEFAULT_TOMBSTONE_DAYS
    ) -> None:
        self.privacy = privacy
        self.jobs = jobs
        self.tombstone_days = tombstone_days

    async def run(self, job: JobContext) -> JobOutcome:
        now = job.clock()
        async with job.session() as s:
            projects = list(
                await s.execute(
                    select(
                        Project.id, Project.recordings_retention_days, Project.messages_retention_days
                    ).where(
                        Project.recordings_retention_days.is_not(None)
                        | Project.messages_retention_days.is_not(None)
                    )
                )
            )
        totals: dict[str, dict[str, int]] = {}
        for project_id, recording_days, message_days in projects:
            done: dict[str, int] = {}
            if recording_days is not None:
                done["recordings"] = await self._sweep(
                    job, project_id, "recordings", now - timedelta(days=recording_days)
                )
            if message_days is not None:
                done["messages"] = await self._sweep(
                    job, project_id, "messages", now - timedelta(days=message_days)
                )
            totals[str(project_id)] = done
            if any(done.values()):
                async with job.begin() as s:
                    audit(
                        s,
                        job.actor,
                        "privacy.retention",
                        "project",
                        project_id,
                        now,
                        project_id=project_id,
                        **done,
                    )
        results_removed = await self.jobs.remove_old_results(now - timedelta(days=RESULT_KEEP_DAYS))
        tombstones = await prune_tombstones(
            self.privacy.sessions, now - timedelta(days=self.tombstone_days), now=now
        )
        if tombstones:
            log.info("change feeds: %d tombstones over %d days old removed", tombstones, self.tombstone_days)
        return JobOutcome(
            {"projects": totals, "job_files_removed": results_removed, "tombstones_removed": tombstones}
        )

    async def _sweep(self, job: JobContext, project_id: int, what: str, cutoff: datetime) -> int:
        """Delete ``what`` (recordings or message content) of the project's contacts created before
        ``cutoff``, in batches, from the last contact a previous sweep handled; returns how many."""
        key = f"{project_id}:{what}"
        async with job.session() as s:
            marks = await s.get(SiteSetting, _RETENTION_MARKS)
            last = int((marks.value if marks else {}).get(key, 0))
        count = 0
        while True:
            leftovers = _Leftovers([], [])
            async with job.begin() as s:
                rows = list(
                    await s.execute(
                        select(Interaction.id, Interaction.attributes)
                        .where(
                            Interaction.project_id == project_id,
                            Interaction.id > last,
                            Interaction.created_at < cutoff,
                        )
                        .order_by(Interaction.id)
                        .limit(RETENTION_BATCH)
                    )
                )
                if not rows:
                    break
                ids = [i for i, _ in rows]
                changed = []
                for interaction_id, attrs in rows:
                    attrs = attrs or {}
                    if what == "recordings" and attrs.get("recordings"):
                        leftovers.recordings += attrs["recordings"]
                        kept = {k: v for k, v in attrs.items() if k != "recordings"}
                        changed.append(
                            {"b_id": interaction_id, "v_attributes": {**kept, "recordings_deleted": True}}
                        )
                    elif what == "messages" and "summary" in attrs:
                        # The contact's summary (its first words, shown in the history) is content too.
                        kept = {k: v for k, v in attrs.items() if k != "summary"}
                        changed.append(
                            {"b_id": interaction_id, "v_attributes": {**kept, "content_deleted": True}}
                        )
                if changed:
                    await s.execute(
                        update(_INTERACTIONS)
                        .where(_INTERACTIONS.c.id == bindparam("b_id"))
                        .values(attributes=bindparam("v_attributes", type_=_INTERACTIONS.c.attributes.type)),
                        changed,
                    )
                if what == "recordings":
                    count += len(changed)
                else:
                    message_ids = list(
                        await s.scalars(
                            select(Message.id).where(
                                Message.interaction_id.in_(ids),
                                (Message.body != "")
                                | Message.html_body.is_not(None)
                                | Message.raw_sha256.is_not(None),
                            )
                        )
                    )
                    listed = set(message_ids)
                    message_ids += [
                        m
                        for m in await s.scalars(
                            select(MessageAttachment.message_id)
                            .join(Message, Message.id == MessageAttachment.message_id)
                            .where(Message.interaction_id.in_(ids))
                            .distinct()
                        )
                        if m not in listed
                    ]
                    cleared, shas = await _clear_message_content(s, message_ids, subjects=False)
                    leftovers.blobs = await _orphan_blobs(s, shas)
                    count += cleared
                last = ids[-1]
                await self._mark(s, key, last)
                await job.record(s, job.progress + len(ids))
            await self.privacy._delete_files(leftovers)
            await asyncio.sleep(0)
        return count

    async def _mark(self, s: AsyncSession, key: str, last: int) -> None:
        row = await s.get(SiteSetting, _RETENTION_MARKS, with_for_update=True)
        if row is None:
            s.add(SiteSetting(key=_RETENTION_MARKS, value={key: last}, updated_at=self.privacy.clock()))
        else:
            row.value = {**row.value, key: last}
            row.updated_at = self.privacy.clock()


class PersonalDataExportJob:
    """The ``customer.personal_data`` job: a ZIP of everything stored about one customer."""

    kind = PERSONAL_DATA_JOB

    def __init__(self, privacy: Privacy) -> None:
        self.privacy = privacy

    async def run(self, job: JobContext) -> JobOutcome:
        actor = job.actor
        actor.require("customers.export")
        customer_id = int(job.params["customer_id"])
        async with job.session() as s:
            customer = await visible_customer(s, actor, customer_id)
            chain = await _customer_chain(s, customer_id)
            card = await s.scalar(
                select(Customer)
                .where(Customer.id == customer.id)
                .options(
                    selectinload(Customer.identities),
                    selectinload(Customer.tags),
                    selectinload(Customer.company),
                )
            )
            assert card is not None
            document: dict[str, Any] = {
                "exported_at": job.clock().isoformat(),
                "customer": customer_out(card).model_dump(mode="json"),
                "merged_customer_ids": chain[1:],
            }
            document["notes"] = [
                {"id": n.id, "body": n.body, "author_id": n.author_id, "created_at": n.created_at.isoformat()}
                for n in await s.scalars(select(Note).where(Note.customer_id.in_(chain)).order_by(Note.id))
            ]
            interactions = list(
                await s.scalars(
                    select(Interaction).where(Interaction.customer_id.in_(chain)).order_by(Interaction.id)
                )
            )
            ids = [i.id for i in interactions]
            messages: dict[int, list[Message]] = {}
            attachments: dict[int, list[MessageAttachment]] = {}
            for start in range(0, len(ids), RETENTION_BATCH):
                part = ids[start : start + RETENTION_BATCH]
                for m in await s.scalars(
                    select(Message).where(Message.interaction_id.in_(part)).order_by(Message.id)
                ):
                    messages.setdefault(m.interaction_id, []).append(m)
                message_ids = [m.id for i in part for m in messages.get(i, [])]
                for a in await s.scalars(
                    select(MessageAttachment).where(MessageAttachment.message_id.in_(message_ids))
                ):
                    attachments.setdefault(a.message_id, []).append(a)
            files: list[tuple[str, Path]] = []
            contacts = []
            for i in interactions:
                recordings = []
                for stored in (i.attributes or {}).get("recordings", []):
                    path = self.privacy._own_file(Path(stored))
                    if path is not None:
                        name = f"recordings/{i.id}-{path.name}"
                        files.append((name, path))
                        recordings.append(name)
                contacts.append(
                    {
                        "id": i.id,
                        "channel": i.channel,
                        "direction": i.direction,
                        "state": i.state,
                        "subject": i.subject,
                        "from_address": i.from_address,
                        "to_address": i.to_address,
                        "queue_id": i.queue_id,
                        "agent_id": i.agent_id,
                        "disposition": i.disposition,
                        "created_at": i.created_at.isoformat(),
                        "ended_at": i.ended_at.isoformat() if i.ended_at else None,
                        "recordings": recordings,
                        "messages": [
                            {
                                "id": m.id,
                                "direction": m.direction,
                                "sender": m.sender,
                                "recipients": m.recipients,
                                "subject": m.subject,
                                "body": m.body,
                                "created_at": m.created_at.isoformat(),
                                "attachments": [
                                    _attachment(a, files, self.privacy.blobs)
                                    for a in attachments.get(m.id, [])
                                ],
                            }
                            for m in messages.get(i.id, [])
                        ],
                    }
                )
            document["contacts"] = contacts
            tickets = list(
                await s.scalars(select(Ticket).where(Ticket.customer_id.in_(chain)).order_by(Ticket.id))
            )
            posts: dict[int, list[TicketPost]] = {}
            if tickets:
                for p in await s.scalars(
                    select(TicketPost)
                    .where(TicketPost.ticket_id.in_([t.id for t in tickets]), TicketPost.kind == "reply")
                    .order_by(TicketPost.id)
                ):
                    posts.setdefault(p.ticket_id, []).append(p)
            document["tickets"] = [
                {
                    "id": t.id,
                    "subject": t.subject,
                    "description": t.description,
                    "status": t.status,
                    "created_at": t.created_at.isoformat(),
                    "replies": [
                        {"body": p.body, "created_at": p.created_at.isoformat()} for p in posts.get(t.id, [])
                    ],
                }
                for t in tickets
            ]
            document["deals"] = [
                {
                    "id": d.id,
                    "title": d.title,
                    "stage": d.stage,
                    "amount_minor": d.amount_minor,
                    "currency": d.currency,
                    "created_at": d.created_at.isoformat(),
                }
                for d in await s.scalars(select(Deal).where(Deal.customer_id.in_(chain)).order_by(Deal.id))
            ]
            document["tasks"] = [
                {"id": a.id, "title": a.title, "note": a.note, "due_at": a.due_at.isoformat()}
                for a in await s.scalars(
                    select(Activity).where(Activity.customer_id.in_(chain)).order_by(Activity.id)
                )
            ]
        await job.report(0, total=len(files) + 1)
        name = f"customer-{customer_id}.zip"
        await asyncio.to_thread(_write_zip, job.directory / name, document, files)
        async with job.begin() as s:
            await job.record(s, len(files) + 1)
            audit(
                s,
                actor,
                "customer.personal_data_export",
                "customer",
                customer_id,
                job.clock(),
                project_id=job.project_id,
                job_id=job.id,
                contacts=len(contacts),
                files=len(files),
            )
        return JobOutcome(
            {"customer_id": customer_id, "contacts": len(contacts), "files": len(files)},
            file_name=name,
            media_type="application/zip",
        )


def _attachment(a: MessageAttachment, files: list[tuple[str, Path]], blobs: BlobStore) -> dict[str, Any]:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in (a.filename or "file"))[:100]
    name = f"attachments/{a.id}-{safe}"
    files.append((name, blobs.path(a.sha256)))
    return {"file": name, "filename": a.filename, "content_type": a.content_type, "size": a.size}


def _write_zip(target: Path, document: dict[str, Any], files: list[tuple[str, Path]]) -> None:
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customer.json", json.dumps(document, ensure_ascii=False, indent=2))
        for name, path in files:
            if path.is_file():
                archive.write(path, name)
    partial.replace(target)
