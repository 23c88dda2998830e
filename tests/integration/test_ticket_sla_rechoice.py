"""SLA policy chosen again when a ticket's priority, queue or project changes, re-route on breach (the
ticket and its work item move), warnings and breaches on the live stream; the reopen window as an
administrator's site setting; closed tickets stay closed. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.bus import BusMessage
from frontoffice.domain.model import Role

from ..conftest import ShiftedClock, token_headers
from .test_ticket_routing import HelpDesk

API = "/api/v1"
HOUR = 3600


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> HelpDesk:
    return HelpDesk(client, container, admin_headers)


async def policy(desk: HelpDesk, **body: Any) -> int:
    r = await desk.client.post(f"{API}/sla-policies", json=body, headers=desk.admin)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_priority_change_chooses_the_policy_again_counting_from_the_ticket_start(
    desk: HelpDesk, clock: ShiftedClock
) -> None:
    urgent = await policy(desk, name="Urgent", position=1, priorities=["urgent"], first_response_s=HOUR)
    default = await policy(desk, name="Everyone", position=2, first_response_s=24 * HOUR)
    ticket = await desk.ticket(None)
    assert ticket["sla_policy_id"] == default
    created = instant(ticket["created_at"])
    assert instant(ticket["sla_due_at"]) == created + timedelta(hours=24)

    clock.advance(20 * 60)  # twenty minutes spent under the old target
    r = await desk.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"priority": "urgent"}, headers=desk.admin
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    # The urgent target counts from the ticket's start: an hour after creation, not after the change.
    assert changed["sla_policy_id"] == urgent
    assert abs((instant(changed["sla_due_at"]) - (created + timedelta(hours=1))).total_seconds()) < 1

    # Back to normal: the default policy again, its 24 hours still from the start.
    r = await desk.client.patch(
        f"{API}/tickets/{ticket['id']}", json={"priority": "normal"}, headers=desk.admin
    )
    assert r.json()["sla_policy_id"] == default
    assert abs((instant(r.json()["sla_due_at"]) - (created + timedelta(hours=24))).total_seconds()) < 1


async def test_a_breach_re_routes_the_ticket_and_its_work_item_and_reaches_the_stream(
    desk: HelpDesk, container: Container, clock: ShiftedClock
) -> None:
    first = await desk.queue("first line")
    second = await desk.queue("second line")
    await desk.agent("olga", {second: 1})
    await policy(
        desk,
        name="First line",
        queue_ids=[first],
        first_response_s=HOUR,
        warn_before_s=15 * 60,
        breach_priority="high",
        breach_queue_id=second,
    )
    ticket = await desk.ticket(first)
    item = ticket["work_item_id"]
    supervisor_socket = container.bus.subscribe()

    clock.advance(50 * 60)
    assert await container.sla.run_due() == [(ticket["id"], "first_response", "warning")]
    clock.advance(11 * 60)
    assert await container.sla.run_due() == [(ticket["id"], "first_response", "breach")]

    moved = await desk.get(ticket["id"])
    # Re-routed: the ticket is in the second line's queue at the raised priority, and so is its work
    # item (the same one, keeping its place), which the second line's agent is offered.
    assert moved["queue_id"] == second and moved["priority"] == "high" and moved["work_item_id"] == item
    waiting = (await desk.client.get(f"{API}/queues/{second}/waiting", headers=desk.admin)).json()
    assert [(w["interaction_id"], w["priority"]) for w in waiting] == [(item, 1)]
    await desk.login("olga")
    assert desk.offers_to("olga") == [item]

    seen: list[BusMessage] = []
    while not supervisor_socket.queue.empty():
        seen.append(supervisor_socket.queue.get_nowait())
    events = [(m.data["ticket_id"], m.data["event"]) for m in seen if m.type == "ticket.sla"]
    assert events == [(ticket["id"], "warning"), (ticket["id"], "breach")]
    assert all("supervisors" in m.audience for m in seen if m.type == "ticket.sla")


async def test_the_reopen_window_is_a_setting_and_closed_tickets_stay_closed(
    desk: HelpDesk, container: Container, clock: ShiftedClock
) -> None:
    agent = await token_headers(container, "agent", Role.AGENT)
    r = await desk.client.put(f"{API}/helpdesk/settings", json={"reopen_within_days": 2}, headers=agent)
    assert r.status_code == 403
    r = await desk.client.get(f"{API}/helpdesk/settings", headers=agent)
    assert r.status_code == 200 and r.json()["settings"]["reopen_within_days"] == 7
    r = await desk.client.put(f"{API}/helpdesk/settings", json={"reopen_within_days": 2}, headers=desk.admin)
    assert r.status_code == 200, r.text
    r = await desk.client.put(
        f"{API}/helpdesk/settings", json={"reopen_within_days": 1000}, headers=desk.admin
    )
    assert r.status_code == 422

    solved = await desk.ticket(None)
    r = await desk.client.patch(
        f"{API}/tickets/{solved['id']}", json={"status": "solved"}, headers=desk.admin
    )
    assert r.status_code == 200
    clock.advance(3 * 86_400)  # past the two days set above (the default seven would reopen it)
    follow_up = await container.tickets.customer_replied(solved["id"])
    assert follow_up.id != solved["id"] and follow_up.follow_up_of_id == solved["id"]
    assert (await desk.get(solved["id"]))["status"] == "solved"

    # Ten days: the same reply reopens the ticket, live, without a restart.
    r = await desk.client.put(f"{API}/helpdesk/settings", json={"reopen_within_days": 10}, headers=desk.admin)
    assert r.status_code == 200
    reopened = await container.tickets.customer_replied(solved["id"])
    assert reopened.id == solved["id"] and reopened.status == "open" and reopened.awaits_agent

    # Closed stays closed: a reply starts a new ticket linked to it, and the old one cannot change.
    closed = await desk.ticket(None)
    r = await desk.client.patch(
        f"{API}/tickets/{closed['id']}", json={"status": "closed"}, headers=desk.admin
    )
    assert r.status_code == 200
    linked = await container.tickets.customer_replied(closed["id"])
    assert linked.id != closed["id"] and linked.follow_up_of_id == closed["id"] and linked.status == "open"
    assert (await desk.get(closed["id"]))["status"] == "closed"
    r = await desk.client.patch(f"{API}/tickets/{closed['id']}", json={"status": "open"}, headers=desk.admin)
    assert r.status_code == 409 and r.json()["error_id"] == "ticket-closed"
