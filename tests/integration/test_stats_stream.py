"""Statistics from the log, calendars closing queues, and the WebSocket stream on a real server."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import pytest
import uvicorn
import websockets

from frontoffice.bootstrap import Container, build_container
from frontoffice.domain.model import Role
from frontoffice.services.acd_commands import Tick
from frontoffice.web.app import create_app

from ..conftest import ShiftedClock, free_port, token_headers
from .test_acd_api import API, Desk


@pytest.fixture
async def desk(client, container, admin_headers) -> Desk:
    return Desk(client, container, admin_headers)


async def test_report_counts_answered_and_abandoned_with_service_level(
    desk: Desk, clock: ShiftedClock
) -> None:
    q = await desk.queue("support", wrap_up_s=0)
    await desk.entry("site", q)
    await desk.agent("ann", {q: 1})
    start = clock() - timedelta(minutes=1)
    a = (await desk.contact(customer={"email": "a@x.ru"}))["interaction"]["id"]
    b = (await desk.contact(customer={"email": "b@x.ru"}))["interaction"]["id"]
    clock.advance(10)
    await desk.login("ann")  # a is offered after 10 s of waiting
    ann = desk.agents["ann"]
    assert (await desk.client.post(f"{API}/agent/offers/{a}/accept", headers=ann)).status_code == 204
    clock.advance(40)
    assert (await desk.client.post(f"{API}/interactions/{b}/abandon", headers=desk.admin)).status_code == 204
    assert (await desk.client.post(f"{API}/agent/contacts/{a}/end", headers=ann)).status_code == 204
    end = clock() + timedelta(minutes=1)
    r = await desk.client.get(
        f"{API}/stats/report",
        headers=desk.admin,
        params={"start": start.isoformat(), "end": end.isoformat(), "group_by": "queue", "interval": 0},
    )
    assert r.status_code == 200, r.text
    (row,) = r.json()["rows"]
    assert row["key"] == q
    assert (row["offered"], row["answered"], row["abandoned"]) == (2, 1, 1)
    # Answered at ~10 s (within 20 s), abandoned at ~50 s (after the 5 s short-abandon threshold).
    assert row["service_level"] == pytest.approx(0.5)
    # The clock is real time shifted by the test: a loaded machine adds its own seconds to the 10.
    assert 10 <= row["asa_s"] < 20
    csv_text = (
        await desk.client.get(
            f"{API}/stats/report",
            headers=desk.admin,
            params={"start": start.isoformat(), "end": end.isoformat(), "format": "csv"},
        )
    ).text
    # Grouped by queue, the queue's name follows its id (docs/metrics.md, "The report as CSV").
    assert csv_text.splitlines()[0].startswith("key,queue_name,interval_start,interval_end,offered")
    r = await desk.client.get(
        f"{API}/stats/report",
        headers=desk.admin,
        params={"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"},
    )
    assert r.status_code == 400 and r.json()["error_id"] == "naive-datetime"


async def test_live_figures_are_the_same_after_a_restart(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    ids = [(await desk.contact(customer={"email": f"l{i}@x.ru"}))["interaction"]["id"] for i in range(3)]
    clock.advance(30)
    await desk.client.post(f"{API}/interactions/{ids[0]}/abandon", headers=desk.admin)
    before = container.stats.live()[q]
    assert (before.offered, before.abandoned, before.waiting) == (3, 1, 2)
    await container.close()
    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        after = again.stats.live()[q]
        # Everything but the current longest wait (which grows with the clock) is identical.
        assert replace(after, longest_current_wait_s=0) == replace(before, longest_current_wait_s=0)
        assert after.longest_current_wait_s == pytest.approx(before.longest_current_wait_s, abs=2)
    finally:
        await again.close()


async def test_a_closed_calendar_refuses_or_overflows_arrivals(desk: Desk, container: Container) -> None:
    night = await desk.queue("night")
    r = await desk.client.post(
        f"{API}/calendars", json={"name": "never", "time_zone": "UTC", "weekly": {}}, headers=desk.admin
    )
    assert r.status_code == 201 and r.json()["open_now"] is False
    cal = r.json()["id"]
    day = await desk.queue("day", calendar_id=cal, closed_action="overflow", overflow_queue_id=night)
    await desk.entry("site", day)
    await container.calendars.apply()
    iid = (await desk.contact())["interaction"]["id"]
    got = (await desk.client.get(f"{API}/interactions/{iid}", headers=desk.admin)).json()
    assert got["queue_id"] == night
    bad = await desk.client.post(
        f"{API}/calendars", json={"name": "x", "time_zone": "Mars/Base", "weekly": {}}, headers=desk.admin
    )
    assert bad.status_code == 422 and bad.json()["details"]["errors"][0]["loc"] == ["body", "time_zone"]


async def test_offer_is_pushed_over_the_websocket_and_withdrawn_on_timeout(
    container: Container, desk: Desk, clock: ShiftedClock
) -> None:
    q = await desk.queue("support", offer_timeout_s=5)
    await desk.entry("site", q)
    await desk.agent("wsagent", {q: 1})
    await desk.login("wsagent")
    token = desk.agents["wsagent"]["Authorization"].split()[1]
    sup = (await token_headers(container, "wssup", Role.SUPERVISOR))["Authorization"].split()[1]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.02)
        url = f"ws://127.0.0.1:{port}/api/v1/stream"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(url):
                pass
        async with (
            websockets.connect(f"{url}?token={token}") as agent_ws,
            websockets.connect(f"{url}?token={sup}") as sup_ws,
        ):
            hello = json.loads(await agent_ws.recv())
            assert hello["type"] == "hello" and hello["data"]["agent"]["state"] == "available"
            sup_hello = json.loads(await sup_ws.recv())
            assert sup_hello["data"]["wallboard"]["queues"][0]["waiting"] == 0
            iid = (await desk.contact())["interaction"]["id"]
            offer = await _next(agent_ws, "offer_contact")
            assert offer["data"]["contact_id"] == iid
            figures = await _next(sup_ws, "queue_figures")
            assert figures["data"]["queues"][0]["queue_id"] == q
            clock.advance(6)
            await container.acd.execute(Tick())
            withdrawn = await _next(agent_ws, "offer_timed_out")
            assert withdrawn["data"]["contact_id"] == iid
    finally:
        server.should_exit = True
        await serving


async def _next(ws: websockets.ClientConnection, type_: str) -> dict:
    async with asyncio.timeout(5):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == type_:
                return message
