"""A callback promised at wrap-up is queued at its time, for the agent who promised it, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from frontoffice.bootstrap import Container, build_container
from frontoffice.web.app import create_app

from ..conftest import ShiftedClock, eventually
from .test_acd_api import API, Desk, desk

__all__ = ["desk"]


async def _promise(desk: Desk, clock: ShiftedClock, agent: str, in_s: float) -> dict[str, Any]:
    """A contact served by ``agent`` and completed with a callback ``in_s`` seconds from now."""
    created = await desk.contact(customer={"email": "ivan@example.ru"})
    iid = created["interaction"]["id"]
    headers = desk.agents[agent]
    assert (await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=headers)).status_code == 204
    due = datetime.now(UTC) + clock.offset + timedelta(seconds=in_s)
    r = await desk.client.post(
        f"{API}/agent/contacts/{iid}/complete", json={"callback_at": due.isoformat()}, headers=headers
    )
    assert r.status_code == 200, r.text
    return dict(created["interaction"])


async def _callbacks(client: Any, admin: dict[str, str], source: dict[str, Any]) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/interactions", params={"customer_id": source["customer_id"]}, headers=admin)
    assert r.status_code == 200, r.text
    return [i for i in r.json()["items"] if i["attributes"].get("callback_for") == source["id"]]


async def test_a_callback_promised_at_wrap_up_is_offered_to_its_agent_when_due(
    desk: Desk, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("bob", {q: 1})
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    source = await _promise(desk, clock, "olga", in_s=3600)
    await desk.login("bob")  # free as well: without the reservation the strategy could pick him
    assert await _callbacks(desk.client, desk.admin, source) == []

    clock.advance(3601)

    async def offered_to_olga() -> dict[str, Any] | None:
        found = await _callbacks(desk.client, desk.admin, source)
        return found[0] if found and found[0]["id"] in desk.offers_to("olga") else None

    callback = await eventually(offered_to_olga)
    assert callback["direction"] == "outbound" and callback["attributes"]["callback"] is True
    assert callback["queue_id"] == q and callback["customer_id"] == source["customer_id"]
    assert callback["state"] == "offered"
    assert callback["id"] not in desk.offers_to("bob")


async def test_a_callback_due_while_the_server_was_down_is_queued_once_after_the_restart(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    source = await _promise(desk, clock, "olga", in_s=600)
    await container.close()
    clock.advance(3600)

    for _ in range(2):  # a second restart must not queue it again
        again = build_container(container.settings, clock=clock)
        await again.start()
        try:
            async with _client(again) as client:
                found = await eventually(lambda: _callbacks(client, desk.admin, source))
                assert len(found) == 1
                assert found[0]["state"] in ("queued", "offered")
                assert await again.callbacks.run_due() == []  # nothing left to queue
        finally:
            await again.close()


def _client(container: Container) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(container))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")
