"""The web layer reaches the voice channel only through ``CallControl`` (services/voice_calls.py):
any implementation registered as ``Container.call_control`` serves the call-control endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import NotFound
from frontoffice.services.voice_calls import CallControl, ConferenceTarget, LiveCall, TrunkState


class FakeCallControl:
    """One live call (interaction 7) and one trunk; records the commands it gets."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, int]] = []

    def call_state(self, interaction_id: int) -> LiveCall:
        if interaction_id != 7:
            raise NotFound("No such active call", error_id="no-such-call")
        return LiveCall(7, "bridged", False, True, "+74951234001", datetime(2026, 1, 1, tzinfo=UTC))

    def hold(self, interaction_id: int) -> None:
        self.commands.append(("hold", interaction_id))

    def resume(self, interaction_id: int) -> None:
        self.commands.append(("resume", interaction_id))

    def hang_up(self, interaction_id: int) -> None:
        self.commands.append(("hang_up", interaction_id))

    async def transfer_out(self, interaction_id: int, number: str, *, trunk: str | None = None) -> None:
        self.commands.append(("transfer_out", interaction_id))

    async def conference(self, interaction_id: int, target: ConferenceTarget) -> None:
        self.commands.append(("conference", interaction_id))

    async def consult(self, interaction_id: int, target: ConferenceTarget) -> None:
        self.commands.append(("consult", interaction_id))

    def complete_transfer(self, interaction_id: int) -> None:
        self.commands.append(("complete_transfer", interaction_id))

    def cancel_consultation(self, interaction_id: int) -> None:
        self.commands.append(("cancel_consultation", interaction_id))

    async def click_to_call(
        self, user_id: int, number: str, *, customer_id: int | None = None, trunk: str | None = None
    ) -> int:
        return 99

    def trunk_states(self) -> list[TrunkState]:
        state = TrunkState(
            "carrier", "192.0.2.1", 5060, "udp", False, False, "unregistered", None, None, 1, 9
        )
        return [state]


async def test_call_control_endpoints_use_the_registered_call_control(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    fake = FakeCallControl()
    control: CallControl = fake  # the fake satisfies the protocol (mypy checks this line)
    container.call_control = control
    try:
        r = await client.get("/api/v1/voice/calls/7", headers=admin_headers)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "bridged" and r.json()["caller"] == "+74951234001"
        assert (await client.get("/api/v1/voice/calls/8", headers=admin_headers)).status_code == 404
        for path, body in (
            ("conference", {"number": "+74957654321"}),
            ("consult", {"agent_id": 3}),
            ("consult/complete", None),
            ("consult/cancel", None),
        ):
            r = await client.post(f"/api/v1/voice/calls/7/{path}", json=body, headers=admin_headers)
            assert r.status_code == 204, r.text
        assert fake.commands[-4:] == [
            ("conference", 7),
            ("consult", 7),
            ("complete_transfer", 7),
            ("cancel_consultation", 7),
        ]
        r = await client.get("/api/v1/voice/trunks", headers=admin_headers)
        assert r.status_code == 200, r.text
        assert r.json()[0]["name"] == "carrier" and r.json()[0]["active_calls"] == 1
    finally:
        container.call_control = None
