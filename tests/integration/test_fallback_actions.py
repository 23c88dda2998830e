"""A queue's fallback actions are carried out, and a web-form contact's answer says what happened."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import delete

from frontoffice.bootstrap import Container, build_container
from frontoffice.services.acd_commands import Tick
from frontoffice.store.tables import FallbackOutcome, Ticket, TicketInteraction
from frontoffice.web.app import create_app

from ..conftest import ShiftedClock, eventually
from .test_acd_api import API, Desk, desk

__all__ = ["desk"]


async def _post(desk: Desk, **body: Any) -> dict[str, Any]:
    payload = {
        "entry_point": "site",
        "subject": "Invoice 42 is wrong",
        "body": "The amount is twice what we agreed.",
        "customer": {"first_name": "Ivan", "email": "ivan@example.ru"},
    } | body
    r = await desk.client.post(f"{API}/interactions", json=payload, headers=desk.admin)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_contact_that_waits_is_answered_as_queued(desk: Desk) -> None:
    await desk.entry("site", await desk.queue("support"))

    answer = await _post(desk)

    assert answer["outcome"] == "queued" and answer["fallback"] is None
    iid = answer["interaction"]["id"]
    r = await desk.client.get(f"{API}/interactions/{iid}/fallback", headers=desk.admin)
    assert r.status_code == 404 and r.json()["error_id"] == "not-turned-away"


async def test_a_full_queue_with_a_ticket_fallback_opens_a_ticket_with_the_contact_s_content(
    desk: Desk,
) -> None:
    await desk.entry("site", await desk.queue("support", max_length=0, fallback_action="ticket"))

    answer = await _post(desk)

    assert answer["outcome"] == "fallback"
    assert answer["fallback"]["action"] == "ticket" and answer["fallback"]["reason"] == "max_length"
    ticket = (
        await desk.client.get(f"{API}/tickets/{answer['fallback']['ticket_id']}", headers=desk.admin)
    ).json()
    assert ticket["subject"] == "Invoice 42 is wrong"
    assert ticket["description"] == "The amount is twice what we agreed."
    assert ticket["customer_id"] == answer["interaction"]["customer_id"]
    assert ticket["interaction_ids"] == [answer["interaction"]["id"]]


async def test_a_web_form_turned_away_to_voicemail_gets_a_ticket_too(desk: Desk) -> None:
    await desk.entry("site", await desk.queue("support", max_length=0, fallback_action="voicemail"))

    answer = await _post(desk)

    assert answer["fallback"]["action"] == "voicemail" and answer["fallback"]["ticket_id"] is not None


async def test_message_and_disconnect_answers_with_the_queue_s_closed_message(desk: Desk) -> None:
    closed = "We are closed until Monday 9:00."
    q = await desk.queue(
        "support", max_length=0, fallback_action="message_and_disconnect", closed_message=closed
    )
    await desk.entry("site", q)

    answer = await _post(desk)

    assert answer["outcome"] == "fallback" and answer["fallback"]["message"] == closed
    iid = answer["interaction"]["id"]
    messages = (await desk.client.get(f"{API}/interactions/{iid}/messages", headers=desk.admin)).json()
    assert [(m["direction"], m["body"]) for m in messages][-1] == ("outbound", closed)


async def test_a_contact_refused_without_a_fallback_says_so_and_why(desk: Desk) -> None:
    await desk.entry("site", await desk.queue("support", max_length=0))

    answer = await _post(desk)

    assert answer["outcome"] == "refused"
    assert answer["fallback"] == {
        "action": None,
        "reason": "max_length",
        "ticket_id": None,
        "callback_id": None,
        "message": None,
    }


async def test_a_callback_fallback_calls_the_customer_back_once_an_agent_is_signed_in(
    desk: Desk, clock: ShiftedClock
) -> None:
    q = await desk.queue("support", no_agents_action="overflow", fallback_action="callback")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})

    answer = await _post(desk)

    assert answer["outcome"] == "fallback" and answer["fallback"]["reason"] == "no_agents"
    assert answer["fallback"]["callback_id"] is not None
    await desk.login("olga")
    clock.advance(600)  # past the retry of a callback its queue could not take

    async def callback_offered() -> int | None:
        source = answer["interaction"]
        r = await desk.client.get(
            f"{API}/interactions", params={"customer_id": source["customer_id"]}, headers=desk.admin
        )
        found = [i for i in r.json()["items"] if i["attributes"].get("callback_for") == source["id"]]
        # Offered to olga: in the store and on her socket.
        return found[0]["id"] if found and found[0]["id"] in desk.offers_to("olga") else None

    assert await eventually(callback_offered)


async def test_a_contact_that_waits_too_long_gets_its_ticket_when_the_wait_runs_out(
    desk: Desk, clock: ShiftedClock
) -> None:
    await desk.entry("site", await desk.queue("support", max_wait_s=60, fallback_action="ticket"))
    answer = await _post(desk)
    assert answer["outcome"] == "queued"
    customer = answer["interaction"]["customer_id"]

    clock.advance(61)
    await desk.container.acd.execute(Tick())  # the maximum wait passes now

    async def tickets() -> list[dict[str, Any]]:
        r = await desk.client.get(f"{API}/customers/{customer}/tickets", headers=desk.admin)
        return list(r.json()["items"])

    found = await eventually(tickets)
    assert found[0]["interaction_ids"] == [answer["interaction"]["id"]]
    turned = await desk.client.get(
        f"{API}/interactions/{answer['interaction']['id']}/fallback", headers=desk.admin
    )
    assert turned.status_code == 200, turned.text
    assert turned.json()["action"] == "ticket" and turned.json()["reason"] == "max_wait"


async def test_a_fallback_action_a_crash_left_undone_is_carried_out_at_the_next_start(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    await desk.entry("site", await desk.queue("support", max_length=0, fallback_action="ticket"))
    answer = await _post(desk)
    customer = answer["interaction"]["customer_id"]
    # A crash between the ACD's commit and the action: the decision is stored, the action's work is not.
    async with container.sessions.begin() as s:
        await s.execute(delete(FallbackOutcome))
        await s.execute(delete(TicketInteraction))
        await s.execute(delete(Ticket))
    await container.close()

    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(again)), base_url="http://testserver"
        ) as client:
            r = await client.get(f"{API}/customers/{customer}/tickets", headers=desk.admin)
            [ticket] = r.json()["items"]
            assert ticket["interaction_ids"] == [answer["interaction"]["id"]]
            r = await client.get(
                f"{API}/interactions/{answer['interaction']['id']}/fallback", headers=desk.admin
            )
            assert r.json()["ticket_id"] == ticket["id"] and r.json()["reason"] == "max_length"
    finally:
        await again.close()
