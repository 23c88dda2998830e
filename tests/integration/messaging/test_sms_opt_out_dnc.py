"""An SMS opt-out (STOP) also puts the number on the do-not-call list of the entry point's project
(global for an entry point of no project), in the same transaction, audited; START takes that entry
off again, and an entry an agent added stays."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.services.campaign_schemas import DncIn
from frontoffice.services.context import Actor
from frontoffice.services.dnc import DncSource, dnc_check
from frontoffice.store.tables import AuditEntry, DoNotCallEntry, EntryPoint, Project, utcnow
from tests.integration.test_conversations import ChatDesk

SHOP = "+74951112233"
CUSTOMER = "+79161234567"


async def sms_entry_point(container: Container, queue: int, *, project_id: int | None, address: str) -> None:
    async with container.sessions.begin() as s:
        s.add(
            EntryPoint(
                name="Shop SMS",
                channel="sms",
                address=address,
                project_id=project_id,
                default_queue_id=queue,
                config={},
                created_at=utcnow(),
            )
        )


async def entries(container: Container) -> list[tuple[str, str, str]]:
    async with container.sessions() as s:
        rows = await s.execute(
            select(DoNotCallEntry.phone, DoNotCallEntry.scope, DoNotCallEntry.source).order_by(
                DoNotCallEntry.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def check(container: Container, project_id: int | None) -> str:
    async with container.sessions() as s:
        return await dnc_check(s, CUSTOMER, project_id)


async def test_stop_puts_the_number_on_the_project_s_do_not_call_list_and_start_takes_it_off(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue = await ChatDesk(client, container, admin_headers).queue("SMS")
    async with container.sessions.begin() as s:
        project = Project(code="shop", name="Shop", created_at=utcnow())
        s.add(project)
        await s.flush()
        project_id = project.id
    await sms_entry_point(container, queue, project_id=project_id, address=SHOP)

    await container.messaging.sms_received(SHOP, "8 916 123-45-67", "Stop!", "m-1")  # a national number
    assert await entries(container) == [(CUSTOMER, f"project:{project_id}", DncSource.OPT_OUT)]
    assert await check(container, project_id) == f"project:{project_id}"  # the list, not only the card
    async with container.sessions() as s:
        logged = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "dnc.add"))).all()
    assert [e.details["source"] for e in logged] == ["opt_out"] and logged[0].details["phone"] == CUSTOMER

    await container.messaging.sms_received(SHOP, CUSTOMER, "STOP", "m-2")  # again: one entry
    assert len(await entries(container)) == 1

    await container.messaging.sms_received(SHOP, CUSTOMER, "START", "m-3")
    assert await entries(container) == []
    assert await check(container, project_id) == "clear"


async def test_an_entry_point_of_no_project_uses_the_global_list_and_an_agent_s_entry_survives_start(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue = await ChatDesk(client, container, admin_headers).queue("SMS")
    await sms_entry_point(container, queue, project_id=None, address=SHOP)
    await container.messaging.sms_received(SHOP, CUSTOMER, "СТОП", "m-1")
    assert await entries(container) == [(CUSTOMER, "global", DncSource.OPT_OUT)]
    assert await check(container, None) == "global"

    # The customer also asked an agent on a call not to be called: that entry is theirs to keep.
    async with container.sessions.begin() as s:
        await s.execute(DoNotCallEntry.__table__.delete())
    await container.dnc.add(Actor.system(), DncIn(phone=CUSTOMER, reason="asked on the call"))
    await container.messaging.sms_received(SHOP, CUSTOMER, "START", "m-2")
    assert await entries(container) == [(CUSTOMER, "global", DncSource.AGENT)]
