"""An agent signs in to a subset of their queues, changes it live, and keeps it over a restart."""

from __future__ import annotations

from frontoffice.bootstrap import Container, build_container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor

from ..conftest import ShiftedClock
from .test_acd_api import API, Desk, desk  # noqa: F401  (the fixture)


async def test_an_agent_signed_in_to_one_queue_gets_only_its_contacts_until_adding_the_other(
    desk: Desk,  # noqa: F811
    container: Container,
    clock: ShiftedClock,
) -> None:
    support = await desk.queue("support")
    billing = await desk.queue("billing")
    await desk.entry("site", support, rules=[{"rule": 'subject contains "invoice"', "queue_id": billing}])
    mila = await desk.agent("mila", {support: 1, billing: 1})

    r = await desk.client.post(f"{API}/agent/login", json={"queues": [billing, 999]}, headers=mila)
    assert r.status_code == 400 and r.json()["error_id"] == "not-a-queue-member"
    r = await desk.client.post(f"{API}/agent/login", json={"queues": []}, headers=mila)
    assert r.status_code == 400 and r.json()["error_id"] == "no-queue-chosen"
    r = await desk.client.post(f"{API}/agent/login", json={"queues": [support]}, headers=mila)
    assert r.status_code == 204, r.text
    mine = {
        q["queue_id"]: q["signed_in"]
        for q in (await desk.client.get(f"{API}/agent/queues", headers=mila)).json()
    }
    assert mine == {support: True, billing: False}

    invoice = (await desk.contact(subject="invoice 12"))["interaction"]["id"]
    assert desk.offers_to("mila") == []
    assert await desk.state(invoice) == "queued"
    question = (await desk.contact(subject="question", customer={"email": "q@example.com"}))["interaction"][
        "id"
    ]
    assert desk.offers_to("mila") == [question]
    r = await desk.client.post(f"{API}/agent/offers/{question}/reject", headers=mila)
    assert r.status_code == 204

    # The choice survives a restart of the routing engine.
    await container.close()
    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        agent = str(desk.agent_ids["mila"])
        assert again.acd.engine.agent_status(agent).state != "offline"
        assert set(again.acd.engine.waiting_contacts(str(billing))) == {str(invoice)}
        # Adding billing while signed in: the waiting invoice contact is offered at once.
        me = Actor(user_id=desk.agent_ids["mila"], role=Role.AGENT, username="mila")
        await again.desk.choose_queues(me, [support, billing])
        offered = again.acd.engine.agent_status(agent).offered_contact_ids
        assert str(invoice) in offered or str(question) in offered
    finally:
        await again.close()
