"""Background jobs: long work (CSV imports and exports, a customer's personal data export, the daily
retention sweep) runs off the request path, with progress, and survives a restart.

A request that starts long work creates a row in ``jobs`` (state ``queued``) and answers ``202`` with
the job's address at once; the node's :class:`JobRunner` claims the job and runs its
:class:`JobHandler`. A handler works in batches, each in its own short transaction, and lets the
event loop run between them; on SQLite the batches use the job engine, whose statements run on a
worker thread (:func:`frontoffice.store.database.create_job_engine`), so the ACD, ``/healthz`` and
the WebSockets are served while an import runs.

**Restart.** A job's batch commits its progress and its ``checkpoint`` (what a resumed run continues
from) in the batch's own transaction. A job that was running when its node stopped is resumed — by the
next start of a SQLite node at once, by any PostgreSQL node once the job's lease has expired
(:data:`LEASE_S`, renewed with every batch) — and continues from its last committed batch. A job
interrupted :data:`MAX_ATTEMPTS` times is marked failed (``job-interrupted``) instead of being tried
for ever.

**Exactly one runner.** A job is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (two
nodes never claim the same job); SQLite has one node. Scheduled work (the retention sweep) is a job
with a per-day idempotency key and no creator, unique in the table, so however many nodes enqueue it
it runs once a day.

**Idempotency.** A POST that creates a job may carry ``Idempotency-Key``: the same user's same key
answers the job the first request created (``202`` with the same ``Location``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from frontoffice.aio import wake_or_timeout
from frontoffice.domain.exceptions import DomainError, NotFound
from frontoffice.domain.model import Role
from frontoffice.store.tables import BackgroundJob

from .context import Actor, Clock, decode_id_cursor, id_page, system_clock
from .schemas import Page

__all__ = [
    "LEASE_S",
    "MAX_ATTEMPTS",
    "JobContext",
    "JobHandler",
    "JobOut",
    "JobOutcome",
    "JobRunner",
    "JobState",
]

log = logging.getLogger("frontoffice.jobs")

# A running job's node holds it this long after its last batch; then another node may resume it. Much
# longer than a batch takes (a fraction of a second), short enough that a dead node's import resumes
# within a minute.
LEASE_S = 60.0
# A job interrupted this many times (its node died each time) is failed rather than retried again:
# a job that kills its node must not kill every node in turn.
MAX_ATTEMPTS = 3
# How often an idle runner looks for jobs other nodes queued (its own wake it at once).
POLL_S = 5.0
# Result files (exports) are kept this long, then removed by the retention sweep.
RESULT_KEEP_DAYS = 7
# Rows a sweep handles per statement (keeps IN lists far below PostgreSQL's 32,767 bind parameters).
_SWEEP_BATCH = 500


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobOut(BaseModel):
    """A job as the API shows it. ``progress`` of ``total`` units (rows for CSV; ``total`` is null
    until known); ``result`` the answer (an import's report); ``result_url`` the file to download."""

    id: int
    kind: str
    state: JobState
    progress: int
    total: int | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    result_url: str | None
    created_by: int | None
    project_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a finished job leaves: its result and, optionally, a file (under the job's directory)."""

    result: dict[str, Any]
    file_name: str | None = None
    media_type: str | None = None


class JobHandler(Protocol):
    """The work of one kind of job."""

    kind: str

    async def run(self, job: JobContext) -> JobOutcome: ...


@dataclass(eq=False)
class JobContext:
    """What a running job gets: who asked (with the rights they had when they asked), its parameters,
    the checkpoint of its last committed batch, sessions for its batches, and its directory."""

    id: int
    kind: str
    actor: Actor
    params: dict[str, Any]
    checkpoint: dict[str, Any]
    sessions: async_sessionmaker[AsyncSession]
    bind: AsyncEngine | None
    directory: Path
    clock: Clock
    project_id: int | None = None
    # The progress last recorded (resumed: the checkpointed batch's).
    progress: int = 0

    def session(self) -> AsyncSession:
        """A session for one batch: on SQLite bound to the job engine (statements off the loop)."""
        return self.sessions(bind=self.bind) if self.bind is not None else self.sessions()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """``async with job.begin() as s``: one batch's transaction (see :meth:`session`)."""
        async with self.session() as s, s.begin():
            yield s

    async def record(
        self,
        s: AsyncSession,
        progress: int,
        *,
        total: int | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        """Record progress (and the checkpoint a resumed run continues from) in the batch's own
        transaction ``s``, and renew the job's lease."""
        self.progress = progress
        values: dict[str, Any] = {
            "progress": progress,
            "updated_at": self.clock(),
            "lease_until": self.clock() + timedelta(seconds=LEASE_S),
        }
        if total is not None:
            values["total"] = total
        if checkpoint is not None:
            values["checkpoint"] = checkpoint
            self.checkpoint = checkpoint
        await s.execute(update(BackgroundJob).where(BackgroundJob.id == self.id).values(**values))

    async def report(self, progress: int, *, total: int | None = None) -> None:
        """Record progress in a transaction of its own (work that writes nothing per batch)."""
        async with self.begin() as s:
            await self.record(s, progress, total=total)


def actor_snapshot(actor: Actor) -> dict[str, Any]:
    return {
        "user_id": actor.user_id,
        "role": actor.role.value,
        "username": actor.username,
        "ip": actor.ip,
        "language": actor.language,
        "project_ids": None if actor.project_ids is None else sorted(actor.project_ids),
    }


def actor_from_snapshot(data: dict[str, Any]) -> Actor:
    ids = data.get("project_ids")
    return Actor(
        user_id=data.get("user_id"),
        role=Role(data.get("role", Role.ADMIN.value)),
        username=data.get("username", "system"),
        ip=data.get("ip"),
        language=data.get("language", "en"),
        project_ids=None if ids is None else frozenset(ids),
    )


def job_out(row: BackgroundJob, api_prefix: str = "/api/v1") -> JobOut:
    return JobOut(
        id=row.id,
        kind=row.kind,
        state=JobState(row.state),
        progress=row.progress,
        total=row.total,
        result=row.result,
        error=row.error,
        result_url=f"{api_prefix}/jobs/{row.id}/result" if row.result_file else None,
        created_by=row.created_by,
        project_id=row.project_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


@dataclass(frozen=True, slots=True)
class Schedule:
    """Work the server runs by itself every ``every`` (the retention sweep): a job of ``kind`` with
    the idempotency key ``<kind>:<period>``, so one per period whatever the number of nodes."""

    kind: str
    every: timedelta


class JobRunner:
    """Queues jobs, claims them (one at a time per node) and runs their handlers; see the module."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Path,
        *,
        job_engine: AsyncEngine | None = None,
        clock: Clock = system_clock,
        poll_s: float = POLL_S,
        single_node: bool = True,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.job_engine = job_engine
        self.clock = clock
        self.poll_s = poll_s
        # SQLite: this node is the only one, so a job "running" at start was interrupted by our stop.
        self.single_node = single_node
        self._handlers: dict[str, JobHandler] = {}
        self._schedules: list[Schedule] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def register(self, handler: JobHandler) -> None:
        self._handlers[handler.kind] = handler

    def schedule(self, kind: str, every: timedelta) -> None:
        """Run a job of ``kind`` (registered, created by the system) once per ``every``."""
        self._schedules.append(Schedule(kind, every))

    # ------------------------------------------------------------------ the API's side
    async def submit(
        self,
        actor: Actor,
        kind: str,
        params: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        project_id: int | None = None,
    ) -> JobOut:
        """Queue a job (committed before this returns) and wake the runner. With an idempotency key,
        the same user's earlier job with that key is answered instead (nothing new is queued)."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        now = self.clock()
        row = BackgroundJob(
            kind=kind,
            state=JobState.QUEUED.value,
            progress=0,
            params={**params, "_actor": actor_snapshot(actor)},
            checkpoint={},
            created_by=actor.user_id,
            project_id=project_id,
            idempotency_key=idempotency_key,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.sessions.begin() as s:
                s.add(row)
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = await self.find_by_key(actor.user_id, idempotency_key)
            if existing is None:
                raise
            return job_out(existing)
        self._wake.set()
        return job_out(row)

    async def find_by_key(self, user_id: int | None, key: str) -> BackgroundJob | None:
        """The job ``user_id`` created with the idempotency key ``key`` (None: the system's)."""
        async with self.sessions() as s:
            owner = (
                BackgroundJob.created_by.is_(None) if user_id is None else BackgroundJob.created_by == user_id
            )
            found: BackgroundJob | None = await s.scalar(
                select(BackgroundJob).where(owner, BackgroundJob.idempotency_key == key)
            )
            return found

    async def _visible(self, actor: Actor, job_id: int) -> BackgroundJob:
        actor.require("self.read")
        if not 0 < job_id < 2**63:  # beyond any id (and PostgreSQL's bigint)
            raise NotFound("No such job", error_id="no-such-job", job_id=job_id)
        async with self.sessions() as s:
            row = await s.get(BackgroundJob, job_id)
        # Jobs are their creator's; administrators see every job. Others answer 404 as if absent.
        own = row is not None and actor.user_id is not None and row.created_by == actor.user_id
        if row is None or not (own or actor.role is Role.ADMIN):
            raise NotFound("No such job", error_id="no-such-job", job_id=job_id)
        return row

    async def get(self, actor: Actor, job_id: int) -> JobOut:
        return job_out(await self._visible(actor, job_id))

    async def list_jobs(self, actor: Actor, *, limit: int = 50, cursor: str | None = None) -> Page[JobOut]:
        """The caller's jobs, newest first (an administrator's: everyone's)."""
        actor.require("self.read")
        limit = max(1, min(limit, 200))
        stmt = select(BackgroundJob)
        if actor.role is not Role.ADMIN:
            stmt = stmt.where(BackgroundJob.created_by == actor.user_id)
        if cursor:
            stmt = stmt.where(BackgroundJob.id < decode_id_cursor(cursor))
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.order_by(BackgroundJob.id.desc()).limit(limit + 1)))
        return id_page(rows, limit, job_out)

    async def result_file(self, actor: Actor, job_id: int) -> tuple[Path, str, str]:
        """The finished job's file: its path, the name to download it as, and its media type."""
        row = await self._visible(actor, job_id)
        if row.state != JobState.SUCCEEDED.value or not row.result_file:
            raise NotFound(
                "The job has no file to download (yet)",
                error_id="no-job-result",
                job_id=job_id,
                state=row.state,
            )
        path = self.job_directory(row.id) / row.result_file
        if not await asyncio.to_thread(path.is_file):
            raise NotFound("The job's file was removed", error_id="no-job-result", job_id=job_id)
        media_type = (row.result or {}).get("media_type", "application/octet-stream")
        return path, row.result_file, str(media_type)

    def job_directory(self, job_id: int) -> Path:
        return self.directory / str(job_id)

    # ------------------------------------------------------------------ running
    async def start(self) -> None:
        if self._task is not None:
            return
        if self.single_node:
            # Jobs this node was running when it stopped: free to resume now (no other node exists).
            async with self.sessions.begin() as s:
                await s.execute(
                    update(BackgroundJob)
                    .where(BackgroundJob.state == JobState.RUNNING.value)
                    .values(lease_until=None)
                )
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self._wake.clear()  # before looking: a job queued while we look wakes the next wait
            try:
                await self._enqueue_scheduled()
                while await self.run_next():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing look must not stop the next ones
                log.exception("the job runner failed")
            await wake_or_timeout(self._wake, self.poll_s)

    async def run_scheduled(self) -> list[JobOut]:
        """Queue the scheduled jobs whose period has come (the loop does this every time it looks),
        wake the runner, and return this period's job of each schedule."""
        jobs = await self._enqueue_scheduled()
        self._wake.set()
        return jobs

    async def _enqueue_scheduled(self) -> list[JobOut]:
        now = self.clock()
        jobs = []
        for schedule in self._schedules:
            period = int(now.timestamp() // schedule.every.total_seconds())
            key = f"{schedule.kind}:{period}"
            existing = await self.find_by_key(None, key)
            if existing is None:
                # Another node may queue it at the same moment: the unique key keeps one, and
                # submit answers that one.
                jobs.append(await self.submit(Actor.system(), schedule.kind, {}, idempotency_key=key))
            else:
                jobs.append(job_out(existing))
        return jobs

    async def run_next(self, job_id: int | None = None) -> bool:
        """Claim one job (the oldest waiting, or ``job_id``) and run it to its end; ``False`` when
        none is waiting."""
        claimed = await self._claim(job_id)
        if claimed is None:
            return False
        await self._run(claimed)
        return True

    async def _claim(self, job_id: int | None = None) -> BackgroundJob | None:
        now = self.clock()
        async with self.sessions.begin() as s:
            free = or_(
                BackgroundJob.state == JobState.QUEUED.value,
                (BackgroundJob.state == JobState.RUNNING.value)
                & or_(BackgroundJob.lease_until.is_(None), BackgroundJob.lease_until < now),
            )
            # PostgreSQL: rows another node is claiming are skipped, not waited for (SQLite ignores
            # the clause: it has one node, and its write transaction is exclusive anyway).
            if job_id is not None:
                free = free & (BackgroundJob.id == job_id)
            row: BackgroundJob | None = await s.scalar(
                select(BackgroundJob)
                .where(free)
                .order_by(BackgroundJob.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            if row.attempts >= MAX_ATTEMPTS:
                row.state = JobState.FAILED.value
                row.error = {
                    "error_id": "job-interrupted",
                    "message": "The job was interrupted too many times (its server stopped)",
                    "details": {"attempts": row.attempts},
                }
                row.finished_at = now
                row.updated_at = now
                return None
            row.state = JobState.RUNNING.value
            row.attempts += 1
            row.lease_until = now + timedelta(seconds=LEASE_S)
            row.started_at = row.started_at or now
            row.updated_at = now
        return row

    async def _run(self, row: BackgroundJob) -> None:
        handler = self._handlers.get(row.kind)
        params = dict(row.params)
        actor = actor_from_snapshot(params.pop("_actor", {}))
        job = JobContext(
            id=row.id,
            kind=row.kind,
            actor=actor,
            params=params,
            checkpoint=dict(row.checkpoint or {}),
            sessions=self.sessions,
            bind=self.job_engine,
            directory=self.job_directory(row.id),
            clock=self.clock,
            project_id=row.project_id,
            progress=row.progress,
        )
        values: dict[str, Any]
        try:
            if handler is None:
                raise DomainError("No handler for this kind of job", error_id="no-job-handler", kind=row.kind)
            await asyncio.to_thread(job.directory.mkdir, parents=True, exist_ok=True)
            outcome = await handler.run(job)
            result = dict(outcome.result)
            if outcome.media_type is not None:
                result["media_type"] = outcome.media_type
            values = {
                "state": JobState.SUCCEEDED.value,
                "result": result,
                "result_file": outcome.file_name,
            }
        except asyncio.CancelledError:
            raise  # the node stops: the job stays running and resumes after the restart
        except DomainError as exc:
            values = {
                "state": JobState.FAILED.value,
                "error": {"error_id": exc.error_id, "message": exc.message, "details": exc.details},
            }
        except Exception as exc:
            log.exception("job %s (%s) failed", row.id, row.kind)
            values = {
                "state": JobState.FAILED.value,
                "error": {
                    "error_id": "job-failed",
                    "message": "The job failed",
                    "details": {"reason": str(exc)[:500]},
                },
            }
        now = self.clock()
        async with self.sessions.begin() as s:
            await s.execute(
                update(BackgroundJob)
                .where(BackgroundJob.id == row.id)
                .values(**values, finished_at=now, updated_at=now, lease_until=None)
            )

    async def remove_old_results(self, before: datetime) -> int:
        """Delete the directories of jobs that finished before ``before`` (their downloads), and
        uploads older than that whose job never finished with them (a job that failed)."""
        removed = await asyncio.to_thread(_remove_older, self.directory / "uploads", before.timestamp())
        while True:
            async with self.sessions() as s:
                ids = list(
                    await s.scalars(
                        select(BackgroundJob.id)
                        .where(BackgroundJob.finished_at < before, BackgroundJob.result_file.is_not(None))
                        .limit(_SWEEP_BATCH)
                    )
                )
            if not ids:
                return removed
            for job_id in ids:
                directory = self.job_directory(job_id)
                if await asyncio.to_thread(directory.exists):
                    await asyncio.to_thread(shutil.rmtree, directory, True)
                    removed += 1
            async with self.sessions.begin() as s:
                await s.execute(
                    update(BackgroundJob).where(BackgroundJob.id.in_(ids)).values(result_file=None)
                )


def _remove_older(directory: Path, before: float) -> int:
    removed = 0
    if not directory.is_dir():
        return 0
    for path in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                removed += 1
    return removed
