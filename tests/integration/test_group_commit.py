"""The group-commit queue of the store: jobs that wait during a commit share the next transaction, a
job's own failure fails it alone, a failure after state changed recovers and runs the others again."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from frontoffice.bootstrap import Container
from frontoffice.services.context import Actor, audit
from frontoffice.store.database import sync_session_class
from frontoffice.store.group_commit import GroupCommit, Job, StateChanged
from frontoffice.store.tables import AuditEntry

from ..conftest import eventually


class Ledger:
    """A job is an action name: it writes an audit row named so; ``own-failure`` fails before changing
    anything, ``breaks-after`` fails after changing the ledger's state (kept outside the database)."""

    def __init__(self, container: Container) -> None:
        self.state: list[str] = []
        self.recovered = 0
        self.batches: list[list[str]] = []
        self.queue: GroupCommit[str] = GroupCommit(
            container.sessions, self.run, recover=self.recover, committed=self.committed
        )

    async def run(self, s: AsyncSession, job: Job[str], shared: bool) -> bool:
        if job.work == "own-failure":
            if not shared:
                raise ValueError("refused")
            job.error = ValueError("refused")
            return False
        self.state.append(job.work)
        audit(s, Actor.system(), job.work, "test")
        await s.flush()
        if job.work == "breaks-after":
            raise StateChanged() from RuntimeError("the store said no")
        job.result = f"done {job.work}"
        return True

    async def recover(self) -> None:
        self.recovered += 1
        self.state = []

    def committed(self, batch: list[Job[str]]) -> None:
        self.batches.append([job.work for job in batch])

    async def together(self, *works: str) -> list[Any]:
        """Submit ``works`` while a batch holds the lock, so that they share the next transaction."""
        async with self.queue.lock:
            tasks = [asyncio.create_task(self.queue.submit(w)) for w in works]
            await eventually(lambda: self.queue.waiting() == len(works), "every job queued")
        return list(await asyncio.gather(*tasks, return_exceptions=True))


async def stored(container: Container) -> list[str]:
    async with container.sessions() as s:
        return sorted(await s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "test")))


async def test_jobs_waiting_for_a_commit_share_one_transaction_and_answer_after_it(
    container: Container,
) -> None:
    # The container's own periodic jobs (SLA clocks, due callbacks, the tickets' routing sweep, the
    # outbox's claims, the job runner with its retention sweep, the campaign dialler) commit too:
    # stop them so that every commit counted here is the ledger's.
    await container.sla.stop()
    await container.callbacks.stop()
    await container.ticket_work.stop()
    await container.outbox.stop()
    await container.jobs.stop()
    await container.dialler.stop()
    ledger = Ledger(container)
    commits: list[bool] = []

    def committed(session: Session) -> None:
        if not session.in_nested_transaction():
            commits.append(True)

    cls = sync_session_class(container.sessions)
    event.listen(cls, "after_commit", committed)
    try:
        results = await ledger.together("a", "b", "c")
    finally:
        event.remove(cls, "after_commit", committed)
    assert results == ["done a", "done b", "done c"]
    assert ledger.batches == [["a", "b", "c"]] and len(commits) == 1
    assert await stored(container) == ["a", "b", "c"]


async def test_a_jobs_own_failure_fails_it_alone(container: Container) -> None:
    ledger = Ledger(container)
    results = await ledger.together("a", "own-failure", "b")
    assert results[0] == "done a" and results[2] == "done b"
    assert isinstance(results[1], ValueError)
    assert await stored(container) == ["a", "b"]


async def test_a_failure_after_state_changed_recovers_and_runs_the_others_again_alone(
    container: Container,
) -> None:
    ledger = Ledger(container)
    results = await ledger.together("a", "breaks-after", "b")
    assert isinstance(results[1], RuntimeError)
    assert results[0] == "done a" and results[2] == "done b"
    assert ledger.recovered == 1
    assert ledger.batches == [["a"], ["b"]]  # each again in a transaction of its own
    assert await stored(container) == ["a", "b"]


async def test_a_caller_cancelled_while_waiting_leaves_its_job_unrun(container: Container) -> None:
    ledger = Ledger(container)
    async with ledger.queue.lock:
        cancelled = asyncio.create_task(ledger.queue.submit("cancelled"))
        kept = asyncio.create_task(ledger.queue.submit("kept"))
        await eventually(lambda: ledger.queue.waiting() == 2, "both jobs queued")
        cancelled.cancel()
    assert await kept == "done kept"
    assert cancelled.cancelled()
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).where(AuditEntry.action == "cancelled")) == 0
