"""Figures that add up, through the API: reports, the wallboard and /metrics after real contacts."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from frontoffice.bootstrap import Container, build_container
from frontoffice.services.acd_commands import Tick
from frontoffice.web.app import create_app

from ..conftest import ShiftedClock, eventually
from .test_acd_api import API, Desk


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> Desk:
    return Desk(client, container, admin_headers)


async def report(desk: Desk, clock: ShiftedClock, group_by: str, **params: Any) -> list[dict[str, Any]]:
    now = clock()
    r = await desk.client.get(
        f"{API}/stats/report",
        params={
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
            "group_by": group_by,
            "interval": 0,
            **params,
        },
        headers=desk.admin,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["rows"])


def by_key(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {row["key"]: row for row in rows}


async def post(client: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any) -> None:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code == 204, r.text


async def test_per_agent_report_counts_offers_rejections_and_time_outs(
    desk: Desk, clock: ShiftedClock, container: Container
) -> None:
    q = await desk.queue("support", offer_timeout_s=15)
    await desk.entry("site", q)
    for name in ("ann", "ben", "cid"):
        await desk.agent(name, {q: 1})
    iid = (await desk.contact())["interaction"]["id"]

    async def ringing_at() -> str:
        ringing = [n for n in ("ann", "ben", "cid") if iid in desk.offers_to(n)]
        desk.messages.clear()
        assert len(ringing) == 1
        return ringing[0]

    for name in ("ann", "ben", "cid"):
        await desk.login(name)
        if name == "ann":
            first = await ringing_at()
    await post(desk.client, f"/agent/offers/{iid}/reject", desk.agents[first])
    second = await ringing_at()
    clock.advance(16)
    await container.acd.execute(Tick())
    third = await ringing_at()
    await post(desk.client, f"/agent/offers/{iid}/accept", desk.agents[third])

    rows = by_key(await report(desk, clock, "agent"))
    figures = {
        name: (row["offers"], row["offers_rejected"], row["offers_timed_out"], row["answered"])
        for name, row in ((n, rows[desk.agent_ids[n]]) for n in (first, second, third))
    }
    assert figures == {first: (1, 1, 0, 0), second: (1, 0, 1, 0), third: (1, 0, 0, 1)}


async def test_a_preferred_agent_given_as_a_number_gets_the_contact_first(desk: Desk) -> None:
    q = await desk.queue("support", sticky_s=60)
    await desk.entry("site", q)
    for name in ("ann", "ben"):
        await desk.agent(name, {q: 1})
        await desk.login(name)
    ben = desk.agent_ids["ben"]
    as_number = (await desk.contact(attributes={"preferred_agent_id": ben}))["interaction"]["id"]
    as_text = (await desk.contact(attributes={"preferred_agent_id": str(ben)}))["interaction"]["id"]
    assert desk.offers_to("ben") == [as_number]
    assert desk.offers_to("ann") == []  # the second is reserved for ben too: it waits for him
    await post(desk.client, f"/agent/offers/{as_number}/reject", desk.agents["ben"])
    assert desk.offers_to("ann") == [as_number]
    assert desk.offers_to("ben") == [as_number, as_text]


@pytest.mark.parametrize("nonsense", ["ann", -3, 0, 1.5, True, ""])
async def test_a_preferred_agent_that_is_no_user_id_is_refused_naming_the_field(
    desk: Desk, nonsense: object
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    r = await desk.client.post(
        f"{API}/interactions",
        json={"entry_point": "site", "subject": "Hi", "attributes": {"preferred_agent_id": nonsense}},
        headers=desk.admin,
    )
    assert r.status_code == 422, r.text
    errors = r.json()["details"]["errors"]
    assert [e["loc"] for e in errors] == [["body", "attributes", "preferred_agent_id"]]


async def restarted(container: Container, clock: ShiftedClock) -> Container:
    await container.close()
    again = build_container(container.settings, clock=clock)
    await again.start()
    return again


async def test_contacts_today_come_back_after_a_restart(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    for n in range(2):
        iid = (await desk.contact(customer={"email": f"c{n}@example.com"}))["interaction"]["id"]
        await post(desk.client, f"/agent/offers/{iid}/accept", desk.agents["olga"])
        r = await desk.client.post(
            f"{API}/agent/contacts/{iid}/complete", json={}, headers=desk.agents["olga"]
        )
        assert r.status_code == 200, r.text

    again = await restarted(container, clock)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(again)), base_url="http://testserver"
        ) as client:
            status = (await client.get(f"{API}/agent/status", headers=desk.agents["olga"])).json()
            board = (await client.get(f"{API}/wallboard", headers=desk.admin)).json()
        assert status["contacts_today"] == 2
        assert [a["contacts_today"] for a in board["agents"]] == [2]
    finally:
        await again.close()


async def test_an_agent_who_never_signed_in_is_offline_since_being_made_an_agent(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    created = clock().timestamp()
    await desk.agent("new", {q: 1})
    board = (await desk.client.get(f"{API}/wallboard", headers=desk.admin)).json()
    assert [(a["state"], a["since"] >= created) for a in board["agents"]] == [("offline", True)]

    again = await restarted(container, clock)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(again)), base_url="http://testserver"
        ) as client:
            board = (await client.get(f"{API}/wallboard", headers=desk.admin)).json()
        (agent,) = board["agents"]
        assert agent["state"] == "offline" and agent["since"] >= created
        assert agent["time_in_state_s"] == pytest.approx(board["at"] - agent["since"], abs=0.1)
    finally:
        await again.close()


async def test_an_escalation_added_to_a_queue_reaches_a_callback_already_waiting(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("billing", required_skills={"billing": 5})
    await desk.entry("site", q)
    await desk.agent("junior", {q: 1}, skills={"billing": 2})
    await desk.login("junior")
    iid = (await desk.contact())["interaction"]["id"]
    await post(desk.client, f"/interactions/{iid}/callback", desk.admin)
    settings = (await desk.client.get(f"{API}/queues/{q}", headers=desk.admin)).json()["settings"]
    settings["escalations"] = [{"after_s": 120, "relax_levels": 3}]
    r = await desk.client.patch(f"{API}/queues/{q}", json={"settings": settings}, headers=desk.admin)
    assert r.status_code == 200, r.text
    assert desk.offers_to("junior") == []

    clock.advance(121)
    await container.acd.execute(Tick())
    assert desk.offers_to("junior") == [iid]
    events = (await desk.client.get(f"{API}/interactions/{iid}/events", headers=desk.admin)).json()
    assert [e["type"] for e in events if e["type"] in ("escalated", "offered")] == ["escalated", "offered"]


async def test_a_contact_is_queued_after_it_was_created_and_its_log_is_in_order(desk: Desk) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    iid = (await desk.contact())["interaction"]["id"]
    await post(desk.client, f"/agent/offers/{iid}/accept", desk.agents["olga"])

    contact = (await desk.client.get(f"{API}/interactions/{iid}", headers=desk.admin)).json()
    assert contact["created_at"] <= contact["queued_at"] <= contact["offered_at"] <= contact["connected_at"]
    events = (await desk.client.get(f"{API}/interactions/{iid}/events", headers=desk.admin)).json()
    routing = ("created", "queued", "offered", "connected")
    assert [e["type"] for e in events if e["type"] in routing] == list(routing)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


async def test_a_contact_moved_by_a_supervisor_is_answered_where_it_was_answered_and_counted_once(
    desk: Desk, clock: ShiftedClock
) -> None:
    first = await desk.queue("first")
    second = await desk.queue("second")
    await desk.entry("site", first)
    await desk.agent("bob", {second: 1})
    await desk.agent("eve", {first: 1})
    await desk.login("bob")
    moved = (await desk.contact())["interaction"]["id"]
    to_agent = (await desk.contact(customer={"email": "b@example.com"}))["interaction"]["id"]
    await post(desk.client, f"/interactions/{moved}/move", desk.admin, queue_id=second)
    await post(desk.client, f"/agent/offers/{moved}/accept", desk.agents["bob"])
    await desk.login("eve")
    await post(desk.client, f"/interactions/{to_agent}/move", desk.admin, agent_id=desk.agent_ids["eve"])
    await post(desk.client, f"/agent/offers/{to_agent}/accept", desk.agents["eve"])

    queues = by_key(await report(desk, clock, "queue"))
    assert (queues[first]["offered"], queues[first]["answered"], queues[first]["transferred"]) == (2, 1, 1)
    assert (queues[second]["offered"], queues[second]["answered"]) == (1, 1)
    (overall,) = await report(desk, clock, "overall")
    assert (overall["offered"], overall["answered"]) == (2, 2)
    agents = by_key(await report(desk, clock, "agent"))
    assert agents[desk.agent_ids["eve"]]["answered"] == 1


async def test_contacts_turned_away_are_counted_live_in_reports_and_in_the_csv(
    desk: Desk, clock: ShiftedClock
) -> None:
    full = await desk.queue("full", max_length=1)
    unstaffed = await desk.queue("unstaffed", no_agents_action="refuse")
    await desk.entry("site", full)
    await desk.entry("other", unstaffed)
    await desk.contact(customer={"email": "a@example.com"})
    await desk.contact(customer={"email": "b@example.com"})  # the queue is full
    await desk.contact(entry="other")  # nobody signed in to it

    rows = by_key(await report(desk, clock, "queue"))
    assert {q: (rows[q]["offered"], rows[q]["turned_away"]) for q in (full, unstaffed)} == {
        full: (1, 1),
        unstaffed: (0, 1),
    }
    (overall,) = await report(desk, clock, "overall")
    assert (overall["offered"], overall["turned_away"]) == (1, 2)
    csv = await desk.client.get(
        f"{API}/stats/report",
        params={
            "start": (clock() - timedelta(hours=1)).isoformat(),
            "end": (clock() + timedelta(hours=1)).isoformat(),
            "group_by": "overall",
            "interval": 0,
            "format": "csv",
        },
        headers=desk.admin,
    )
    header, values = csv.text.splitlines()[:2]
    assert dict(zip(header.split(","), values.split(","), strict=True))["turned_away"] == "2"
    live = (await desk.client.get(f"{API}/stats/live", headers=desk.admin)).json()["queues"]
    assert {q["queue_id"]: q["turned_away"] for q in live} == {full: 1, unstaffed: 1}
    board = (await desk.client.get(f"{API}/wallboard", headers=desk.admin)).json()["queues"]
    assert {q["queue_id"]: q["turned_away_today"] for q in board} == {full: 1, unstaffed: 1}


async def scrape(desk: Desk) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await desk.client.get("/metrics", headers=desk.admin)
    assert r.status_code == 200, r.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


async def test_metrics_expose_the_contact_centers_queues_agents_and_counts(
    desk: Desk, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.agent("ivan", {q: 1})
    await desk.login("olga")
    answered = (await desk.contact())["interaction"]["id"]
    await post(desk.client, f"/agent/offers/{answered}/accept", desk.agents["olga"])
    left = (await desk.contact(customer={"email": "a@example.com"}))["interaction"]["id"]
    await desk.contact(customer={"email": "b@example.com"})
    clock.advance(30)
    await post(desk.client, f"/interactions/{left}/abandon", desk.admin)

    metrics = await scrape(desk)
    queue = (("queue", str(q)),)
    assert metrics[("frontoffice_queue_contacts_waiting", queue)] == 1
    assert metrics[("frontoffice_queue_oldest_wait_seconds", queue)] >= 30
    assert metrics[("frontoffice_agents", (("state", "on_contact"),))] == 1
    assert metrics[("frontoffice_agents", (("state", "offline"),))] == 1
    assert metrics[("frontoffice_agents", (("state", "available"),))] == 0
    assert metrics[("frontoffice_queue_offered_total", queue)] == 3
    assert metrics[("frontoffice_offers_total", queue)] == 1
    assert metrics[("frontoffice_answers_total", queue)] == 1
    assert metrics[("frontoffice_abandons_total", queue)] == 1
    assert metrics[("frontoffice_turned_away_total", queue)] == 0


def seconds_to_midnight(container: Container) -> float:
    """Seconds from the container's clock to the next local midnight of the site."""
    return container.acd.next_midnight() - container.acd.now()


async def olga_with_a_contact_today(desk: Desk) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    iid = (await desk.contact())["interaction"]["id"]
    await post(desk.client, f"/agent/offers/{iid}/accept", desk.agents["olga"])


async def contacts_today(desk: Desk) -> int:
    status = (await desk.client.get(f"{API}/agent/status", headers=desk.agents["olga"])).json()
    return int(status["contacts_today"])


@pytest.mark.parametrize("settings_overrides", [{"time_zone": "Pacific/Kiritimati"}])
async def test_contacts_today_start_again_at_the_sites_midnight(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    await olga_with_a_contact_today(desk)
    assert await contacts_today(desk) == 1
    midnight = datetime.fromtimestamp(container.acd.next_midnight(), ZoneInfo("Pacific/Kiritimati"))
    assert (midnight.time(), 0 < seconds_to_midnight(container) <= 86_400) == (time(0), True)
    clock.advance(seconds_to_midnight(container) - 1)
    await container.acd.execute(Tick())
    assert await contacts_today(desk) == 1  # a second before the site's midnight: still today
    clock.advance(2)
    await container.acd.execute(Tick())
    assert await contacts_today(desk) == 0


async def test_the_acd_wakes_at_the_sites_midnight_to_start_the_new_day(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    await olga_with_a_contact_today(desk)
    # Midnight is a moment away on the clock; a command makes the timer look at the clock again.
    clock.advance(seconds_to_midnight(container) - 0.2)
    await post(desk.client, "/agent/state", desk.agents["olga"], state="not_ready", reason="break")

    async def reset() -> bool:
        assert await contacts_today(desk) == 0
        return True

    await eventually(reset)
