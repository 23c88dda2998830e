"""Messages that arrive together share one transaction (the ACD's group commit): without a
savepoint each, their log rows written in one statement per table; a message that fails there
fails alone, and each is answered only after its commit. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, func, select, text

from frontoffice.bootstrap import Container
from frontoffice.store.tables import Interaction, Message

from ..test_acd_group_commit import queued
from .helpers import SUPPORT, email_entry_point, mail

# A fault of the database on one message (its row cannot be written), as a full disk or a
# constraint would raise it.
_POISON = {
    "sqlite": [
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.subject = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned message'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.subject = 'poison' THEN "
        "RAISE EXCEPTION 'poisoned message'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()",
    ],
}


def _receive(container: Container, n: int, subject: str | None = None) -> Any:
    raw = mail(
        sender=f"Customer {n} <customer{n}@example.com>",
        subject=subject or f"Order {n}",
        message_id=f"<batch-{n}@example.com>",
    )
    return lambda: container.email.receive(raw, recipients=[SUPPORT])


async def test_messages_taken_in_together_share_a_transaction_without_savepoints(
    container: Container,
) -> None:
    await email_entry_point(container)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split())[:40])

    event.listen(container.engine.sync_engine, "before_cursor_execute", seen)
    try:
        results = await queued(container, *[_receive(container, n) for n in range(4)])
    finally:
        event.remove(container.engine.sync_engine, "before_cursor_execute", seen)
    assert not [x for x in results if isinstance(x, BaseException)], results
    assert [x.outcome for x in results] == ["new-contact"] * 4
    assert len({x.message_id for x in results}) == len({x.thread_id for x in results}) == 4
    assert not [x for x in statements if x.startswith(("SAVEPOINT", "RELEASE"))], statements
    # Four contacts created and queued, four new customers: one INSERT per log table.
    assert len([x for x in statements if x.startswith("INSERT INTO interaction_events")]) == 1
    assert len([x for x in statements if x.startswith("INSERT INTO audit_log")]) == 1
    # Each message's answer names what its own transaction stored.
    async with container.sessions() as s:
        stored = {m: t for m, t in (await s.execute(select(Message.id, Message.thread_id))).all()}
        assert await s.scalar(select(func.count()).select_from(Interaction)) == 4
    assert stored == {x.message_id: x.thread_id for x in results}


async def test_a_message_that_fails_in_a_shared_transaction_fails_alone(container: Container) -> None:
    await email_entry_point(container)
    async with container.engine.begin() as conn:
        for statement in _POISON[container.engine.dialect.name]:
            await conn.execute(text(statement))
    results = await queued(
        container,
        _receive(container, 1),
        _receive(container, 2),
        _receive(container, 3, subject="poison"),
        _receive(container, 4),
    )
    assert isinstance(results[2], Exception), results  # not stored: the client is told 451, retries
    others = [results[n] for n in (0, 1, 3)]
    assert [x.outcome for x in others] == ["new-contact"] * 3
    async with container.sessions() as s:
        subjects = sorted(await s.scalars(select(Message.subject)))
        assert await s.scalar(select(func.count()).select_from(Interaction)) == 3
    assert subjects == ["Order 1", "Order 2", "Order 4"]
