"""Help desk and sales in the browser (issue 16): a supervisor sees a breaching ticket highlighted in the
work list and assigns it in bulk; an agent answers a ticket with a canned answer; a deal dragged to
"won" on the board is won in the API."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Server, sign_in

#: An SLA whose first response is due in ten minutes and warns an hour before: every new ticket is
#: "breaching" at once, without waiting for any clock.
BREACHING_POLICY = {
    "name": "Tight",
    "position": 0,
    "first_response_s": 600,
    "warn_before_s": 3600,
}


def _post(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with server.api() as client:
        r = client.post(path, json=body)
        assert r.status_code in (200, 201), r.text
        data: dict[str, Any] = r.json()
        return data


def _get(server: Server, path: str) -> Any:
    with server.api() as client:
        r = client.get(path)
        r.raise_for_status()
        return r.json()


def _customer(server: Server, email: str | None = None) -> int:
    identities = [{"kind": "email", "value": email}] if email else []
    body = {"first_name": "Анна", "last_name": "Волкова", "identities": identities}
    return int(_post(server, "/customers", body)["id"])


def test_a_breaching_ticket_is_highlighted_and_the_supervisor_assigns_it_in_bulk(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    _post(server, "/sla-policies", BREACHING_POLICY)
    ticket = _post(server, "/tickets", {"customer_id": _customer(server), "subject": "Printer on fire"})
    agent1 = next(u for u in _get(server, "/users") if u["username"] == "agent1")
    page = sign_in(new_context(), server, "supervisor", "/wallboard")
    page.goto(f"{server.url}/tickets")

    row = page.locator(f'#work-list tr[data-ticket-id="{ticket["id"]}"]')
    expect(row).to_have_attribute("data-sla", "breaching")
    row.locator("input.pick").check()
    page.select_option("#b-assignee", str(agent1["id"]))
    page.locator("#bulk button[type=submit]").click()  # the supervisor reads the page in Russian

    expect(page.locator(f'#work-list tr[data-ticket-id="{ticket["id"]}"] td.assignee')).to_have_text(
        agent1["display_name"] or "agent1"
    )
    assert _get(server, f"/tickets/{ticket['id']}")["assignee_id"] == agent1["id"]


def test_an_agent_answers_a_ticket_with_a_canned_answer(server: Server, new_context: Any) -> None:
    from playwright.sync_api import expect

    _post(
        server,
        "/canned-answers",
        {
            "shortcut": "refund",
            "title": "Refund accepted",
            "body": "Hello {{customer.name}}, the refund for ticket {{ticket.number}} is on its way.",
            "language": "en",
            "shared": True,
        },
    )
    # The reply leaves as an email from the support address to the customer's.
    _post(
        server,
        "/entry-points",
        {"name": "Support mail", "channel": "email", "address": "support@shop.example", "email": {}},
    )
    unreachable = _post(server, "/tickets", {"customer_id": _customer(server), "subject": "No address"})
    customer_id = _customer(server, "anna@customer.example")
    ticket = _post(server, "/tickets", {"customer_id": customer_id, "subject": "Refund please"})
    page = sign_in(new_context(), server, "agent1", "/desk")

    # A customer without any channel: the reply is refused next to the reply box, nothing stored.
    page.goto(f"{server.url}/tickets/{unreachable['id']}")
    page.locator("#reply-body").fill("Hello")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#reply-form")).to_contain_text("The customer cannot be reached")
    assert [e for e in _get(server, f"/tickets/{unreachable['id']}/timeline") if e["kind"] == "reply"] == []

    page.goto(f"{server.url}/tickets/{ticket['id']}")

    page.locator("#reply-body").press_sequentially("/refu")
    page.locator('#canned-list button[data-shortcut="refund"]').click()
    expected = f"Hello Анна Волкова, the refund for ticket {ticket['id']} is on its way."
    expect(page.locator("#reply-body")).to_have_value(expected)
    page.get_by_role("button", name="Send").click()

    reply = page.locator("#t-timeline li.tl-reply")
    expect(reply).to_contain_text(expected)
    # Its state is the outbound message's (this site has no relay: queued, then retried or failed).
    state = re.compile("^(queued|sending|failed)$")
    expect(reply.locator(".delivery")).to_have_attribute("data-delivery", state)
    expect(page.locator("#reply-body")).to_have_value("")
    timeline = _get(server, f"/tickets/{ticket['id']}/timeline")
    assert [(e["kind"], e["post"]["body"]) for e in timeline if e["kind"] == "reply"] == [("reply", expected)]


def test_a_deal_dragged_to_won_is_won_with_its_reason(server: Server, new_context: Any) -> None:
    from playwright.sync_api import expect

    pipeline = _post(
        server,
        "/pipelines",
        {
            "name": "Hardware",
            "stages": [
                {"key": "demo", "name": "Demo", "probability_pct": 30},
                {"key": "won", "name": "Won", "probability_pct": 100, "kind": "won"},
                {"key": "lost", "name": "Lost", "probability_pct": 0, "kind": "lost"},
            ],
            "won_reasons": ["price", "service"],
        },
    )
    deal = _post(
        server,
        "/deals",
        {
            "customer_id": _customer(server),
            "title": "Ten printers",
            "amount": "1500.00",
            "currency": "EUR",
            "pipeline_id": pipeline["id"],
        },
    )
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.goto(f"{server.url}/deals?pipeline={pipeline['id']}")

    card = page.locator(f'.deal-card[data-deal-id="{deal["id"]}"]')
    card.drag_to(page.locator('.board-column[data-stage="won"]'))
    page.select_option("#close-reason", "service")
    page.locator("#close-dialog").get_by_role("button", name="Save").click()

    expect(
        page.locator(f'.board-column[data-stage="won"] .deal-card[data-deal-id="{deal["id"]}"]')
    ).to_be_visible()
    expect(page.locator('.board-column[data-stage="won"] .stage-total')).to_have_attribute("data-count", "1")
    won = _get(server, f"/deals/{deal['id']}")
    assert (won["stage"], won["close_reason"]) == ("won", "service") and won["closed_at"] is not None
