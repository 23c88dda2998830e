"""Figures that add up, through the API: reports, the wallboard and /metrics after real contacts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container

from ..conftest import ShiftedClock
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
    await container.acd.execute(lambda e, now: e.tick(now))
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
