"""The ACD through the API: configuration, web-form contacts, offers, wrap-up, supervision, restart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container, build_container
from frontoffice.bus import BusMessage
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_commands import FinishContact, Tick
from frontoffice.services.channel_contract import CustomerIdentity, InboundContact
from frontoffice.store.tables import Interaction, InteractionEvent

from ..conftest import ShiftedClock, token_headers

API = "/api/v1"


class Desk:
    """A scenario: one queue, an entry point, agents with tokens, a bus listener."""

    def __init__(self, client: httpx.AsyncClient, container: Container, admin: dict[str, str]) -> None:
        self.client = client
        self.container = container
        self.admin = admin
        self.agents: dict[str, dict[str, str]] = {}
        self.agent_ids: dict[str, int] = {}
        self.messages: list[BusMessage] = []
        self.sub = container.bus.subscribe()

    def drain(self) -> list[BusMessage]:
        while not self.sub.queue.empty():
            self.messages.append(self.sub.queue.get_nowait())
        return self.messages

    async def queue(self, name: str, **settings: Any) -> int:
        r = await self.client.post(
            f"{API}/queues", json={"name": name, "settings": settings}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def agent(self, name: str, queues: dict[int, int], **profile: Any) -> dict[str, str]:
        headers = await token_headers(self.container, name, Role.AGENT)
        me = (await self.client.get(f"{API}/me", headers=headers)).json()
        body = {"queues": {str(k): v for k, v in queues.items()}, **profile}
        r = await self.client.put(f"{API}/agents/{me['id']}", json=body, headers=self.admin)
        assert r.status_code == 200, r.text
        self.agents[name] = headers
        self.agent_ids[name] = me["id"]
        return headers

    async def login(self, name: str) -> None:
        r = await self.client.post(f"{API}/agent/login", json={}, headers=self.agents[name])
        assert r.status_code == 204, r.text

    async def entry(self, address: str, default_queue: int, rules: list[dict[str, Any]] | None = None) -> int:
        r = await self.client.post(
            f"{API}/entry-points",
            json={
                "name": address,
                "channel": "webform",
                "address": address,
                "default_queue_id": default_queue,
                "rules": rules or [],
            },
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def contact(self, entry: str = "site", key: str | None = None, **body: Any) -> dict[str, Any]:
        headers = dict(self.admin)
        if key:
            headers["Idempotency-Key"] = key
        payload = {
            "entry_point": entry,
            "subject": "Question",
            "body": "Hello",
            "customer": {"first_name": "Ivan", "phone": "+7 916 000-00-01"},
        } | body
        r = await self.client.post(f"{API}/interactions", json=payload, headers=headers)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def offers_to(self, name: str) -> list[int]:
        agent_id = self.agent_ids[name]
        return [
            m.data["contact_id"]
            for m in self.drain()
            if m.type == "offer_contact" and agent_id in m.data["agent_ids"]
        ]

    async def state(self, interaction_id: int) -> str:
        r = await self.client.get(f"{API}/interactions/{interaction_id}", headers=self.admin)
        return str(r.json()["state"])


@pytest.fixture
async def desk(client, container, admin_headers) -> Desk:
    return Desk(client, container, admin_headers)


async def test_web_form_contact_is_offered_accepted_and_completed_into_history(desk: Desk) -> None:
    q = await desk.queue("support", wrap_up_s=30, disposition_required=True)
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    await desk.client.put(
        f"{API}/codes/dispositions", json={"code": "resolved", "name": "Resolved"}, headers=desk.admin
    )

    created = await desk.contact()
    iid = created["interaction"]["id"]
    assert created["created"] is True
    assert desk.offers_to("olga") == [iid]
    assert await desk.state(iid) == "offered"

    olga = desk.agents["olga"]
    assert (await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=olga)).status_code == 204
    assert await desk.state(iid) == "connected"
    r = await desk.client.post(f"{API}/agent/contacts/{iid}/complete", json={}, headers=olga)
    assert r.status_code == 400 and r.json()["error_id"] == "disposition-required"
    r = await desk.client.post(
        f"{API}/agent/contacts/{iid}/complete", json={"disposition": "nope"}, headers=olga
    )
    assert r.status_code == 400 and r.json()["error_id"] == "unknown-disposition"
    r = await desk.client.post(
        f"{API}/agent/contacts/{iid}/complete",
        json={"disposition": "resolved", "notes": "Explained the invoice"},
        headers=olga,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "done" and r.json()["disposition"] == "resolved"
    status = (await desk.client.get(f"{API}/agent/status", headers=olga)).json()
    assert status["state"] == "available" and status["contacts_today"] == 1

    customer_id = created["interaction"]["customer_id"]
    timeline = (await desk.client.get(f"{API}/customers/{customer_id}/timeline", headers=desk.admin)).json()
    assert {(i["kind"], i.get("disposition")) for i in timeline["items"]} == {
        ("interaction", "resolved"),
        ("note", None),
    }
    events = [
        e["type"]
        for e in (await desk.client.get(f"{API}/interactions/{iid}/events", headers=desk.admin)).json()
    ]
    assert events[:4] == ["created", "message", "queued", "offered"]
    assert "connected" in events and "wrap_up" in events and events[-2:] == ["done", "note"]


async def test_idempotency_key_makes_retries_safe(desk: Desk, container: Container) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    first = await desk.contact(key="form-123")
    again = await desk.contact(key="form-123")
    assert again["created"] is False and again["interaction"]["id"] == first["interaction"]["id"]
    r = await desk.client.post(
        f"{API}/interactions",
        json={"entry_point": "site", "subject": "other"},
        headers={**desk.admin, "Idempotency-Key": "form-123"},
    )
    assert r.status_code == 409 and r.json()["error_id"] == "idempotency-key-reused"
    async with container.sessions() as s:
        assert len(list(await s.scalars(select(Interaction.id)))) == 1


async def test_offer_timeout_returns_contact_to_its_place_and_tries_the_next_agent(
    desk: Desk, clock: ShiftedClock, container: Container
) -> None:
    q = await desk.queue("support", offer_timeout_s=15)
    await desk.entry("site", q)
    await desk.agent("a1", {q: 1})
    await desk.agent("a2", {q: 1})
    await desk.login("a1")
    iid = (await desk.contact())["interaction"]["id"]
    assert desk.offers_to("a1") == [iid]
    await desk.login("a2")  # a2 is free now, but the contact is ringing at a1
    clock.advance(16)
    await container.acd.execute(Tick())
    assert desk.offers_to("a2") == [iid]
    types = [
        e["type"]
        for e in (await desk.client.get(f"{API}/interactions/{iid}/events", headers=desk.admin)).json()
    ]
    assert "offer_timed_out" in types


async def test_rules_route_by_subject_and_customer_tags(desk: Desk) -> None:
    general = await desk.queue("general")
    billing = await desk.queue("billing")
    vip = await desk.queue("vip")
    await desk.entry(
        "site",
        general,
        rules=[
            {"rule": '"vip" in customer.tags', "queue_id": vip},
            {"rule": 'channel == "webform" and subject contains "invoice"', "queue_id": billing},
        ],
    )
    r = await desk.client.post(
        f"{API}/customers",
        json={"first_name": "V", "tags": ["vip"], "identities": [{"kind": "email", "value": "v@x.ru"}]},
        headers=desk.admin,
    )
    assert r.status_code == 201
    a = await desk.contact(subject="Where is my INVOICE?", customer={"email": "new@x.ru"})
    b = await desk.contact(subject="Where is my invoice?", customer={"email": "v@x.ru"})
    c = await desk.contact(subject="Hello", customer={"email": "other@x.ru"})
    assert [x["interaction"]["queue_id"] for x in (a, b, c)] == [billing, vip, general]


async def test_a_contact_after_an_entry_point_changes_follows_its_new_rules(desk: Desk) -> None:
    general = await desk.queue("general")
    vip = await desk.queue("vip")
    entry = await desk.entry("site", general)
    first = await desk.contact(customer={"email": "a@x.ru"})
    r = await desk.client.put(
        f"{API}/entry-points/{entry}",
        json={
            "name": "site",
            "channel": "webform",
            "address": "site",
            "default_queue_id": general,
            "rules": [{"rule": 'subject contains "Question"', "queue_id": vip}],
        },
        headers=desk.admin,
    )
    assert r.status_code == 200, r.text
    second = await desk.contact(customer={"email": "a@x.ru"})
    assert [x["interaction"]["queue_id"] for x in (first, second)] == [general, vip]


async def test_a_bad_rule_is_rejected_when_saved_with_its_position(desk: Desk) -> None:
    q = await desk.queue("general")
    r = await desk.client.post(
        f"{API}/entry-points",
        json={
            "name": "x",
            "channel": "webform",
            "address": "x",
            "default_queue_id": q,
            "rules": [{"rule": "subject contains", "queue_id": q}],
        },
        headers=desk.admin,
    )
    assert r.status_code == 422
    assert r.json()["error_id"] == "invalid-rule" and r.json()["details"]["column"] == 17


async def test_unknown_entry_point_and_bad_contact_fields_are_clear_errors(desk: Desk, container) -> None:
    r = await desk.client.post(
        f"{API}/interactions", json={"entry_point": "nowhere", "subject": "Hi"}, headers=desk.admin
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-entry-point"
    q = await desk.queue("general")
    await desk.entry("site", q)
    r = await desk.client.post(
        f"{API}/interactions", json={"entry_point": "site", "customer": {"phone": "12"}}, headers=desk.admin
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-phone"
    r = await desk.client.post(
        f"{API}/interactions", json={"entry_point": "site", "channel": "pigeon"}, headers=desk.admin
    )
    assert r.status_code == 422
    async with container.sessions() as s:
        assert list(await s.scalars(select(Interaction.id))) == []


async def test_supervisor_moves_a_waiting_contact_and_sees_the_wallboard(desk: Desk, container) -> None:
    q1 = await desk.queue("first")
    q2 = await desk.queue("second")
    await desk.entry("site", q1)
    await desk.agent("bob", {q2: 1})
    await desk.login("bob")
    iid = (await desk.contact())["interaction"]["id"]
    sup = await token_headers(container, "sup", Role.SUPERVISOR)
    board = (await desk.client.get(f"{API}/wallboard", headers=sup)).json()
    first = next(x for x in board["queues"] if x["queue_id"] == q1)
    assert first["waiting"] == 1
    r = await desk.client.post(f"{API}/interactions/{iid}/move", json={"queue_id": q2}, headers=sup)
    assert r.status_code == 204
    assert desk.offers_to("bob") == [iid]
    agent_headers = desk.agents["bob"]
    assert (await desk.client.get(f"{API}/wallboard", headers=agent_headers)).status_code == 403


async def test_restart_keeps_waiting_order_and_returns_ringing_offers_to_the_line(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("carl", {q: 1})
    ids = [(await desk.contact(customer={"email": f"c{i}@x.ru"}))["interaction"]["id"] for i in range(4)]
    await desk.login("carl")
    assert desk.offers_to("carl") == [ids[0]]
    await container.close()

    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        order = [int(c) for c in again.acd.engine.waiting_contacts(str(q))]
        status = again.acd.engine.agent_status(str(desk.agent_ids["carl"]))
        assert status.state == "available"
        # The offer that was ringing is made again to the same free agent, the rest keep their order.
        assert status.offered_contact_ids == (str(ids[0]),)
        assert order[-3:] == ids[1:]
        async with again.sessions() as s:
            rows = {i.id: i.state for i in await s.scalars(select(Interaction))}
            events = len(list(await s.scalars(select(InteractionEvent.id))))
        assert rows[ids[0]] == "offered" and all(rows[i] == "queued" for i in ids[1:])
        assert events > 0
    finally:
        await again.close()


async def test_an_agent_who_asked_for_not_ready_during_a_contact_stays_not_ready_after_restart(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("nora", {q: 1})
    await desk.login("nora")
    iid = (await desk.contact())["interaction"]["id"]
    nora = desk.agents["nora"]
    assert (await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=nora)).status_code == 204
    r = await desk.client.post(
        f"{API}/agent/state", json={"state": "not_ready", "reason": "lunch"}, headers=nora
    )
    assert r.status_code == 204
    await container.close()
    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        status = again.acd.engine.agent_status(str(desk.agent_ids["nora"]))
        assert status.state == "on_contact" and status.contact_ids == (str(iid),)
        await again.acd.execute(FinishContact(str(iid)))
        after = again.acd.engine.agent_status(str(desk.agent_ids["nora"]))
        assert after.state == "not_ready" and after.reason == "lunch"
    finally:
        await again.close()


async def test_queue_change_applies_live_without_reordering_or_signing_agents_out(desk: Desk) -> None:
    q = await desk.queue("support", wrap_up_s=0)
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    first = (await desk.contact(customer={"email": "a@example.com"}))["interaction"]["id"]
    second = (await desk.contact(customer={"email": "b@example.com"}))["interaction"]["id"]

    settings = (await desk.client.get(f"{API}/queues/{q}", headers=desk.admin)).json()["settings"]
    settings |= {"disposition_required": True, "strategy": "round_robin"}
    r = await desk.client.patch(f"{API}/queues/{q}", json={"settings": settings}, headers=desk.admin)
    assert r.status_code == 200, r.text
    waiting = (await desk.client.get(f"{API}/queues/{q}/waiting", headers=desk.admin)).json()
    assert [w["interaction_id"] for w in waiting] == [first, second]

    await desk.login("olga")
    assert desk.offers_to("olga") == [first]
    olga = desk.agents["olga"]
    assert (await desk.client.post(f"{API}/agent/offers/{first}/accept", headers=olga)).status_code == 204
    # Changed while olga is on a contact: she stays signed in, and the new rule applies at once.
    settings["wrap_up_s"] = 5
    r = await desk.client.patch(f"{API}/queues/{q}", json={"settings": settings}, headers=desk.admin)
    assert r.status_code == 200, r.text
    assert (await desk.client.get(f"{API}/agent/status", headers=olga)).json()["state"] == "on_contact"
    r = await desk.client.post(f"{API}/agent/contacts/{first}/complete", json={}, headers=olga)
    assert r.status_code == 400 and r.json()["error_id"] == "disposition-required"


async def test_a_sticky_reservation_survives_a_restart_and_then_expires(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support", sticky_s=60, wrap_up_s=0)
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1}, capacity={"webform": 1})
    await desk.agent("pete", {q: 1}, capacity={"webform": 1})
    await desk.login("olga")
    olga = desk.agents["olga"]
    first = (await desk.contact())["interaction"]["id"]  # Ivan, served by olga
    assert (await desk.client.post(f"{API}/agent/offers/{first}/accept", headers=olga)).status_code == 204
    r = await desk.client.post(f"{API}/agent/contacts/{first}/complete", json={}, headers=olga)
    assert r.status_code == 200, r.text
    other = (await desk.contact(customer={"email": "someone@example.com"}))["interaction"]["id"]
    assert (await desk.client.post(f"{API}/agent/offers/{other}/accept", headers=olga)).status_code == 204

    again_ivan = (await desk.contact())["interaction"]["id"]  # olga is busy: reserved for her
    await desk.login("pete")
    assert again_ivan not in desk.offers_to("pete")
    await container.close()

    restarted = build_container(container.settings, clock=clock)
    await restarted.start()
    try:
        status = restarted.acd.engine.contact_status(str(again_ivan))
        assert status.state == "waiting" and status.target_agent == str(desk.agent_ids["olga"])
        pete = restarted.acd.engine.agent_status(str(desk.agent_ids["pete"]))
        assert pete.state == "available" and pete.offered_contact_ids == ()
        clock.advance(61)
        await restarted.acd.execute(Tick())
        pete = restarted.acd.engine.agent_status(str(desk.agent_ids["pete"]))
        assert pete.offered_contact_ids == (str(again_ivan),)
    finally:
        await restarted.close()


async def test_a_channels_inbound_contact_is_taken_in_once_however_often_it_is_delivered(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    q = await desk.queue("mail")
    await desk.entry("site", q)
    inbound = InboundContact(
        Channel.WEBFORM,
        entry_point="site",
        customer=CustomerIdentity(email="anna@example.com", first_name="Anna"),
        subject="Invoice",
        body="Where is my invoice?",
        external_id="<m1@example.com>",
    )
    first = await container.intake.take_in(inbound, dedupe_key=inbound.dedupe_key)
    again = await container.intake.take_in(inbound, dedupe_key=inbound.dedupe_key)
    assert first.created and not again.created
    assert again.interaction.id == first.interaction.id
    assert first.interaction.external_ref == "<m1@example.com>"
    assert first.interaction.state.value in ("queued", "offered")
    assert first.interaction.customer_id is not None
