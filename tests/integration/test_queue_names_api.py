"""A queue's settings name other queues by id; the answer carries their names next to the ids."""

from __future__ import annotations

import httpx

API = "/api/v1"


async def test_a_queues_settings_come_with_the_names_of_the_queues_they_name(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    async def create(name: str, settings: dict[str, object]) -> dict[str, object]:
        r = await client.post(
            f"{API}/queues", json={"name": name, "settings": settings}, headers=admin_headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    experts = await create("Experts", {})
    night = await create("Night", {})
    support = await create(
        "Support",
        {"overflow_queue_id": night["id"], "escalations": [{"after_s": 60, "add_queues": [experts["id"]]}]},
    )
    expected = {str(experts["id"]): "Experts", str(night["id"]): "Night"}
    assert support["queue_names"] == expected

    got = (await client.get(f"{API}/queues/{support['id']}", headers=admin_headers)).json()
    assert got["queue_names"] == expected
    listed = {
        q["name"]: q["queue_names"] for q in (await client.get(f"{API}/queues", headers=admin_headers)).json()
    }
    assert listed == {"Experts": {}, "Night": {}, "Support": expected}

    renamed = await client.patch(
        f"{API}/queues/{night['id']}", json={"name": "Late shift"}, headers=admin_headers
    )
    assert renamed.status_code == 200
    got = (await client.get(f"{API}/queues/{support['id']}", headers=admin_headers)).json()
    assert got["queue_names"][str(night["id"])] == "Late shift"
