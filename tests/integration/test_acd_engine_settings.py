"""The routing engine's site-wide settings: stored, edited by an administrator, applied live."""

from __future__ import annotations

from frontoffice.bootstrap import Container, build_container
from frontoffice.domain.model import Role
from frontoffice.services.acd_commands import Tick

from ..conftest import ShiftedClock, token_headers
from .test_acd_api import API, Desk, desk

__all__ = ["desk"]


async def test_an_admin_reads_the_defaults_and_saves_new_settings(desk: Desk) -> None:
    r = await desk.client.get(f"{API}/acd/settings", headers=desk.admin)
    assert r.status_code == 200, r.text
    assert r.json()["settings"] == {
        "priority_weight_s": 60.0,
        "missed_offers_to_not_ready": 3,
        "missed_reason": "missed",
        "count_rejections_as_missed": False,
        "reject_cooloff_s": 30.0,
        "voice_blocks_other_channels": True,
    }

    r = await desk.client.put(
        f"{API}/acd/settings",
        json={
            "priority_weight_s": 600,
            "missed_offers_to_not_ready": 1,
            "voice_blocks_other_channels": False,
        },
        headers=desk.admin,
    )

    assert r.status_code == 200, r.text
    saved = (await desk.client.get(f"{API}/acd/settings", headers=desk.admin)).json()
    assert saved["settings"]["priority_weight_s"] == 600
    assert saved["settings"]["missed_offers_to_not_ready"] == 1
    assert saved["settings"]["voice_blocks_other_channels"] is False
    assert saved["settings"]["reject_cooloff_s"] == 30  # left out: the default
    assert saved["updated_at"] is not None


async def test_only_an_admin_changes_the_settings(desk: Desk, container: Container) -> None:
    sup = await token_headers(container, "sup", Role.SUPERVISOR)
    assert (await desk.client.get(f"{API}/acd/settings", headers=sup)).status_code == 200
    r = await desk.client.put(f"{API}/acd/settings", json={"priority_weight_s": 1}, headers=sup)
    assert r.status_code == 403
    agent = await token_headers(container, "ann", Role.AGENT)
    assert (await desk.client.get(f"{API}/acd/settings", headers=agent)).status_code == 403


async def test_an_invalid_setting_is_refused_with_the_field_named(desk: Desk) -> None:
    r = await desk.client.put(
        f"{API}/acd/settings", json={"reject_cooloff_s": -1, "colour": "red"}, headers=desk.admin
    )
    assert r.status_code == 422
    assert r.json()["error_id"] == "validation-failed"
    named = {tuple(e["loc"]) for e in r.json()["details"]["errors"]}
    assert named == {("body", "reject_cooloff_s"), ("body", "colour")}


async def test_a_missed_offer_limit_saved_by_the_admin_applies_to_the_running_engine(
    desk: Desk, clock: ShiftedClock
) -> None:
    q = await desk.queue("support", offer_timeout_s=5)
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    limit = {"missed_offers_to_not_ready": 1}
    r = await desk.client.put(f"{API}/acd/settings", json=limit, headers=desk.admin)
    assert r.status_code == 200, r.text

    await desk.contact()
    clock.advance(6)
    await desk.container.acd.execute(Tick())  # the offer times out now

    status = (await desk.client.get(f"{API}/agent/status", headers=desk.agents["olga"])).json()
    assert status["state"] == "not_ready" and status["reason"] == "missed"


async def test_a_new_priority_weight_reorders_waiting_contacts_at_once_and_survives_a_restart(
    desk: Desk, container: Container, clock: ShiftedClock
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    sup = await token_headers(container, "sup", Role.SUPERVISOR)
    first = (await desk.contact(customer={"email": "a@x.ru"}))["interaction"]["id"]
    clock.advance(30)
    urgent = (await desk.contact(customer={"email": "b@x.ru"}, priority=1))["interaction"]["id"]

    async def order(client_headers: dict[str, str]) -> list[int]:
        r = await desk.client.get(f"{API}/queues/{q}/waiting", headers=client_headers)
        assert r.status_code == 200, r.text
        return [c["interaction_id"] for c in r.json()]

    assert await order(sup) == [urgent, first]  # one point is worth a minute by default
    r = await desk.client.put(f"{API}/acd/settings", json={"priority_weight_s": 0}, headers=desk.admin)
    assert r.status_code == 200
    assert await order(sup) == [first, urgent]  # priorities no longer count

    await container.close()
    again = build_container(container.settings, clock=clock)
    await again.start()
    try:
        assert again.acd.engine_config.priority_weight_s == 0
        assert [int(c) for c in again.acd.engine.waiting_contacts(str(q))] == [first, urgent]
    finally:
        await again.close()
