"""What one inbound message causes is committed with it: its auto-acknowledgement (the outbox row)
and its customer's merge suggestion; the duplicate review lists that suggestion; thread tokens come
from one allocator whoever opens the thread; a message's file has one download (and an alias), with
one permission check. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, text

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Channel, IdentityKind
from frontoffice.services.acd_schemas import ContactIn, EntryPointIn, QueueIn
from frontoffice.services.context import Actor
from frontoffice.services.email_settings import EmailSettings
from frontoffice.services.schemas import CustomerIn, IdentityIn
from frontoffice.store.tables import Message, OutboxItem, Thread

from ..test_acd_api import API
from .helpers import SUPPORT, email_entry_point, mail

CORPUS = Path(__file__).parents[2] / "data" / "email"

# A fault in the outbox's table, as a crash between the message's commit and its
# acknowledgement's would leave things: the acknowledgement cannot be written.
_OUTBOX_DOWN = {
    "sqlite": [
        "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox down'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION outbox_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'outbox down'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_down()",
    ],
}
_OUTBOX_UP = {
    "sqlite": ["DROP TRIGGER outbox_down"],
    "postgresql": ["DROP TRIGGER outbox_down ON outbox", "DROP FUNCTION outbox_down()"],
}


async def _sql(container: Container, statements: list[str]) -> None:
    async with container.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def _count(container: Container, table: Any, *where: Any) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_a_message_is_never_committed_without_its_acknowledgement(container: Container) -> None:
    await email_entry_point(container, email=EmailSettings(auto_acknowledge=True))
    dialect = container.engine.dialect.name
    raw = mail(message_id="<first@customer.example>")
    await _sql(container, _OUTBOX_DOWN[dialect])
    with pytest.raises(Exception):  # noqa: B017 - the database's own error, whatever its class
        await container.email.receive(raw, recipients=[SUPPORT])
    # Nothing was acknowledged to the sender (no 250), and nothing is half stored: a message whose
    # acknowledgement is lost would be found as a duplicate at the retry and never acknowledged.
    assert await _count(container, Message) == 0
    await _sql(container, _OUTBOX_UP[dialect])
    received = await container.email.receive(raw, recipients=[SUPPORT])  # the client's retry
    assert received.outcome == "new-contact"
    assert await _count(container, Message, Message.direction == "inbound") == 1
    assert await _count(container, OutboxItem) == 1


async def test_the_merge_suggestion_of_a_signature_is_listed_by_the_duplicate_review(
    container: Container,
) -> None:
    await email_entry_point(container)
    known = await container.crm.create_customer(
        Actor.system(),
        CustomerIn(
            first_name="Анна",
            last_name="Смирнова",
            identities=[IdentityIn(kind=IdentityKind.PHONE, value="+79165551234")],
        ),
    )
    received = await container.email.receive(
        (CORPUS / "s01-gmail-new.eml").read_bytes(), recipients=[SUPPORT]
    )
    assert received.customer_id is not None and received.customer_id != known.id
    pairs = await container.crm.duplicates(Actor.system())
    (pair,) = [p for p in pairs if set(p.customer_ids) == {known.id, received.customer_id}]
    assert pair.reason == "email-signature" and "+79165551234" in pair.detail


async def test_threads_opened_for_replies_and_for_mail_share_one_token_scheme(container: Container) -> None:
    await email_entry_point(container)
    queue = await container.routing_admin.create_queue(Actor.system(), QueueIn(name="Forms"))
    await container.routing_admin.create_entry_point(
        Actor.system(),
        EntryPointIn(  # type: ignore[arg-type]
            name="Site form",
            channel=Channel.WEBFORM,
            address="site-form",
            default_queue_id=queue.id,
            email=EmailSettings(from_address="support@acme.example"),
        ),
    )
    contact = await container.intake.create_contact(
        Actor.system(),
        ContactIn(
            channel=Channel.WEBFORM,
            entry_point="site-form",
            customer={"first_name": "Oleg", "email": "oleg@customer.example"},  # type: ignore[arg-type]
            subject="Question",
            body="Call me back",
        ),
        None,
    )
    await container.replies.send_text(Actor.system(), contact.interaction.id, "We call you back.")
    async with container.sessions.begin() as s:
        reply_thread = (await s.execute(select(Thread.id, Thread.token))).one()
        # Threads opened meanwhile (by mail, splits...) until the next id is where the reply's
        # thread would have put its token under a scheme of its own (1000 + id).
        await s.execute(
            insert(Thread),
            [
                {"channel": "email", "token": -n, "subject": "", "entry_point_id": None}
                for n in range(1, 1000)
            ],
        )
    assert reply_thread.token == reply_thread.id
    received = await container.email.receive(mail(), recipients=[SUPPORT])
    assert received.outcome == "new-contact"
    async with container.sessions() as s:
        token = await s.scalar(select(Thread.token).where(Thread.id == received.thread_id))
    assert token == received.thread_id


async def test_one_attachment_download_with_one_permission_check(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await email_entry_point(container)
    received = await container.email.receive(
        (CORPUS / "a03-inline-images.eml").read_bytes(), recipients=[SUPPORT]
    )
    assert received.thread_id is not None
    page = await container.threads.messages(Actor.system(), received.thread_id)
    inline = next(a for a in page.items[0].attachments if a.inline)
    admin = admin_headers
    answers = [
        await client.get(f"{API}/threads/attachments/{inline.id}", headers=admin),
        await client.get(f"{API}/attachments/{inline.id}", headers=admin),
    ]
    for r in answers:
        assert r.status_code == 200
        assert r.headers["content-disposition"].startswith("inline;")
        assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert answers[0].content == answers[1].content
    assert answers[0].headers["content-type"] == answers[1].headers["content-type"]
