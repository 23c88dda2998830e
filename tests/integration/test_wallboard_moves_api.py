"""The wallboard counts contacts moved between queues: by a supervisor, and by overflow."""

from __future__ import annotations

from typing import Any

from frontoffice.services.acd_commands import Tick

from ..conftest import ShiftedClock, eventually
from .test_acd_api import API, Desk, desk  # noqa: F401  (the fixture)


async def board_queues(desk: Desk) -> dict[int, dict[str, Any]]:  # noqa: F811
    r = await desk.client.get(f"{API}/wallboard", headers=desk.admin)
    assert r.status_code == 200, r.text
    return {q["queue_id"]: q for q in r.json()["queues"]}


async def test_a_contact_moved_by_a_supervisor_counts_as_transferred_out_of_its_queue(
    desk: Desk,  # noqa: F811
) -> None:
    support = await desk.queue("support")
    billing = await desk.queue("billing")
    await desk.entry("site", support)
    iid = (await desk.contact())["interaction"]["id"]
    move = {"queue_id": billing}
    r = await desk.client.post(f"{API}/interactions/{iid}/move", json=move, headers=desk.admin)
    assert r.status_code == 204, r.text

    queues = await board_queues(desk)
    assert (queues[support]["offered_today"], queues[support]["transferred_today"]) == (1, 1)
    assert (queues[billing]["offered_today"], queues[billing]["waiting"]) == (1, 1)
    assert queues[billing]["transferred_today"] == 0
    live = (await desk.client.get(f"{API}/stats/live", headers=desk.admin)).json()["queues"]
    assert {q["queue_id"]: q["transferred"] for q in live} == {support: 1, billing: 0}


async def test_a_contact_that_overflowed_counts_out_of_one_queue_and_into_the_other(
    desk: Desk,  # noqa: F811
    clock: ShiftedClock,
) -> None:
    spare = await desk.queue("spare")
    first = await desk.queue("first", max_wait_s=60, overflow_queue_id=spare)
    await desk.entry("site", first)
    await desk.contact()
    clock.advance(61)
    await desk.container.acd.execute(Tick())  # the maximum wait passes now

    async def overflowed() -> dict[int, dict[str, Any]]:
        queues = await board_queues(desk)
        assert queues[spare]["waiting"] == 1
        return queues

    queues = await eventually(overflowed)
    assert (queues[first]["overflowed_out_today"], queues[first]["overflowed_in_today"]) == (1, 0)
    assert (queues[spare]["overflowed_in_today"], queues[spare]["offered_today"]) == (1, 1)
