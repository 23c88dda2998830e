"""Issue 14 items 13-15: the supervisor's agent controls, critical queues, moved contacts."""

from __future__ import annotations

from typing import Any

from .conftest import Server, sign_in


def agent_row(board: Any, username: str) -> Any:
    return board.locator("#agents tr", has_text=username)


def test_the_state_control_starts_from_the_agents_state_and_never_signs_in_an_offline_agent(
    server: Server, new_context: Any
) -> None:
    with server.api() as client:
        agent1 = next(a["user_id"] for a in client.get("/agents").json() if a["username"] == "agent1")
        reason = next(r for r in client.get("/codes/not-ready-reasons").json() if r["active"])
        # The server refuses too: signing in is the agent's own act.
        r = client.post(f"/agents/{agent1}/state", json={"state": "available"})
        assert (r.status_code, r.json()["error_id"]) == (409, "agent-offline")
    board = sign_in(new_context(viewport=(1600, 900)), server, "supervisor", "/wallboard")

    # Offline: nothing to apply, and the row says why.
    row = agent_row(board, "agent1")
    row.locator('.agent-state[data-state="offline"]').wait_for()
    row.locator(".signed-out-note").wait_for()
    assert row.locator(".apply-state").count() == 0
    assert row.locator("select").count() == 0

    # Signed in and available: the control starts from "available".
    desk = sign_in(new_context(), server, "agent1", "/desk")
    desk.select_option("#presence", "available")
    row.locator('.agent-state[data-state="available"]').wait_for()
    assert row.locator("select").input_value() == "available"

    # On a contact, a not-ready set by the supervisor is pending until the contact is done.
    contact = server.post_contact("Where is my parcel", email="parcel@example.com")
    desk.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').click()
    row.locator('.agent-state[data-state="on_contact"]').wait_for()
    row.locator("select").select_option(f"not_ready:{reason['code']}")
    row.locator(".apply-state").click()
    pending = row.locator(".pending-state")
    pending.wait_for()
    assert reason["name"] in (pending.text_content() or "")
    board.locator("body").click(position={"x": 5, "y": 5})  # focus leaves the row: it re-renders
    row.locator('.agent-state[data-state="on_contact"]').wait_for()
    assert row.locator("select").input_value() == f"not_ready:{reason['code']}"
