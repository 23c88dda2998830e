"""A supervisor changes an agent's state: never signing in an agent who is not at their desk."""

from __future__ import annotations

from .test_acd_api import API, Desk, desk  # noqa: F401  (the fixture)


async def test_a_supervisor_cannot_sign_in_an_offline_agent(desk: Desk) -> None:  # noqa: F811
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("mila", {q: 1})
    mila = desk.agent_ids["mila"]

    for state in ("available", "not_ready"):
        r = await desk.client.post(f"{API}/agents/{mila}/state", json={"state": state}, headers=desk.admin)
        assert r.status_code == 409, r.text
        assert r.json()["error_id"] == "agent-offline"
    # Still offline: a contact waits instead of ringing at an empty desk.
    iid = (await desk.contact())["interaction"]["id"]
    assert desk.offers_to("mila") == []
    assert await desk.state(iid) == "queued"
    board = (await desk.client.get(f"{API}/wallboard", headers=desk.admin)).json()
    assert {a["agent_id"]: a["state"] for a in board["agents"]}[mila] == "offline"


async def test_a_supervisor_changes_the_state_of_a_signed_in_agent(desk: Desk) -> None:  # noqa: F811
    q = await desk.queue("support")
    await desk.agent("mila", {q: 1})
    await desk.login("mila")
    mila = desk.agent_ids["mila"]
    r = await desk.client.post(f"{API}/agents/{mila}/state", json={"state": "not_ready"}, headers=desk.admin)
    assert r.status_code == 204, r.text
    r = await desk.client.post(f"{API}/agents/{mila}/state", json={"state": "offline"}, headers=desk.admin)
    assert r.status_code == 204, r.text


async def test_a_state_set_during_a_contact_is_shown_as_pending_on_the_wallboard(desk: Desk) -> None:  # noqa: F811
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("mila", {q: 1})
    await desk.login("mila")
    mila = desk.agent_ids["mila"]
    iid = (await desk.contact())["interaction"]["id"]
    r = await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=desk.agents["mila"])
    assert r.status_code == 204, r.text

    r = await desk.client.post(
        f"{API}/agents/{mila}/state", json={"state": "not_ready", "reason": "lunch"}, headers=desk.admin
    )
    assert r.status_code == 204, r.text
    board = (await desk.client.get(f"{API}/wallboard", headers=desk.admin)).json()
    row = next(a for a in board["agents"] if a["agent_id"] == mila)
    assert (row["state"], row["ready"], row["reason"]) == ("on_contact", False, "lunch")
