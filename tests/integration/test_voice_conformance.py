"""RFC conformance of the voice channel over loopback (issue 13): sipp as carrier and phones, and a raw
UDP socket sending the exact octets of RFC 4475 torture messages and broken in-dialog requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService

from ..conftest import require_tool
from .sipp.runner import (
    HOST,
    SIP_PASSWORD,
    VoiceDesk,
    free_port,
    interactions,
    phone_args,
    run_sipp,
    start_voice,
)

NUMBER = "+74951234567"


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings")
    container.voice = service
    await service.start()
    yield service
    await service.stop()
    container.voice = None


async def until(condition: Callable[[], Any], what: str, tries: int = 1000) -> Any:
    """Poll ``condition`` (sync or async) until it is truthy; fail saying ``what`` did not happen."""
    for _ in range(tries):
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    pytest.fail(f"{what} never happened")


async def register(sipp: str, voice: VoiceService, name: str) -> int:
    port = free_port()
    result = await run_sipp(
        sipp, "register.xml", f"{HOST}:{voice.port}", *phone_args(name, SIP_PASSWORD, port)
    )
    assert result.returncode == 0, result.output
    return port


def bridged(voice: VoiceService, interaction_id: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return voice.call_state(interaction_id)["state"] == "bridged"
        except Exception:
            return False

    return check


async def bridged_call(
    sipp: str,
    client: httpx.AsyncClient,
    container: Container,
    admin: dict[str, str],
    voice: VoiceService,
    caller_scenario: str,
) -> tuple[int, str, asyncio.Task[Any], asyncio.Task[Any]]:
    """A carrier call answered by a sipp phone: (interaction id, SIP Call-ID, caller task, phone task)."""
    desk = VoiceDesk(client, container, admin)
    await desk.setup(NUMBER, wrap_up_s=60)
    await desk.agent("alice")
    port = await register(sipp, voice, "alice")
    phone = asyncio.create_task(run_sipp(sipp, "agent_phone.xml", None, "-m", "1", "-p", str(port)))
    caller = asyncio.create_task(
        run_sipp(sipp, caller_scenario, f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)
    )
    rows = await until(lambda: interactions(container), "the call's interaction")
    interaction_id = int(rows[0].id)
    await until(bridged(voice, interaction_id), "the bridge to the agent")
    [row] = await interactions(container)
    return interaction_id, str(row.external_ref), caller, phone


# ---------------------------------------------------------------- defect 3: ACK reusing the branch
async def test_ack_reusing_the_invites_branch_confirms_the_call_and_stops_the_200(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    interaction_id, call_id, caller, phone = await bridged_call(
        sipp, client, container, admin_headers, voice, "caller_ack_reuses_branch.xml"
    )
    # The ACK reached the call: the 200 is no longer retransmitted (before the fix: until 32 s, then BYE).
    await until(lambda: not voice.layer.awaiting_ack(call_id, 1), "the 2xx retransmissions stopping")
    voice.hang_up(interaction_id)
    assert (result := await caller).returncode == 0, result.output
    assert (result := await phone).returncode == 0, result.output


# ---------------------------------------------------------------- defect 5: in-dialog CSeq lower than seen
async def test_in_dialog_requests_with_a_lower_cseq_get_500_and_leave_the_call_up(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    voice: VoiceService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sipp = require_tool("sipp")
    caplog.set_level(logging.INFO, logger="frontoffice.voice")
    interaction_id, _, caller, phone = await bridged_call(
        sipp, client, container, admin_headers, voice, "caller_stale_cseq.xml"
    )
    # The caller's scenario gets 200 to its re-INVITE (CSeq 3), then 500 to a re-INVITE and to a BYE
    # with CSeq 2; it waits for our BYE, which only comes if the call is still up.
    refusals = await until(lambda: refused(caplog, 2), "the stale re-INVITE and BYE being refused")
    assert all(r.exc_info is None for r in refusals)  # one line each, no traceback
    assert voice.call_state(interaction_id)["state"] == "bridged"
    voice.hang_up(interaction_id)
    assert (result := await caller).returncode == 0, result.output
    assert (result := await phone).returncode == 0, result.output


def refused(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    records = [r for r in caplog.records if "CSeq out of order" in r.getMessage()]
    return records if len(records) >= count else []
