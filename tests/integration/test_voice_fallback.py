"""A caller a queue turns away gets its fallback action: voicemail, or the "closed" message and BYE."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.channels.voice.service import VoiceService

from ..conftest import eventually, require_tool
from .sipp.runner import API, HOST, VoiceDesk, interactions, run_sipp, start_voice

NUMBER = "+74951234567"


@pytest.fixture
async def voice(container: Container, tmp_path: Path) -> AsyncIterator[VoiceService]:
    service = start_voice(container, tmp_path / "recordings")
    await service.start()
    yield service
    await service.stop()


async def _turned_away(
    client: httpx.AsyncClient, container: Container, admin: dict[str, str]
) -> dict[str, Any]:
    """The call's interaction and what its queue's fallback action did, once done."""
    rows = await interactions(container)
    assert rows and rows[0].state == "failed"
    r = await client.get(f"{API}/interactions/{rows[0].id}/fallback", headers=admin)
    assert r.status_code == 200, r.text
    return {"id": rows[0].id, "fallback": r.json()}


async def test_a_caller_turned_away_to_voicemail_leaves_a_message_kept_with_the_contact_and_a_ticket(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, max_length=0, fallback_action="voicemail")

    caller = await run_sipp(
        sipp, "caller_leaves_voicemail.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER
    )

    assert caller.returncode == 0, caller.output  # answered (200), then the caller's BYE was taken
    call = await eventually(lambda: _turned_away(client, container, admin_headers))
    assert call["fallback"]["action"] == "voicemail" and call["fallback"]["ticket_id"] is not None

    async def recording() -> list[str]:
        r = await client.get(f"{API}/interactions/{call['id']}/call-records", headers=admin_headers)
        assert r.status_code == 200, r.text
        return list(r.json()["recordings"])

    [name] = await eventually(recording)

    async def playable() -> httpx.Response | None:
        r = await client.get(f"{API}/interactions/{call['id']}/recordings/{name}", headers=admin_headers)
        return r if r.status_code == 200 else None

    wav = await eventually(playable)
    path = Path(voice.recordings_dir or "") / name
    path.write_bytes(wav.content)
    with wave.open(str(path), "rb") as message:
        assert message.getframerate() == 8000 and message.getnframes() > 0
    ticket = (
        await client.get(f"{API}/tickets/{call['fallback']['ticket_id']}", headers=admin_headers)
    ).json()
    assert ticket["interaction_ids"] == [call["id"]] and ticket["subject"].startswith("Voicemail from")


async def test_a_caller_turned_away_with_message_and_disconnect_is_answered_told_and_hung_up_on(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, max_length=0, fallback_action="message_and_disconnect")

    caller = await run_sipp(sipp, "caller_waits_bye.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)

    assert caller.returncode == 0, caller.output  # answered, then our BYE
    call = await eventually(lambda: _turned_away(client, container, admin_headers))
    assert call["fallback"]["action"] == "message_and_disconnect"


async def test_a_caller_refused_without_a_fallback_gets_480(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], voice: VoiceService
) -> None:
    sipp = require_tool("sipp")
    desk = VoiceDesk(client, container, admin_headers)
    await desk.setup(NUMBER, max_length=0)

    caller = await run_sipp(sipp, "caller_unavailable.xml", f"{HOST}:{voice.port}", "-m", "1", "-s", NUMBER)

    assert caller.returncode == 0, caller.output
