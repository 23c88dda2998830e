"""Prepared statements (store/prepared.py): what they write and read is what SQLAlchemy writes and
reads, on SQLite (run on the driver's cursor) and PostgreSQL (run through SQLAlchemy), and statements
only SQLAlchemy can run still run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Table, bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from frontoffice.bootstrap import Container
from frontoffice.store.prepared import Prepared
from frontoffice.store.tables import AgentEvent, Interaction, InteractionEvent

from .test_acd_api import API, Desk

INTERACTIONS = cast(Table, Interaction.__table__)
EVENTS = cast(Table, InteractionEvent.__table__)
AGENT_EVENTS = cast(Table, AgentEvent.__table__)
AT = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
# A time given in another zone is stored as the same instant in UTC, as the column's type does.
AT_MOSCOW = AT.astimezone(ZoneInfo("Europe/Moscow"))

NEW = Prepared(insert(INTERACTIONS))
WRITE = Prepared(
    update(INTERACTIONS)
    .where(INTERACTIONS.c.id == bindparam("_id"))
    .values(state=bindparam("state"), attributes=bindparam("attributes"), queued_at=bindparam("queued_at"))
)
READ = Prepared(
    select(
        INTERACTIONS.c.id, INTERACTIONS.c.state, INTERACTIONS.c.attributes, INTERACTIONS.c.queued_at
    ).where(INTERACTIONS.c.id == bindparam("id"))
)
# A literal in the statement (not a parameter of the caller) and an expanding IN (SQLAlchemy's own).
READ_QUEUED_IN = Prepared(
    select(INTERACTIONS.c.id).where(
        INTERACTIONS.c.id.in_(bindparam("ids", expanding=True)), INTERACTIONS.c.state == "queued"
    )
)
LOG = Prepared(insert(EVENTS))
AGENT_LOG = Prepared(insert(AGENT_EVENTS))


def _interaction(n: int) -> dict[str, Any]:
    return {
        "id": n,
        "channel": "webform",
        "direction": "inbound",
        "state": "new",
        "priority": 0,
        "subject": f"s{n}",
        "from_address": "a@example.com",
        "to_address": "form",
        "attributes": {"n": n},
        "created_at": AT,
    }


def _engine(container: Container) -> AsyncEngine:
    bind = container.sessions.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


async def test_rows_written_and_read_match_what_sqlalchemy_writes_and_reads(container: Container) -> None:
    engine = _engine(container)
    async with engine.begin() as c:
        await NEW.run(c, [_interaction(1), _interaction(2)])  # executemany
        await NEW.run(c, _interaction(3))
        await WRITE.run(
            c,
            {
                "_id": 1,
                "state": "queued",
                "attributes": {"ключ": "значение", "list": [1, None]},
                "queued_at": AT,
            },
        )
        await WRITE.run(
            c,
            [
                {"_id": 2, "state": "queued", "attributes": {}, "queued_at": AT_MOSCOW},
                {"_id": 3, "state": "offered", "attributes": {"x": 1.5}, "queued_at": None},
            ],
        )
        read = await READ.run(c, {"id": 1})
        missing = await READ.run(c, {"id": 99})
        queued = await READ_QUEUED_IN.run(c, {"ids": [1, 2, 3, 4]})
    assert read == [
        {"id": 1, "state": "queued", "attributes": {"ключ": "значение", "list": [1, None]}, "queued_at": AT}
    ]
    assert missing == []
    assert sorted(row["id"] for row in queued) == [1, 2]
    # Read back by SQLAlchemy itself: the same values, the same types.
    async with engine.connect() as c:
        rows = (
            await c.execute(
                select(INTERACTIONS.c.id, INTERACTIONS.c.attributes, INTERACTIONS.c.queued_at).order_by(
                    INTERACTIONS.c.id
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        (1, {"ключ": "значение", "list": [1, None]}, AT),
        (2, {}, AT),
        (3, {"x": 1.5}, None),
    ]
    assert rows[1].queued_at.tzinfo is not None


async def test_an_insert_leaving_out_a_column_with_a_python_default_gets_the_default(
    container: Container,
) -> None:
    engine = _engine(container)
    async with engine.begin() as c:
        await NEW.run(c, _interaction(1))
        # interaction_events.data defaults to {} in Python: SQLAlchemy computes it, so it runs there.
        await LOG.run(c, {"interaction_id": 1, "at": AT, "type": "created", "channel": "webform"})
        await LOG.run(
            c,
            [
                {"interaction_id": 1, "at": AT, "type": "queued", "channel": "webform", "data": {"q": 1}},
                {"interaction_id": 1, "at": AT, "type": "offered", "channel": "webform", "data": {}},
            ],
        )
    async with engine.connect() as c:
        rows = (await c.execute(select(EVENTS.c.type, EVENTS.c.data).order_by(EVENTS.c.id))).all()
    assert [tuple(row) for row in rows] == [("created", {}), ("queued", {"q": 1}), ("offered", {})]


async def test_on_sqlite_the_statement_runs_on_the_driver_and_not_through_sqlalchemy(
    container: Container, db_url: str
) -> None:
    """The point of the module: on the project's SQLite driver, SQLAlchemy's execution is skipped
    (its cursor events hear the statement without an execution context); elsewhere it is
    SQLAlchemy's."""
    engine = _engine(container)
    seen: list[str] = []
    async with engine.begin() as c:
        ours = c.sync_connection

        def before(conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
            if conn is ours:  # the container's own background work uses the engine too
                # Listeners still hear every statement; SQLAlchemy's own execution has a context.
                seen.append(statement.split()[0] + ("" if context is None else " (SQLAlchemy)"))

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        try:
            # interactions has columns with defaults computed in Python (updated_at): SQLAlchemy's.
            await NEW.run(c, _interaction(1))
            await AGENT_LOG.run(c, {"agent_id": 7, "at": AT, "state": "available", "reason": None})
            assert await READ.run(c, {"id": 1}) != []
            # The expanding IN is SQLAlchemy's on every database.
            await READ_QUEUED_IN.run(c, {"ids": [1]})
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", before)
    if db_url.startswith("sqlite"):
        assert seen == ["INSERT (SQLAlchemy)", "INSERT", "SELECT", "SELECT (SQLAlchemy)"]
    else:
        assert seen == [
            "INSERT (SQLAlchemy)",
            "INSERT (SQLAlchemy)",
            "SELECT (SQLAlchemy)",
            "SELECT (SQLAlchemy)",
        ]


async def test_a_refused_statement_raises_sqlalchemys_error_and_the_transaction_rolls_back(
    container: Container,
) -> None:
    engine = _engine(container)
    async with engine.begin() as c:
        await NEW.run(c, _interaction(1))
    try:
        async with engine.begin() as c:
            await NEW.run(c, _interaction(2))
            await NEW.run(c, _interaction(1))  # the same id again
    except IntegrityError as exc:  # SQLAlchemy's, whichever runs the statement: callers catch it
        assert "UNIQUE" in str(exc).upper() or "DUPLICATE" in str(exc).upper()
    else:
        raise AssertionError("a repeated primary key was accepted")
    async with engine.connect() as c:
        ids = (await c.execute(select(INTERACTIONS.c.id))).scalars().all()
    assert ids == [1]


async def test_a_contacts_life_cycle_on_sqlite_skips_sqlalchemys_execution(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], db_url: str
) -> None:
    """Taken in (a new customer, a message, a key), offered, accepted, completed through the API:
    on SQLite, every statement of the ACD's transactions runs on the driver (SQLAlchemy's own
    execution, with its context, is what bench/offer_latency.py found to cost most)."""
    desk = Desk(client, container, admin_headers)
    q = await desk.queue("support")
    await desk.entry("site", q)
    agent = await desk.agent("ann", {q: 1})
    await desk.login("ann")
    engine = _engine(container)
    through_sqlalchemy: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if context is not None:
            through_sqlalchemy.append(" ".join(statement.split())[:80])

    async def life_cycle(n: int) -> None:
        contact = await desk.contact(key=f"k{n}", customer={"email": f"new{n}@example.com"})
        iid = contact["interaction"]["id"]
        r = await client.post(f"{API}/agent/offers/{iid}/accept", headers=agent)
        assert r.status_code == 204, r.text
        r = await client.post(f"{API}/agent/contacts/{iid}/complete", json={}, headers=agent)
        assert r.status_code == 200, r.text

    await life_cycle(1)  # the first reads what is then cached (entry point, screen-pop settings)
    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        await life_cycle(2)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    # What may still go through SQLAlchemy: the container's background loops (timers, outbox claims)
    # and the session's own COMMIT. None of the contact's reads or writes.
    contact_tables = ("interactions", "interaction_events", "agent_", "customers", "identities", "audit_log")
    ours = [s for s in through_sqlalchemy if any(t in s for t in contact_tables)]
    if db_url.startswith("sqlite"):
        assert ours == []
    else:  # PostgreSQL runs them through SQLAlchemy, as before
        assert any(s.startswith("INSERT INTO interactions") for s in ours), ours
