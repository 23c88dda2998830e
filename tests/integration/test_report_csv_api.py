"""The report's CSV: names next to ids, local time with its offset, rounded figures."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container

from ..conftest import ShiftedClock
from .test_acd_api import API, Desk


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"time_zone": "Europe/Moscow"}


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> Desk:
    return Desk(client, container, admin_headers)


async def csv_rows(desk: Desk, clock: ShiftedClock, group_by: str) -> list[dict[str, str]]:
    r = await desk.client.get(
        f"{API}/stats/report",
        params={
            "start": (clock() - timedelta(hours=1)).isoformat(),
            "end": (clock() + timedelta(hours=1)).isoformat(),
            "group_by": group_by,
            "interval": 0,
            "format": "csv",
        },
        headers=desk.admin,
    )
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.text)))


async def answered_contact(desk: Desk, clock: ShiftedClock) -> None:
    q = await desk.queue("Sales desk")
    await desk.entry("site", q)
    await desk.agent("ann", {q: 1})
    await desk.login("ann")
    iid = (await desk.contact())["interaction"]["id"]
    clock.offset += timedelta(seconds=3.21987)
    r = await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=desk.agents["ann"])
    assert r.status_code == 204, r.text


async def test_the_csv_names_each_queue_and_agent_next_to_its_id(desk: Desk, clock: ShiftedClock) -> None:
    await answered_contact(desk, clock)
    (queue,) = await csv_rows(desk, clock, "queue")
    assert queue["queue_name"] == "Sales desk"
    (agent,) = await csv_rows(desk, clock, "agent")
    me = (await desk.client.get(f"{API}/me", headers=desk.agents["ann"])).json()
    assert agent["key"] == str(me["id"])
    assert agent["agent_name"] == (me.get("display_name") or me["username"])


async def test_the_csv_gives_local_times_with_the_site_offset(desk: Desk, clock: ShiftedClock) -> None:
    await answered_contact(desk, clock)
    (row,) = await csv_rows(desk, clock, "overall")
    start = datetime.fromisoformat(row["interval_start"])
    assert start.utcoffset() == timedelta(hours=3)  # Moscow, not UTC


async def test_the_csv_rounds_seconds_and_ratios_and_has_the_abandonment_rate(
    desk: Desk, clock: ShiftedClock
) -> None:
    await answered_contact(desk, clock)
    (row,) = await csv_rows(desk, clock, "queue")
    assert "abandonment_rate" in row
    assert row["abandonment_rate"] == "0.0"
    for column in ("wait_answered_s", "asa_s", "longest_wait_s", "talk_s", "handling_s"):
        value = row[column]
        assert value == "" or len(value.partition(".")[2]) <= 1, (column, value)
    assert float(row["asa_s"]) == pytest.approx(3.2, abs=0.15)
    for column in ("service_level", "occupancy", "utilization"):
        value = row[column]
        assert value == "" or len(value.partition(".")[2]) <= 4, (column, value)
