"""Load smoke test: 200 calls at 10 per second through the menu and the ACD queue to a bank of phones.

sipp is the carrier: every call presses 2 (RFC 4733) in the entry point's menu, waits in the queue and is
answered by one of the agents' phones — one sipp UAS registered for all the agents' accounts, answering
every call (as ``bench/voice.py`` does). No call may fail, every call must become an interaction that
ended normally, and the ACD, the call records and the live statistics must all count 200 answered calls.
No timing is asserted: this checks correctness under load, ``bench/voice.py`` measures speed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService
from frontoffice.domain.model import InteractionEventType
from frontoffice.store.tables import Interaction, InteractionEvent

from ..conftest import require_tool
from .sipp.runner import (
    HOST,
    SIP_PASSWORD,
    VoiceDesk,
    free_port,
    listening,
    register_phone_bank,
    run_sipp,
    sipp_counts,
    start_voice,
)

NUMBER = "+74951234567"
CALLS = 200
RATE = 10  # calls per second
AGENTS = 16  # a call holds its agent about a second: 16 leave the queue short at 10 calls/s


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings")
    await service.start()
    yield service
    await service.stop()


async def _settled(voice: VoiceService) -> None:
    for _ in range(500):
        if voice.is_idle and not voice.live_call_ids():
            return
        await asyncio.sleep(0.02)


async def test_200_calls_through_menu_and_queue_to_a_phone_bank_all_succeed(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, wrap_up_s=0)
    r = await client.get("/api/v1/entry-points", headers=admin_headers)
    assert r.status_code == 200, r.text
    [entry] = [e for e in r.json() if e["address"] == NUMBER]
    menu = {"choices": ["1", "2"], "timeout_s": 5, "repeats": 1}
    r = await client.put(f"/api/v1/entry-points/{entry['id']}/ivr", json=menu, headers=admin_headers)
    assert r.status_code == 204, r.text
    names = [f"bank{n}" for n in range(AGENTS)]
    for name in names:
        await desk.agent(name)
    target = f"{HOST}:{voice.port}"
    port = free_port()
    await register_phone_bank(sipp, target, names, SIP_PASSWORD, port)
    phones = asyncio.create_task(
        run_sipp(sipp, "agent_phone.xml", None, "-m", str(CALLS), "-p", str(port), timeout_s=120, tail=6000)
    )
    await listening(port)  # the bank's socket is open before the first call
    caller = await run_sipp(
        sipp,
        "caller_menu.xml",
        target,
        "-s",
        NUMBER,
        "-m",
        str(CALLS),
        "-r",
        str(RATE),
        "-l",
        str(4 * AGENTS),
        timeout_s=120,
        tail=6000,
    )
    answered = await phones
    assert caller.returncode == 0, caller.output
    assert sipp_counts(caller.output) == (CALLS, 0), caller.output
    assert answered.returncode == 0, answered.output
    assert sipp_counts(answered.output) == (CALLS, 0), answered.output
    await _settled(voice)

    async with container.sessions() as s:
        calls = list(await s.scalars(select(Interaction).order_by(Interaction.id)))
        legs = [
            e.data
            for e in await s.scalars(
                select(InteractionEvent).where(InteractionEvent.type == InteractionEventType.CALL_LEG.value)
            )
        ]
    # Every call is one interaction that ended normally, after the menu, answered by a bank agent.
    assert len(calls) == CALLS
    assert Counter(c.state for c in calls).keys() <= {"done", "wrap_up"}, Counter(c.state for c in calls)
    assert len({c.external_ref for c in calls}) == CALLS
    assert all(c.attributes.get("ivr_choice") == "2" for c in calls)
    assert all(c.queue_id == desk.queue_id and c.agent_id in desk.agent_ids.values() for c in calls)
    # Call records: one answered caller leg and one answered agent leg per call.
    by_leg = Counter((leg["leg"], leg["status"]) for leg in legs)
    assert by_leg == {("caller", 200): CALLS, ("agent", 200): CALLS}, by_leg
    # The ACD holds no contact any more and every agent is free again.
    engine = container.acd.engine
    for agent_id in desk.agent_ids.values():
        assert engine.agent_status(str(agent_id)).state == "available"
    # The live statistics count the same calls.
    r = await client.get("/api/v1/stats/live", headers=admin_headers)
    assert r.status_code == 200, r.text
    [figures] = [q for q in r.json()["queues"] if q["queue_id"] == desk.queue_id]
    assert (figures["offered"], figures["answered"], figures["abandoned"]) == (CALLS, CALLS, 0), figures
    assert figures["waiting"] == 0
