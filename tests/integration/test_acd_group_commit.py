"""Group commit in the ACD: commands that queue during a commit share the next transaction, a command
that fails is the only one that fails, and nothing is acknowledged before its commit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, func, select, text
from sqlalchemy.orm import Session

from frontoffice.bootstrap import Container
from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.model import Role
from frontoffice.services.acd_commands import AcceptOffer, AcdCommand, AgentLogin, CommandHandler
from frontoffice.services.context import Actor, audit
from frontoffice.services.interactions import EVENTS
from frontoffice.store.append_log import append_row, committed_rows, discard_since, write_now
from frontoffice.store.database import sync_session_class
from frontoffice.store.tables import AgentEvent, AgentProfile, AuditEntry
from frontoffice.store.unit_of_work import UnitOfWork

from ..conftest import token_headers
from .test_acd_api import API, Desk

_AGENT_EVENTS = cast(Table, AgentEvent.__table__)


@pytest.fixture
async def desk(client, container, admin_headers) -> Desk:
    return Desk(client, container, admin_headers)


class Transactions:
    """Counts the committed transactions that wrote log rows (ACD commands do; savepoints released
    inside a transaction are not commits)."""

    def __init__(self, container: Container) -> None:
        self.count = 0
        self.cls = sync_session_class(container.sessions)
        event.listen(self.cls, "after_commit", self.committed)

    def committed(self, session: Session) -> None:
        if committed_rows(session, _AGENT_EVENTS) or committed_rows(session, EVENTS):
            self.count += 1

    def close(self) -> None:
        event.remove(self.cls, "after_commit", self.committed)


@dataclass(frozen=True)
class WritesThenRefused(AcdCommand[None]):
    """Writes in its prepare step, then the engine refuses it (accepting an offer that does not exist)."""

    agent_id: str


class WritesThenRefusedHandler(CommandHandler[WritesThenRefused]):
    prepares = True

    async def prepare(self, uow: UnitOfWork, command: WritesThenRefused) -> None:
        audit(uow.session, Actor.system(), "test.must-not-stay", "agent", 1)
        append_row(
            uow.session,
            _AGENT_EVENTS,
            {"agent_id": 999, "at": datetime.now(UTC), "state": "ghost", "reason": None},
        )
        await uow.session.flush()

    def decide(
        self, engine: r.RoutingEngine, command: WritesThenRefused, prepared: None, now: float
    ) -> list[r.Output]:
        return engine.offer_accepted("424242", command.agent_id, now)  # no such contact


@dataclass(frozen=True)
class PrepareFails(AcdCommand[None]):
    """Writes in its prepare step, then refuses itself there."""


class PrepareFailsHandler(CommandHandler[PrepareFails]):
    prepares = True

    async def prepare(self, uow: UnitOfWork, command: PrepareFails) -> None:
        audit(uow.session, Actor.system(), "test.must-not-stay-either", "agent", 1)
        await uow.session.flush()
        raise InvalidInput("no", error_id="test")

    def decide(
        self, engine: r.RoutingEngine, command: PrepareFails, prepared: None, now: float
    ) -> list[r.Output]:
        return []


@dataclass(frozen=True)
class BrokenFinish(AcdCommand[None]):
    """Signs the agent in, then the store fails after the engine changed."""

    agent_id: str


class BrokenFinishHandler(CommandHandler[BrokenFinish]):
    def decide(
        self, engine: r.RoutingEngine, command: BrokenFinish, prepared: None, now: float
    ) -> list[r.Output]:
        return engine.agent_login(command.agent_id, now)

    async def finish(
        self, uow: UnitOfWork, command: BrokenFinish, outputs: list[r.Output], prepared: None
    ) -> None:
        raise RuntimeError("the store said no")


async def queued(container: Container, *commands: Any) -> list[Any]:
    """Run ``commands`` (coroutine factories) while the ACD lock is held, so that they all wait for
    the same next transaction; returns their results or exceptions, in order."""
    async with container.acd.lock:
        tasks = [asyncio.create_task(make()) for make in commands]
        await pending(container, len(tasks))
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def pending(container: Container, n: int) -> None:
    """Wait (up to 10 s) until ``n`` commands wait for the ACD's next transaction."""
    for _ in range(10_000):
        if container.acd.commands_waiting() >= n:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{container.acd.commands_waiting()} commands queued, expected {n}")


async def agents(desk: Desk, n: int) -> list[str]:
    q = await desk.queue("support", wrap_up_s=0)
    await desk.entry("site", q)
    for i in range(n):
        await desk.agent(f"a{i}", {q: 1})
    return [str(desk.agent_ids[f"a{i}"]) for i in range(n)]


async def stored_state(container: Container, agent: str) -> str:
    async with container.sessions() as s:
        return str(await s.scalar(select(AgentProfile.state).where(AgentProfile.user_id == int(agent))))


async def test_commands_waiting_for_a_commit_share_the_next_one(desk: Desk, container: Container) -> None:
    ids = await agents(desk, 3)
    transactions = Transactions(container)
    try:
        results = await queued(
            container,
            *[lambda a=a: container.acd.execute(AgentLogin(a)) for a in ids],
            *[lambda n=n: desk.contact(subject=f"q{n}") for n in range(5)],
        )
    finally:
        transactions.close()
    assert not [x for x in results if isinstance(x, BaseException)], results
    assert transactions.count == 1  # eight commands, one transaction
    for a in ids:
        state = container.acd.engine.agent_status(a).state
        assert state != "offline" and await stored_state(container, a) == state
    created = [x["interaction"]["id"] for x in results[3:]]
    assert len(set(created)) == 5
    for iid in created:
        assert await desk.state(iid) in ("offered", "queued")


async def test_a_command_the_engine_refuses_fails_alone_and_its_writes_roll_back(
    desk: Desk, container: Container
) -> None:
    ids = await agents(desk, 2)
    container.acd.register(WritesThenRefused, WritesThenRefusedHandler())
    container.acd.register(PrepareFails, PrepareFailsHandler())
    results = await queued(
        container,
        lambda: container.acd.execute(AgentLogin(ids[0])),
        lambda: container.acd.execute(WritesThenRefused(ids[0])),
        lambda: container.acd.execute(AcceptOffer("424242", ids[1])),
        lambda: container.acd.execute(PrepareFails()),
        lambda: container.acd.execute(AgentLogin(ids[1])),
    )
    assert not isinstance(results[0], BaseException) and not isinstance(results[4], BaseException)
    assert isinstance(results[1], NotFound) and isinstance(results[2], NotFound)
    assert isinstance(results[3], InvalidInput)
    for a in ids:
        assert container.acd.engine.agent_status(a).state == "available"
        assert await stored_state(container, a) == "available"
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).where(AuditEntry.action.like("test.must-not%"))) == 0
        assert await s.scalar(select(func.count()).where(AgentEvent.state == "ghost")) == 0
        logged = list(await s.scalars(select(AgentEvent.agent_id).where(AgentEvent.state == "available")))
    assert sorted(logged) == sorted(int(a) for a in ids)
    # The live statistics saw the committed rows only.
    live = (await desk.client.get(f"{API}/stats/live", headers=desk.admin)).json()
    assert "ghost" not in str(live)


async def test_a_failure_after_the_engine_changed_rebuilds_it_and_the_others_still_run(
    desk: Desk, container: Container
) -> None:
    ids = await agents(desk, 3)

    container.acd.register(BrokenFinish, BrokenFinishHandler())
    results = await queued(
        container,
        lambda: container.acd.execute(AgentLogin(ids[0])),
        lambda: container.acd.execute(BrokenFinish(ids[1])),
        lambda: container.acd.execute(AgentLogin(ids[2])),
    )
    assert isinstance(results[1], RuntimeError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    # The failed command is not in the engine (rebuilt from the store) nor in the store.
    assert container.acd.engine.agent_status(ids[1]).state == "offline"
    assert await stored_state(container, ids[1]) == "offline"
    for a in (ids[0], ids[2]):
        assert container.acd.engine.agent_status(a).state == "available"
        assert await stored_state(container, a) == "available"


async def test_a_caller_cancelled_while_waiting_leaves_its_command_unrun(
    desk: Desk, container: Container
) -> None:
    ids = await agents(desk, 2)
    async with container.acd.lock:
        waiting = asyncio.create_task(container.acd.execute(AgentLogin(ids[0])))
        other = asyncio.create_task(container.acd.execute(AgentLogin(ids[1])))
        await pending(container, 2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await other
    assert container.acd.engine.agent_status(ids[0]).state == "offline"
    assert await stored_state(container, ids[0]) == "offline"
    assert await stored_state(container, ids[1]) == "available"


async def test_concurrent_idempotent_retries_in_one_batch_create_one_contact(
    desk: Desk, container: Container
) -> None:
    await agents(desk, 1)
    results = await queued(container, *[lambda: desk.contact(key="same-form") for _ in range(4)])
    assert not [x for x in results if isinstance(x, BaseException)], results
    assert len({x["interaction"]["id"] for x in results}) == 1
    assert sorted(x["created"] for x in results) == [False, False, False, True]


async def test_contacts_taken_in_together_need_no_savepoint_and_a_refused_one_writes_nothing(
    desk: Desk, container: Container
) -> None:
    """A contact's refusals (unknown entry point, no route, a repeated key) come before its first
    write, so a batch of contacts takes no savepoint, and its log rows go out in one statement per
    table for the whole batch."""
    await agents(desk, 2)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split("(")[0].strip())

    async def refused() -> int:
        r = await desk.client.post(
            f"{API}/interactions",
            json={"entry_point": "nowhere", "subject": "x", "customer": {"email": "x@example.com"}},
            headers=desk.admin,
        )
        return r.status_code

    event.listen(container.engine.sync_engine, "before_cursor_execute", seen)
    try:
        results = await queued(
            container,
            *[
                lambda n=n: desk.contact(subject=f"t{n}", customer={"email": f"t{n}@example.com"})
                for n in range(3)
            ],
            refused,
            lambda: desk.contact(subject="t9", customer={"email": "t9@example.com"}),
        )
    finally:
        event.remove(container.engine.sync_engine, "before_cursor_execute", seen)
    assert results[3] == 404
    created = [x["interaction"]["id"] for x in (*results[:3], results[4])]
    assert len(set(created)) == 4
    for iid in created:
        assert await desk.state(iid) in ("offered", "queued")
    assert not [x for x in statements if x.startswith(("SAVEPOINT", "RELEASE"))], statements
    # Four new customers (an audit row each), four contacts queued: one INSERT per log table.
    assert statements.count("INSERT INTO interaction_events") == 1, statements
    assert statements.count("INSERT INTO audit_log") == 1, statements
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(AuditEntry)) >= 4


async def test_agents_signing_in_together_over_http_all_get_their_answer(
    desk: Desk, container: Container
) -> None:
    q = await desk.queue("support")
    headers = [await token_headers(container, f"u{i}", Role.AGENT) for i in range(10)]
    for h in headers:
        me = (await desk.client.get(f"{API}/me", headers=h)).json()
        r_ = await desk.client.put(
            f"{API}/agents/{me['id']}", json={"queues": {str(q): 1}}, headers=desk.admin
        )
        assert r_.status_code == 200
    answers = await asyncio.gather(
        *[desk.client.post(f"{API}/agent/login", json={}, headers=h) for h in headers]
    )
    assert [a.status_code for a in answers] == [204] * 10
    async with container.sessions() as s:
        states = list(await s.scalars(select(AgentProfile.state)))
    assert states.count("available") == 10


async def test_a_rollback_to_a_savepoint_keeps_the_log_rows_written_before_it(container: Container) -> None:
    seen: list[list[dict[str, Any]]] = []
    cls = sync_session_class(container.sessions)

    mine: list[Session] = []

    def committed(session: Session) -> None:
        # Only this test's transaction: the container's own jobs (SLA, callbacks) commit beside it.
        if session in mine:
            seen.append(committed_rows(session, _AGENT_EVENTS))

    def row(state: str) -> dict[str, Any]:
        return {"agent_id": 1, "at": datetime.now(UTC), "state": state, "reason": None}

    event.listen(cls, "after_commit", committed)
    try:
        async with container.sessions.begin() as s:
            mine.append(s.sync_session)
            append_row(s, _AGENT_EVENTS, row("kept"))
            mark = await s.run_sync(write_now)
            savepoint = await s.begin_nested()
            append_row(s, _AGENT_EVENTS, row("gone-unwritten"))
            await s.run_sync(write_now)
            append_row(s, _AGENT_EVENTS, row("gone-written"))
            await s.scalar(select(func.count()).select_from(AgentEvent))  # writes pending rows
            await savepoint.rollback()
            discard_since(s.sync_session, mark)
            append_row(s, _AGENT_EVENTS, row("after"))
    finally:
        event.remove(cls, "after_commit", committed)
    assert [[r["state"] for r in rows] for rows in seen] == [["kept", "after"]]
    async with container.sessions() as s:
        assert sorted(await s.scalars(select(AgentEvent.state))) == ["after", "kept"]


async def test_a_released_savepoint_is_not_a_commit_of_its_log_rows(container: Container) -> None:
    """SQLAlchemy fires ``after_commit`` when a savepoint is released: its rows are reported once, with
    the transaction's commit, and not at all if the transaction then rolls back."""
    seen: list[list[str]] = []
    cls = sync_session_class(container.sessions)

    def committed(session: Session) -> None:
        seen.append([r["state"] for r in committed_rows(session, _AGENT_EVENTS)])

    def row(state: str) -> dict[str, Any]:
        return {"agent_id": 1, "at": datetime.now(UTC), "state": state, "reason": None}

    event.listen(cls, "after_commit", committed)
    try:
        async with container.sessions.begin() as s:
            for state in ("first", "second"):
                await s.run_sync(write_now)
                savepoint = await s.begin_nested()
                append_row(s, _AGENT_EVENTS, row(state))
                await savepoint.commit()
        assert [rows for rows in seen if rows] == [["first", "second"]]
        seen.clear()
        with pytest.raises(RuntimeError):
            async with container.sessions.begin() as s:
                if s.get_bind().dialect.name == "sqlite":
                    # As the ACD does: in SQLite a first SAVEPOINT would begin the transaction, and
                    # its release would commit it.
                    await s.execute(text("BEGIN IMMEDIATE"))
                await s.run_sync(write_now)
                savepoint = await s.begin_nested()
                append_row(s, _AGENT_EVENTS, row("rolled back"))
                await savepoint.commit()
                raise RuntimeError("the transaction fails after the savepoint")
    finally:
        event.remove(cls, "after_commit", committed)
    assert [rows for rows in seen if rows] == []
    async with container.sessions() as s:
        assert sorted(await s.scalars(select(AgentEvent.state))) == ["first", "second"]
