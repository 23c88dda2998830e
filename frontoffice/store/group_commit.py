"""Group commit: jobs that arrive while a transaction is being written share the next one.

A commit waits for the disk (an fsync, about 2 ms here), so one transaction per job caps a writer at a
few hundred jobs per second however little CPU each takes. :class:`GroupCommit` queues the jobs that
arrive meanwhile; the next transaction runs all of them (up to :data:`MAX_BATCH`) and commits once, and
every caller gets its answer after that commit.

What a job does is the owner's (the ACD: :mod:`frontoffice.services.acd`), through ``run(session, job,
shared)``, which sets the job's ``result`` (or its own ``error``) and returns whether it changed state
kept outside the database. A job's own failure that changed nothing (``job.error``) fails that job
alone. A failure that raises :class:`StateChanged` rolls the whole batch back; the owner's
``recover()`` then rebuilds its state from the store, and the batch's other jobs run again, each in a
transaction of its own. On SQLite the batch begins with ``BEGIN IMMEDIATE`` (a first ``SAVEPOINT``
would otherwise open the transaction, and its ``RELEASE`` commit it), and it lets the event loop run
every :data:`YIELD_EVERY` jobs. A caller cancelled before its job started leaves it unrun.

Tests: ``tests/integration/test_group_commit.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .prepared import Prepared, forget_connection, keep_connection

__all__ = ["MAX_BATCH", "YIELD_EVERY", "GroupCommit", "Job", "StateChanged"]

log = logging.getLogger("frontoffice.store.group_commit")

# Jobs committed in one transaction at most (a bound on the wait of the batch's first caller).
MAX_BATCH = 64
# A batch lets the event loop run after this many jobs: statements inside the transaction run inline
# on SQLite, so the loop's sockets (SIP, WebSocket) are served between the jobs of a long batch.
YIELD_EVERY = 4
_BEGIN_IMMEDIATE = Prepared(text("BEGIN IMMEDIATE"))

W = TypeVar("W")


class StateChanged(Exception):
    """A job failed after changing state kept outside the database (its ``__cause__`` is the error):
    the batch rolls back and the owner recovers."""


@dataclass(eq=False, slots=True)
class Job(Generic[W]):
    """One caller's work, waiting for a transaction or running in a batch."""

    work: W
    future: asyncio.Future[Any]
    started: bool = False
    solo: bool = False  # runs alone (again, after its batch failed)
    result: Any = None
    error: BaseException | None = None


class GroupCommit(Generic[W]):
    """A queue of jobs committed together (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        run: Callable[[AsyncSession, Job[W], bool], Awaitable[bool]],
        *,
        recover: Callable[[], Awaitable[None]],
        committed: Callable[[list[Job[W]]], None] = lambda batch: None,
        fence: Callable[[AsyncSession], Awaitable[None]] | None = None,
        name: str = "group-commit",
    ) -> None:
        self.sessions = sessions
        self._run = run
        self._recover = recover
        self._committed = committed
        # Run first in every batch's transaction: the leader's fencing check of several nodes
        # (store/leader_lease.py); its failure fails the batch's jobs, none of which has run.
        self._fence = fence
        self._name = name
        # Held while a batch runs; the owner takes it too for work that must not overlap a batch.
        self.lock = asyncio.Lock()
        self._pending: deque[Job[W]] = deque()
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None
        bind = sessions.kw.get("bind")
        self._sqlite = bind is not None and bind.dialect.name == "sqlite"

    def waiting(self) -> int:
        """How many jobs wait for the next transaction."""
        return len(self._pending)

    async def submit(self, work: W) -> Any:
        """Queue ``work`` and return its result once the transaction that ran it has committed."""
        job: Job[W] = Job(work, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        if not self._draining:
            self._draining = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name=self._name)
        return await job.future

    async def _drain(self) -> None:
        """Run the queued jobs, a batch per transaction, until none is left."""
        try:
            async with self.lock:
                while self._pending:
                    if self._pending[0].solo:
                        batch = [self._pending.popleft()]
                    else:
                        batch = []
                        while self._pending and len(batch) < MAX_BATCH and not self._pending[0].solo:
                            batch.append(self._pending.popleft())
                    batch = [j for j in batch if not j.future.done()]  # cancelled while waiting
                    if not batch:
                        continue
                    try:
                        await self._run_batch(batch)
                    except Exception as exc:  # never leave a caller waiting for ever
                        log.exception("batch failed")
                        for j in batch:
                            if not j.future.done():
                                j.future.set_exception(exc)
                    except BaseException:
                        for j in batch:
                            j.future.cancel()
                        raise
        except asyncio.CancelledError:
            # The loop is shutting down: nothing will run the jobs still waiting.
            while self._pending:
                self._pending.popleft().future.cancel()
            raise
        finally:
            self._draining = False

    async def _run_batch(self, batch: list[Job[W]]) -> None:
        for j in batch:
            j.started = True
        shared = len(batch) > 1
        failed: Job[W] | None = None
        changed = False
        try:
            async with self.sessions.begin() as s:
                # The batch's connection, asked of the session once (connection_of: each ask is a
                # round trip through SQLAlchemy's greenlet).
                connection = await keep_connection(s)
                if self._sqlite:
                    # Take the write lock now: the batch reads and writes, and its savepoints must
                    # sit inside a transaction (in SQLite a first SAVEPOINT would begin one, and its
                    # RELEASE would commit it).
                    await _BEGIN_IMMEDIATE.run(connection)
                if self._fence is not None:
                    await self._fence(s)
                for n, j in enumerate(batch):
                    failed = j
                    changed = await self._run(s, j, shared) or changed
                    if n % YIELD_EVERY == YIELD_EVERY - 1:
                        await asyncio.sleep(0)
                failed = None
                forget_connection(s)  # the commit hands the connection back to the pool
        except Exception as exc:
            await self._batch_failed(batch, failed, changed, exc)
            return
        self._committed(batch)
        for j in batch:
            if j.future.done():
                continue
            if j.error is not None:
                j.future.set_exception(j.error)
            else:
                j.future.set_result(j.result)

    async def _batch_failed(
        self, batch: list[Job[W]], failed: Job[W] | None, changed: bool, exc: Exception
    ) -> None:
        """The batch's transaction rolled back. The failing job (or a batch of one whose commit
        failed) gets the error. If state had changed, the owner recovers and the batch's other jobs
        run again, each in its own transaction."""
        state_changed = changed or isinstance(exc, StateChanged)
        error: BaseException = exc.__cause__ if isinstance(exc, StateChanged) and exc.__cause__ else exc
        if state_changed:
            log.error("transaction failed after state changed; recovering from the store", exc_info=error)
            await self._recover()
        culprit = failed if failed is not None else batch[0] if len(batch) == 1 else None
        if culprit is not None and not culprit.future.done():
            culprit.future.set_exception(error)
        again = [j for j in batch if j is not culprit and not j.future.done()]
        for j in reversed(again):
            j.started, j.solo, j.error, j.result = False, True, None, None
            self._pending.appendleft(j)
