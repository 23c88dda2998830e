"""SLA policies on tickets over the API and the SLA job, on SQLite and PostgreSQL, with a fake clock
that crosses business-hours boundaries; status rules for a customer's reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.services.context import Actor
from frontoffice.store.tables import AuditEntry

API = "/api/v1"
MOSCOW = ZoneInfo("Europe/Moscow")
HOUR = 3600
FRIDAY_17 = datetime(2026, 12, 4, 17, 0, tzinfo=MOSCOW)
MONDAY = datetime(2026, 12, 7, tzinfo=MOSCOW)


class FakeClock:
    """A clock that stands still until the test moves it (the SLA job's notion of now)."""

    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(FRIDAY_17)


async def setup_policies(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
    r = await client.post(
        f"{API}/calendars",
        json={
            "name": "Moscow office",
            "time_zone": "Europe/Moscow",
            "weekly": {d: ["09:00-13:00", "14:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "holidays": ["2026-12-08"],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    calendar = r.json()["id"]
    r = await client.post(
        f"{API}/sla-policies",
        json={
            "name": "VIP",
            "position": 1,
            "customer_tags": ["vip"],
            "calendar_id": calendar,
            "first_response_s": HOUR,
            "next_response_s": 2 * HOUR,
            "resolution_s": 8 * HOUR,
            "warn_before_s": 15 * 60,
            "breach_priority": "urgent",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    vip = r.json()["id"]
    r = await client.post(
        f"{API}/sla-policies",
        json={"name": "Everyone", "position": 2, "first_response_s": 24 * HOUR, "notify_supervisors": False},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return {"calendar": calendar, "vip": vip, "default": r.json()["id"]}


async def new_ticket(
    client: httpx.AsyncClient, headers: dict[str, str], *, tags: list[str]
) -> dict[str, Any]:
    r = await client.post(f"{API}/customers", json={"first_name": "Anna", "tags": tags}, headers=headers)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/tickets", json={"customer_id": r.json()["id"], "subject": "Broken kettle"}, headers=headers
    )
    assert r.status_code == 201, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


async def sla_audit(container: Container, ticket_id: int) -> list[tuple[str, str]]:
    async with container.sessions() as s:
        rows = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_id == str(ticket_id), AuditEntry.action.like("ticket.sla_%"))
            .order_by(AuditEntry.id)
        )
        return [(e.action, e.details["metric"]) for e in rows]


async def get(client: httpx.AsyncClient, headers: dict[str, str], ticket_id: int) -> dict[str, Any]:
    r = await client.get(f"{API}/tickets/{ticket_id}", headers=headers)
    assert r.status_code == 200, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_friday_evening_ticket_is_due_on_monday_and_pending_pauses_its_clock(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container, clock: FakeClock
) -> None:
    policies = await setup_policies(client, admin_headers)
    vip = await new_ticket(client, admin_headers, tags=["vip"])
    plain = await new_ticket(client, admin_headers, tags=[])
    assert vip["sla_policy_id"] == policies["vip"] and plain["sla_policy_id"] == policies["default"]
    # One business hour from Friday 17:00: 17:00-18:00 Friday.
    assert instant(vip["sla_due_at"]) == FRIDAY_17 + timedelta(hours=1)
    # Around the clock for the default policy.
    assert instant(plain["sla_due_at"]) == FRIDAY_17 + timedelta(hours=24)

    clock.advance(30 * 60)  # 17:30: half an hour used
    r = await client.patch(f"{API}/tickets/{vip['id']}", json={"status": "pending"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["sla_due_at"] is None
    clock.set(MONDAY.replace(hour=12))  # Monday 12:00: the customer's answer arrives
    r = await client.patch(f"{API}/tickets/{vip['id']}", json={"status": "open"}, headers=admin_headers)
    assert instant(r.json()["sla_due_at"]) == MONDAY.replace(hour=12, minute=30)

    # The work list sorts by time left: the other ticket's 24 hours ran out on Saturday.
    r = await client.get(f"{API}/tickets", params={"sort": "sla_due_at"}, headers=admin_headers)
    assert [t["id"] for t in r.json()["items"]] == [plain["id"], vip["id"]]


async def test_the_sla_job_warns_then_breaches_once_escalates_and_tells_supervisors(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container, clock: FakeClock
) -> None:
    await container.sla.stop()  # the test drives the job itself
    await setup_policies(client, admin_headers)
    inbox = container.bus.subscribe(lambda m: m.type == "ticket.sla", keys=["supervisors"])
    clock.set(MONDAY.replace(hour=12, minute=30))
    ticket = await new_ticket(client, admin_headers, tags=["vip"])
    # An hour of business time from 12:30 crosses lunch: 12:30-13:00 and 14:00-14:30.
    assert instant(ticket["sla_due_at"]) == MONDAY.replace(hour=14, minute=30)

    clock.set(MONDAY.replace(hour=13, minute=59))
    assert await container.sla.run_due() == []
    clock.set(MONDAY.replace(hour=14, minute=15))
    assert await container.sla.run_due() == [(ticket["id"], "first_response", "warning")]
    assert await container.sla.run_due() == []
    clock.set(MONDAY.replace(hour=14, minute=31))
    assert await container.sla.run_due() == [(ticket["id"], "first_response", "breach")]
    assert await container.sla.run_due() == []
    assert await sla_audit(container, ticket["id"]) == [
        ("ticket.sla_warning", "first_response"),
        ("ticket.sla_breach", "first_response"),
    ]
    assert (await get(client, admin_headers, ticket["id"]))["priority"] == "urgent"
    events = [inbox.queue.get_nowait().data for _ in range(inbox.queue.qsize())]
    assert [(e["ticket_id"], e["event"]) for e in events] == [
        (ticket["id"], "warning"),
        (ticket["id"], "breach"),
    ]

    # The agent answers; the customer writes back; the next response is due in two business hours,
    # across the night and Tuesday's holiday: Monday 17:00-18:00, then Wednesday 09:00-10:00.
    clock.set(MONDAY.replace(hour=16))
    await container.tickets.agent_replied(Actor.system(), ticket["id"])
    clock.set(MONDAY.replace(hour=17))
    replied = await container.tickets.customer_replied(ticket["id"])
    assert replied.id == ticket["id"]
    assert replied.sla_due_at == MONDAY.replace(day=9, hour=10)


async def test_a_customer_reply_reopens_a_recently_solved_ticket_and_follows_up_a_closed_one(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container, clock: FakeClock
) -> None:
    recent = await new_ticket(client, admin_headers, tags=[])
    old = await new_ticket(client, admin_headers, tags=[])
    closed = await new_ticket(client, admin_headers, tags=[])
    for ticket_id, status in ((recent["id"], "solved"), (old["id"], "solved"), (closed["id"], "closed")):
        r = await client.patch(f"{API}/tickets/{ticket_id}", json={"status": status}, headers=admin_headers)
        assert r.status_code == 200, r.text
    clock.advance(6 * 24 * HOUR)
    r = await client.patch(f"{API}/tickets/{recent['id']}", json={"priority": "high"}, headers=admin_headers)
    assert r.status_code == 200  # a solved ticket can still change; its solved time stays
    clock.advance(24 * HOUR)  # seven days after solving: still within the reopen period

    reopened = await container.tickets.customer_replied(recent["id"])
    assert reopened.id == recent["id"] and reopened.status == "open" and reopened.solved_at is None

    clock.advance(1)  # "old" was solved seven days and a second ago
    follow_up = await container.tickets.customer_replied(old["id"])
    assert follow_up.id != old["id"] and follow_up.follow_up_of_id == old["id"]
    assert (await get(client, admin_headers, old["id"]))["status"] == "solved"

    after_close = await container.tickets.customer_replied(closed["id"])
    assert after_close.follow_up_of_id == closed["id"] and after_close.status == "open"
    assert after_close.customer_id == closed["customer_id"]
    assert (await get(client, admin_headers, closed["id"]))["status"] == "closed"


async def test_only_supervisors_write_sla_policies_and_a_missing_calendar_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str], agent_headers: dict[str, str]
) -> None:
    r = await client.post(
        f"{API}/sla-policies", json={"name": "x", "first_response_s": 60}, headers=agent_headers
    )
    assert r.status_code == 403
    r = await client.post(
        f"{API}/sla-policies",
        json={"name": "x", "first_response_s": 60, "calendar_id": 999},
        headers=admin_headers,
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-calendar"
    r = await client.get(f"{API}/sla-policies", headers=agent_headers)
    assert r.status_code == 200 and r.json() == []


async def test_the_sla_report_gives_compliance_response_times_and_the_backlog_by_age(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container, clock: FakeClock
) -> None:
    await container.sla.stop()
    await setup_policies(client, admin_headers)
    clock.set(MONDAY.replace(hour=9))
    fast = await new_ticket(client, admin_headers, tags=["vip"])
    slow = await new_ticket(client, admin_headers, tags=["vip"])
    clock.set(MONDAY.replace(hour=9, minute=30))
    await container.tickets.agent_replied(Actor.system(), fast["id"])
    clock.set(MONDAY.replace(hour=11))
    await container.sla.run_due()  # the slow one's first response breached at 10:00
    await container.tickets.agent_replied(Actor.system(), slow["id"])
    r = await client.patch(f"{API}/tickets/{fast['id']}", json={"status": "solved"}, headers=admin_headers)
    assert r.status_code == 200
    clock.set(MONDAY + timedelta(days=2, hours=12))

    r = await client.get(
        f"{API}/reports/sla",
        params={"since": MONDAY.isoformat(), "until": (MONDAY + timedelta(days=1)).isoformat()},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    report = r.json()
    first = report["metrics"]["first_response"]
    assert (report["tickets"], first["met"], first["breached"], first["compliance_ratio"]) == (2, 1, 1, 0.5)
    assert first["mean_s"] == (30 * 60 + 2 * HOUR) / 2
    resolution = report["metrics"]["resolution"]
    assert (resolution["met"], resolution["median_s"]) == (1, 2 * HOUR)
    backlog = report["backlog"]
    assert (backlog["total"], backlog["from_1d_to_3d"]) == (1, 1)
    r = await client.get(
        f"{API}/reports/sla",
        params={"since": MONDAY.isoformat(), "until": (MONDAY + timedelta(days=100)).isoformat()},
        headers=admin_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-period"


async def test_a_merged_tickets_clocks_stop_and_the_job_leaves_it_alone(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container, clock: FakeClock
) -> None:
    await container.sla.stop()
    await setup_policies(client, admin_headers)
    clock.set(MONDAY.replace(hour=9))
    r = await client.post(
        f"{API}/customers", json={"first_name": "Anna", "tags": ["vip"]}, headers=admin_headers
    )
    customer = r.json()["id"]
    ids = []
    for subject in ("first", "duplicate"):
        r = await client.post(
            f"{API}/tickets", json={"customer_id": customer, "subject": subject}, headers=admin_headers
        )
        ids.append(r.json()["id"])
    r = await client.post(
        f"{API}/tickets/{ids[0]}/merge", json={"ticket_ids": [ids[1]]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    assert (await get(client, admin_headers, ids[1]))["sla_due_at"] is None
    clock.set(MONDAY.replace(hour=12))
    assert {ticket_id for ticket_id, _, _ in await container.sla.run_due()} == {ids[0]}
