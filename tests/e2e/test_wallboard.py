"""Scenario 3: the wallboard follows arrivals and answers live; the supervisor moves a contact."""

from __future__ import annotations

from typing import Any

from .conftest import Server, screenshot, sign_in


def tile(page: Any, queue_id: int) -> Any:
    return page.locator(f'.tile[data-queue-id="{queue_id}"]')


def test_wallboard_updates_live_and_the_supervisor_moves_a_waiting_contact(
    server: Server, new_context: Any
) -> None:
    support, billing = server.queue_id("Support"), server.queue_id("Billing")
    board = sign_in(new_context(viewport=(1600, 900)), server, "supervisor", "/wallboard")
    tile(board, support).locator(".waiting").filter(has_text="0").wait_for()

    # Nobody is signed in to the ACD: the contacts wait, and the tile counts them as they arrive.
    first = server.post_contact("Where is my parcel", email="first@example.com")
    tile(board, support).locator(".waiting").filter(has_text="1").wait_for()
    second = server.post_contact("Cannot sign in", email="second@example.com")
    tile(board, support).locator(".waiting").filter(has_text="2").wait_for()
    # The longest wait ticks in the browser without a reload.
    board.wait_for_function(
        f"""() => {{
          const t = document.querySelector('.tile[data-queue-id="{support}"] .longest');
          return t && t.textContent !== '0:00' && t.textContent !== '—';
        }}"""
    )

    # Move the second contact to Billing from the waiting list.
    tile(board, support).locator(".toggle-waiting").click()
    row = board.locator(f'#waiting tr[data-interaction-id="{second["id"]}"]')
    row.locator(".move-target").select_option(str(billing))
    row.locator(".move-contact").click()
    tile(board, support).locator(".waiting").filter(has_text="1").wait_for()
    tile(board, billing).locator(".waiting").filter(has_text="1").wait_for()
    with server.api() as client:
        assert client.get(f"/interactions/{second['id']}").json()["queue_id"] == billing

    # An agent answers the first contact: the Support tile drops to zero and the agent row shows it.
    desk = sign_in(new_context(), server, "agent1", "/desk")
    desk.select_option("#presence", "available")
    offer = desk.locator(f'.offer[data-contact-id="{first["id"]}"]')
    offer.locator(".offer-accept").click()
    tile(board, support).locator(".waiting").filter(has_text="0").wait_for()
    board.locator("#agents tr", has_text="agent1").locator('.agent-state[data-state="on_contact"]').wait_for()
    assert board.locator(f'.tile[data-queue-id="{support}"] .longest').text_content() == "0:00"
    screenshot(board, "wallboard")

    # Today's report shows the same contacts, as a chart and a table, with a CSV export link.
    board.goto(f"{server.url}/reports")
    board.locator("#report-chart svg rect").first.wait_for()
    board.locator("#report-table tbody tr", has_text="Support").wait_for()
    assert "format=csv" in (board.locator("#csv").get_attribute("href") or "")
    screenshot(board, "reports")


def test_the_supervisor_moves_a_waiting_contact_to_a_named_agent(server: Server, new_context: Any) -> None:
    sales = server.queue_id("Sales")
    with server.api() as client:
        agent2 = next(a["user_id"] for a in client.get("/agents").json() if a["username"] == "agent2")
    # agent2 serves Support and Billing, not Sales: a Sales contact waits although agent2 is available.
    desk = sign_in(new_context(), server, "agent2", "/desk")
    desk.select_option("#presence", "available")
    desk.wait_for_selector('#state-pill[data-state="available"]')
    board = sign_in(new_context(viewport=(1600, 900)), server, "supervisor", "/wallboard")

    price = server.post_contact("What is the price", email="buyer@example.com")
    tile(board, sales).locator(".waiting").filter(has_text="1").wait_for()
    tile(board, sales).locator(".toggle-waiting").click()
    row = board.locator(f'#waiting tr[data-interaction-id="{price["id"]}"]')
    row.locator(".move-agent").select_option(str(agent2))
    screenshot(board, "wallboard-move-to-agent")
    row.locator(".move-to-agent").click()

    # Reserved for agent2, the contact is offered to them at once. It waits in Sales until agent2
    # answers (a ringing contact still waits, docs/metrics.md), and is answered there.
    offer = desk.locator(f'.offer[data-contact-id="{price["id"]}"]')
    offer.wait_for()
    offer.locator(".offer-accept").click()
    tile(board, sales).locator(".waiting").filter(has_text="0").wait_for()
    with server.api() as client:
        moved = client.get(f"/interactions/{price['id']}").json()
    assert (moved["queue_id"], moved["agent_id"], moved["state"]) == (sales, agent2, "connected")


def test_a_live_update_keeps_the_target_the_supervisor_chose_for_a_waiting_contact(
    server: Server, new_context: Any
) -> None:
    """The waiting list is drawn again on every live update, which may come between choosing where
    to move a contact and pressing Move; the choice must survive it, or the contact goes elsewhere."""
    from playwright.sync_api import expect

    support, billing = server.queue_id("Support"), server.queue_id("Billing")
    board = sign_in(new_context(viewport=(1600, 900)), server, "supervisor", "/wallboard")
    first = server.post_contact("Where is my parcel", email="first@example.com")
    tile(board, support).locator(".waiting").filter(has_text="1").wait_for()
    tile(board, support).locator(".toggle-waiting").click()
    row = board.locator(f'#waiting tr[data-interaction-id="{first["id"]}"]')
    row.locator(".move-target").select_option(str(billing))
    # Another contact arrives: the list is drawn again (the new row shows it) before Move is pressed.
    second = server.post_contact("Cannot sign in", email="second@example.com")
    board.locator(f'#waiting tr[data-interaction-id="{second["id"]}"]').wait_for()
    expect(row.locator(".move-target")).to_have_value(str(billing))
    row.locator(".move-contact").click()
    tile(board, billing).locator(".waiting").filter(has_text="1").wait_for()
    with server.api() as client:
        assert client.get(f"/interactions/{first['id']}").json()["queue_id"] == billing
