"""Tickets as routed work, through the API with the real engine, on SQLite and PostgreSQL: a ticket
that waits for us is offered like any contact on its own channel capacity, accepting assigns it,
finishing the work ends the interaction, a customer's reply queues it again (sticky to its
assignee), and a restart keeps it all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from frontoffice.bootstrap import Container, build_container
from frontoffice.bus import BusMessage
from frontoffice.domain.model import Role
from frontoffice.services.acd_commands import Tick
from frontoffice.services.context import Actor
from frontoffice.store.tables import Ticket

from ..conftest import ShiftedClock, eventually, token_headers

API = "/api/v1"


class HelpDesk:
    """A ticket queue, agents with tokens, customers, and the bus (the agents' sockets' source)."""

    def __init__(self, client: httpx.AsyncClient, container: Container, admin: dict[str, str]) -> None:
        self.client = client
        self.container = container
        self.admin = admin
        self.agents: dict[str, dict[str, str]] = {}
        self.agent_ids: dict[str, int] = {}
        self.sub = container.bus.subscribe()
        self.messages: list[BusMessage] = []
        self.customers = 0

    def drain(self) -> list[BusMessage]:
        while not self.sub.queue.empty():
            self.messages.append(self.sub.queue.get_nowait())
        return self.messages

    def offers_to(self, name: str) -> list[int]:
        agent_id = self.agent_ids[name]
        return [
            m.data["contact_id"]
            for m in self.drain()
            if m.type == "offer_contact" and agent_id in m.data["agent_ids"]
        ]

    async def queue(self, name: str, **settings: Any) -> int:
        r = await self.client.post(
            f"{API}/queues", json={"name": name, "settings": settings}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def agent(self, name: str, queues: dict[int, int], **profile: Any) -> None:
        headers = await token_headers(self.container, name, Role.AGENT)
        me = (await self.client.get(f"{API}/me", headers=headers)).json()
        body = {"queues": {str(k): v for k, v in queues.items()}, **profile}
        r = await self.client.put(f"{API}/agents/{me['id']}", json=body, headers=self.admin)
        assert r.status_code == 200, r.text
        self.agents[name] = headers
        self.agent_ids[name] = me["id"]

    async def login(self, name: str) -> None:
        r = await self.client.post(f"{API}/agent/login", json={}, headers=self.agents[name])
        assert r.status_code == 204, r.text

    async def ticket(self, queue_id: int | None, **extra: Any) -> dict[str, Any]:
        self.customers += 1
        r = await self.client.post(
            f"{API}/customers",
            json={
                "first_name": "Anna",
                "identities": [{"kind": "email", "value": f"anna{self.customers}@example.com"}],
            },
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        body = {"customer_id": r.json()["id"], "subject": "Broken kettle", "queue_id": queue_id} | extra
        r = await self.client.post(f"{API}/tickets", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        ticket: dict[str, Any] = r.json()
        return ticket

    async def get(self, ticket_id: int) -> dict[str, Any]:
        r = await self.client.get(f"{API}/tickets/{ticket_id}", headers=self.admin)
        assert r.status_code == 200, r.text
        ticket: dict[str, Any] = r.json()
        return ticket

    async def state(self, interaction_id: int) -> str:
        r = await self.client.get(f"{API}/interactions/{interaction_id}", headers=self.admin)
        return str(r.json()["state"])


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> HelpDesk:
    return HelpDesk(client, container, admin_headers)


async def test_a_new_ticket_is_offered_on_its_own_capacity_and_accepting_assigns_it(desk: HelpDesk) -> None:
    tickets_q = await desk.queue("tickets")
    await desk.agent("olga", {tickets_q: 1}, capacity={"ticket": 2, "webform": 1})
    r = await desk.client.get(f"{API}/agents/{desk.agent_ids['olga']}", headers=desk.admin)
    assert r.json()["capacity"]["ticket"] == 2
    await desk.login("olga")

    first, second, third = [await desk.ticket(tickets_q) for _ in range(3)]
    for t in (first, second, third):
        assert t["awaits_agent"] is True and t["work_item_id"] is not None
    items = [t["work_item_id"] for t in (first, second, third)]
    # Two ticket work items at once (her ticket capacity), in order; the third waits.
    assert desk.offers_to("olga") == items[:2]
    assert await desk.state(items[2]) == "queued"
    r = await desk.client.get(f"{API}/interactions/{items[0]}", headers=desk.admin)
    assert r.json()["channel"] == "ticket"

    r = await desk.client.post(f"{API}/agent/offers/{items[0]}/accept", headers=desk.agents["olga"])
    assert r.status_code == 204, r.text
    accepted = await desk.get(first["id"])
    assert accepted["assignee_id"] == desk.agent_ids["olga"]
    assert await desk.state(items[0]) == "connected"
    # The work item is the ticket's, not one of its contacts with the customer.
    assert accepted["work_item_id"] == items[0] and items[0] not in accepted["interaction_ids"]


async def test_finishing_the_work_ends_the_interaction_and_a_reply_queues_it_again_to_the_assignee(
    desk: HelpDesk, container: Container
) -> None:
    q = await desk.queue("tickets", sticky_s=300, wrap_up_s=0)
    await desk.agent("olga", {q: 1})
    await desk.agent("pete", {q: 1})
    await desk.login("olga")
    ticket = await desk.ticket(q)
    item = ticket["work_item_id"]
    assert desk.offers_to("olga") == [item]
    assert (
        await desk.client.post(f"{API}/agent/offers/{item}/accept", headers=desk.agents["olga"])
    ).status_code == 204

    # The agent answers (the outbox reports the reply): the work item ends, the ticket is hers.
    await container.tickets.agent_replied(Actor.system(), ticket["id"])
    answered = await desk.get(ticket["id"])
    assert answered["awaits_agent"] is False and answered["work_item_id"] is None
    assert await desk.state(item) == "done"

    r = await desk.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"status": "pending"}, headers=desk.admin
    )
    assert r.status_code == 200, r.text

    # Pete signs in first, but the customer's reply goes to Olga, the ticket's assignee (sticky).
    await desk.login("pete")
    desk.drain()
    desk.messages.clear()
    reopened = await container.tickets.customer_replied(ticket["id"])
    assert reopened.id == ticket["id"] and reopened.status == "open"
    again = await desk.get(ticket["id"])
    assert again["awaits_agent"] is True and again["work_item_id"] not in (None, item)
    assert desk.offers_to("olga") == [again["work_item_id"]]
    assert desk.offers_to("pete") == []

    # Olga takes it and completes the work item without replying: the ticket no longer waits.
    new_item = again["work_item_id"]
    assert (
        await desk.client.post(f"{API}/agent/offers/{new_item}/accept", headers=desk.agents["olga"])
    ).status_code == 204
    r = await desk.client.post(
        f"{API}/agent/contacts/{new_item}/complete", json={}, headers=desk.agents["olga"]
    )
    assert r.status_code == 200, r.text
    done = await desk.get(ticket["id"])
    assert done["awaits_agent"] is False and done["work_item_id"] is None and done["status"] == "open"


async def test_solving_a_waiting_ticket_withdraws_its_work_item(desk: HelpDesk) -> None:
    q = await desk.queue("tickets")
    await desk.agent("olga", {q: 1})  # not signed in: the item waits
    ticket = await desk.ticket(q)
    item = ticket["work_item_id"]
    assert await desk.state(item) == "queued"
    r = await desk.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"status": "solved"}, headers=desk.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["work_item_id"] is None and r.json()["awaits_agent"] is False
    assert await desk.state(item) == "abandoned"
    # A ticket given to an agent by hand is theirs: not routed. Without a queue: not routed either.
    mine = await desk.ticket(q, assignee_id=desk.agent_ids["olga"])
    assert mine["awaits_agent"] is False and mine["work_item_id"] is None
    loose = await desk.ticket(None)
    assert loose["awaits_agent"] is True and loose["work_item_id"] is None


async def test_ticket_work_survives_a_restart_and_an_interrupted_sync_is_finished_at_start(
    desk: HelpDesk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("tickets", wrap_up_s=0)
    await desk.agent("olga", {q: 1}, capacity={"ticket": 1})
    await desk.login("olga")
    connected = await desk.ticket(q)
    waiting = await desk.ticket(q)
    assert desk.offers_to("olga") == [connected["work_item_id"]]
    r = await desk.client.post(
        f"{API}/agent/offers/{connected['work_item_id']}/accept", headers=desk.agents["olga"]
    )
    assert r.status_code == 204
    # A third ticket committed, but the node stopped before its work item was queued.
    pending = await desk.ticket(None)
    async with container.sessions.begin() as s:
        await s.execute(update(Ticket).where(Ticket.id == pending["id"]).values(queue_id=q, work_sync=True))
    await container.close()

    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        engine = again.acd.engine
        olga = str(desk.agent_ids["olga"])
        assert engine.agent_status(olga).contact_ids == (str(connected["work_item_id"]),)
        async with again.sessions() as s:
            repaired = await s.get(Ticket, pending["id"])
            assert repaired is not None and repaired.work_item_id is not None and not repaired.work_sync
            repaired_item = repaired.work_item_id
        assert [int(c) for c in engine.waiting_contacts(str(q))] == [waiting["work_item_id"], repaired_item]
        # The agent's reply after the restart still ends the work item and frees her for the next.
        await again.tickets.agent_replied(Actor.system(), connected["id"])
        assert engine.agent_status(olga).offered_contact_ids == (str(waiting["work_item_id"]),)
    finally:
        await again.close()


async def test_a_supervisor_moving_a_ticket_to_another_queue_moves_its_waiting_work_item(
    desk: HelpDesk,
) -> None:
    first = await desk.queue("first line")
    second = await desk.queue("second line")
    await desk.agent("olga", {second: 1})
    ticket = await desk.ticket(first, priority="normal")
    r = await desk.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"queue_id": second, "priority": "urgent"}, headers=desk.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["work_item_id"] == ticket["work_item_id"]
    waiting = (await desk.client.get(f"{API}/queues/{second}/waiting", headers=desk.admin)).json()
    assert [(w["interaction_id"], w["priority"]) for w in waiting] == [(ticket["work_item_id"], 2)]
    await desk.login("olga")
    assert desk.offers_to("olga") == [ticket["work_item_id"]]


async def test_a_ticket_item_whose_wait_runs_out_opens_no_second_ticket(
    desk: HelpDesk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("tickets", max_wait_s=60, fallback_action="ticket")
    ticket = await desk.ticket(q)
    item = ticket["work_item_id"]
    clock.advance(61)
    await container.acd.execute(Tick())  # the queue's maximum wait passes now

    async def outcome() -> dict[str, Any] | None:
        r = await desk.client.get(f"{API}/interactions/{item}/fallback", headers=desk.admin)
        return r.json() if r.status_code == 200 else None

    turned = await eventually(outcome, "the fallback outcome")
    # The item's ticket is named; no ticket is opened from a ticket's own work item.
    assert turned["action"] == "ticket" and turned["ticket_id"] == ticket["id"]
    r = await desk.client.get(f"{API}/customers/{ticket['customer_id']}/tickets", headers=desk.admin)
    assert [t["id"] for t in r.json()["items"]] == [ticket["id"]]
    left = await desk.get(ticket["id"])
    assert left["work_item_id"] is None and left["awaits_agent"] is True and left["status"] == "open"
