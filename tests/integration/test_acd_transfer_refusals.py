"""Transfers into a queue that would turn the contact away are refused before anything changes."""

from __future__ import annotations

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import token_headers
from .test_acd_api import API, Desk, desk

__all__ = ["desk"]


async def _connected(desk: Desk, queue_id: int) -> int:
    await desk.entry("site", queue_id)
    await desk.agent("olga", {queue_id: 1})
    await desk.login("olga")
    iid = int((await desk.contact())["interaction"]["id"])
    r = await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=desk.agents["olga"])
    assert r.status_code == 204, r.text
    return iid


async def test_transfer_to_a_full_queue_is_refused_and_the_contact_stays_with_its_agent(desk: Desk) -> None:
    support = await desk.queue("support")
    full = await desk.queue("billing", max_length=0, fallback_action="ticket")
    iid = await _connected(desk, support)

    r = await desk.client.post(
        f"{API}/agent/contacts/{iid}/transfer", json={"queue_id": full}, headers=desk.agents["olga"]
    )

    assert r.status_code == 409, r.text
    assert r.json()["error_id"] == "queue-not-accepting"
    assert r.json()["details"] == {"queue_id": full, "reason": "max_length"}
    assert await desk.state(iid) == "connected"
    status = (await desk.client.get(f"{API}/agent/status", headers=desk.agents["olga"])).json()
    assert status["contact_ids"] == [iid]


async def test_transfer_to_a_queue_without_agents_that_refuses_is_refused(desk: Desk) -> None:
    support = await desk.queue("support")
    empty = await desk.queue("night", no_agents_action="refuse")
    iid = await _connected(desk, support)

    r = await desk.client.post(
        f"{API}/agent/contacts/{iid}/transfer", json={"queue_id": empty}, headers=desk.agents["olga"]
    )

    assert r.status_code == 409 and r.json()["error_id"] == "queue-not-accepting"
    assert r.json()["details"]["reason"] == "no_agents"
    assert await desk.state(iid) == "connected"


async def test_transfer_to_a_full_queue_that_overflows_to_an_open_one_goes_through(desk: Desk) -> None:
    support = await desk.queue("support")
    spare = await desk.queue("spare")
    full = await desk.queue("billing", max_length=0, overflow_queue_id=spare)
    iid = await _connected(desk, support)

    r = await desk.client.post(
        f"{API}/agent/contacts/{iid}/transfer", json={"queue_id": full}, headers=desk.agents["olga"]
    )

    assert r.status_code == 204, r.text
    assert await desk.state(iid) == "queued"


async def test_a_supervisor_cannot_move_a_waiting_contact_into_a_full_queue(
    desk: Desk, container: Container
) -> None:
    first = await desk.queue("first")
    full = await desk.queue("full", max_length=0)
    await desk.entry("site", first)
    iid = int((await desk.contact())["interaction"]["id"])
    sup = await token_headers(container, "sup", Role.SUPERVISOR)

    r = await desk.client.post(f"{API}/interactions/{iid}/move", json={"queue_id": full}, headers=sup)

    assert r.status_code == 409 and r.json()["error_id"] == "queue-not-accepting"
    assert await desk.state(iid) == "queued"
