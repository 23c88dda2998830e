"""The sales report (issue 16: "win rate and cycle time by stage in reports"): from the deals of a
pipeline closed in a period and their moves in the audit log, on SQLite and PostgreSQL, with a clock
moved by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from frontoffice.services.sales_report import Visit, journey

from ..conftest import ShiftedClock

API = "/api/v1"
DAY = 24 * 3600

PIPELINE = {
    "name": "Hardware",
    "stages": [
        {"key": "demo", "name": "Demo", "probability_pct": 30},
        {"key": "trial", "name": "Trial", "probability_pct": 60},
        {"key": "won", "name": "Won", "probability_pct": 100, "kind": "won"},
        {"key": "lost", "name": "Lost", "probability_pct": 0, "kind": "lost"},
    ],
}


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_win_rate_and_cycle_time_come_overall_and_by_stage_from_the_deals_moves(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
    clock: ShiftedClock,
) -> None:
    start = clock()
    pipeline = await post(client, admin_headers, "/pipelines", **PIPELINE)
    customer = await post(client, admin_headers, "/customers", first_name="Anna")

    async def deal(title: str) -> int:
        d = await post(
            client,
            admin_headers,
            "/deals",
            customer_id=customer["id"],
            title=title,
            currency="EUR",
            pipeline_id=pipeline["id"],
        )
        return int(d["id"])

    async def move(deal_id: int, stage: str) -> None:
        r = await client.patch(f"{API}/deals/{deal_id}", json={"stage": stage}, headers=admin_headers)
        assert r.status_code == 200, r.text

    sold, dropped, pending = await deal("Sold"), await deal("Dropped"), await deal("Still open")
    default_deal = await post(
        client, admin_headers, "/deals", customer_id=customer["id"], title="Other pipeline", currency="EUR"
    )
    clock.advance(DAY)
    await move(sold, "trial")
    await move(dropped, "lost")
    await move(default_deal["id"], "won")
    clock.advance(2 * DAY)
    await move(sold, "won")
    await move(pending, "trial")

    params = {
        "since": (start - timedelta(hours=1)).isoformat(),
        "until": (start + timedelta(days=10)).isoformat(),
        "pipeline_id": pipeline["id"],
    }
    r = await client.get(f"{API}/reports/sales", params=params, headers=admin_headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["deals"], report["won"], report["lost"], report["win_rate"]) == (2, 1, 1, 0.5)
    assert report["avg_cycle_s"] == pytest.approx(3 * DAY, abs=60)
    stages = {s["key"]: s for s in report["stages"]}
    assert [s["key"] for s in report["stages"]] == ["demo", "trial", "won", "lost"]
    assert (stages["demo"]["deals"], stages["demo"]["won"], stages["demo"]["win_rate"]) == (2, 1, 0.5)
    assert stages["demo"]["avg_time_in_stage_s"] == pytest.approx(DAY, abs=60)
    assert (stages["trial"]["deals"], stages["trial"]["win_rate"]) == (1, 1.0)
    assert stages["trial"]["avg_time_in_stage_s"] == pytest.approx(2 * DAY, abs=60)
    assert (stages["won"]["deals"], stages["won"]["avg_time_in_stage_s"]) == (1, None)
    assert (stages["lost"]["deals"], stages["lost"]["won"], stages["lost"]["win_rate"]) == (1, 0, 0.0)

    # The default pipeline has its own figures; reports are for who reads statistics.
    default = (
        await client.get(
            f"{API}/reports/sales",
            params={k: v for k, v in params.items() if k != "pipeline_id"},
            headers=admin_headers,
        )
    ).json()
    assert (default["pipeline_id"], default["deals"], default["won"]) == (None, 1, 1)
    r = await client.get(f"{API}/reports/sales", params=params, headers=agent_headers)
    assert r.status_code == 403
    too_long = params | {"until": (start + timedelta(days=400)).isoformat()}
    r = await client.get(f"{API}/reports/sales", params=too_long, headers=admin_headers)
    assert r.json()["error_id"] == "invalid-period"


def test_a_journey_is_read_from_the_creation_and_the_moves_and_ends_at_the_close() -> None:
    t0 = datetime(2027, 1, 10, 9, tzinfo=UTC)
    at = [t0 + timedelta(hours=h) for h in range(6)]
    entries = [
        (at[0], {"stage": "demo", "customer_id": 1}),
        (at[1], {"fields": ["title"]}),  # not a move
        (at[2], {"fields": ["stage"], "from_stage": "demo", "to_stage": "trial"}),
        (at[3], {"fields": ["stage"], "from_stage": "trial", "to_stage": "demo"}),
        (at[4], {"fields": ["stage"], "from_stage": "demo", "to_stage": "won"}),
    ]
    assert journey(at[0], at[4], entries) == [
        Visit("demo", at[0], at[2]),
        Visit("trial", at[2], at[3]),
        Visit("demo", at[3], at[4]),
        Visit("won", at[4], at[4]),
    ]
    # Made before stages were audited: the first move's origin counts from the creation.
    assert journey(at[0], at[5], entries[2:3]) == [Visit("demo", at[0], at[2]), Visit("trial", at[2], at[5])]
    assert journey(at[0], at[5], []) == []
