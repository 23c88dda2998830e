"""Tickets and deals over the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.store.tables import AuditEntry

from ..conftest import token_headers

API = "/api/v1"


async def customer(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> int:
    r = await client.post(f"{API}/customers", json={"first_name": "Anna", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def web_contact(client: httpx.AsyncClient, headers: dict[str, str], phone: str) -> dict[str, Any]:
    """A web-form contact from ``phone`` (queued; nobody is signed in)."""
    r = await client.post(f"{API}/queues", json={"name": f"q{phone[-4:]}"}, headers=headers)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/entry-points",
        json={
            "name": "site",
            "channel": "webform",
            "address": f"site{phone[-4:]}",
            "default_queue_id": r.json()["id"],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/interactions",
        json={"entry_point": f"site{phone[-4:]}", "subject": "Broken kettle", "customer": {"phone": phone}},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    interaction: dict[str, Any] = r.json()["interaction"]
    return interaction


async def test_ticket_from_a_contact_moves_through_its_statuses_and_shows_on_the_card(
    client, admin_headers, agent_headers, container: Container
) -> None:
    contact = await web_contact(client, admin_headers, "+7 916 555-00-01")
    cid = contact["customer_id"]
    me = (await client.get(f"{API}/me", headers=agent_headers)).json()

    r = await client.post(
        f"{API}/tickets",
        json={
            "customer_id": cid,
            "subject": "Broken kettle",
            "priority": "high",
            "assignee_id": me["id"],
            "source_interaction_id": contact["id"],
            "due_at": "2026-12-01T12:00:00+03:00",
        },
        headers=agent_headers,
    )
    assert r.status_code == 201, r.text
    ticket = r.json()
    assert ticket["status"] == "open" and ticket["priority"] == "high"
    assert ticket["interaction_ids"] == [contact["id"]]
    assert ticket["due_at"].startswith("2026-12-01T09:00:00")

    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "pending"}, headers=agent_headers)
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["solved_at"] is None
    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "solved"}, headers=agent_headers)
    assert r.json()["status"] == "solved" and r.json()["solved_at"] is not None

    # Open tickets leave out solved ones; the full list has it.
    r = await client.get(f"{API}/customers/{cid}/tickets", params={"open": "true"}, headers=agent_headers)
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get(f"{API}/customers/{cid}/tickets", headers=agent_headers)
    assert [t["id"] for t in r.json()["items"]] == [ticket["id"]]
    r = await client.get(
        f"{API}/customers/{cid}/tickets",
        params=[("status", "open"), ("status", "solved")],
        headers=agent_headers,
    )
    assert [t["id"] for t in r.json()["items"]] == [ticket["id"]]

    # Solved reopens; closed is final.
    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "open"}, headers=agent_headers)
    assert r.json()["status"] == "open" and r.json()["solved_at"] is None
    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "closed"}, headers=agent_headers)
    assert r.json()["status"] == "closed"
    r = await client.patch(f"{API}/tickets/{ticket['id']}", json={"status": "open"}, headers=agent_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "ticket-closed"

    # The ticket is in the customer's cross-channel timeline, next to the contact.
    r = await client.get(f"{API}/customers/{cid}/timeline", headers=agent_headers)
    kinds = {(i["kind"], i["id"]) for i in r.json()["items"]}
    assert ("ticket", ticket["id"]) in kinds and ("interaction", contact["id"]) in kinds
    async with container.sessions() as s:
        actions = list(await s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "ticket")))
    # Four changes were made; the refused one is not logged.
    assert actions.count("ticket.create") == 1 and actions.count("ticket.update") == 4


async def test_a_second_contact_links_to_an_open_ticket_of_the_same_customer_only(
    client, admin_headers, agent_headers
) -> None:
    contact = await web_contact(client, admin_headers, "+7 916 555-00-02")
    cid = contact["customer_id"]
    r = await client.post(
        f"{API}/tickets", json={"customer_id": cid, "subject": "Refund"}, headers=agent_headers
    )
    ticket = r.json()
    assert ticket["interaction_ids"] == [] and ticket["assignee_id"] is None

    for _ in range(2):  # linking twice is harmless
        r = await client.post(
            f"{API}/tickets/{ticket['id']}/interactions",
            json={"interaction_id": contact["id"]},
            headers=agent_headers,
        )
        assert r.status_code == 200, r.text
        assert r.json()["interaction_ids"] == [contact["id"]]

    other = await web_contact(client, admin_headers, "+7 916 555-00-03")
    r = await client.post(
        f"{API}/tickets/{ticket['id']}/interactions",
        json={"interaction_id": other["id"]},
        headers=agent_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "interaction-of-another-customer"
    r = await client.post(
        f"{API}/tickets",
        json={"customer_id": cid, "subject": "X", "source_interaction_id": other["id"]},
        headers=agent_headers,
    )
    assert r.status_code == 400
    r = await client.post(
        f"{API}/tickets", json={"customer_id": 999999, "subject": "X"}, headers=agent_headers
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-customer"
    r = await client.post(
        f"{API}/tickets",
        json={"customer_id": cid, "subject": "X", "priority": "whenever"},
        headers=agent_headers,
    )
    assert r.status_code == 422
    r = await client.get(f"{API}/tickets/999999", headers=agent_headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-ticket"


async def test_deal_amounts_are_exact_in_the_currency_and_stages_close_and_reopen(
    client, admin_headers, agent_headers
) -> None:
    cid = await customer(client, admin_headers)
    r = await client.post(
        f"{API}/deals",
        json={"customer_id": cid, "title": "Annual contract", "amount": "150000.50", "currency": "RUB"},
        headers=agent_headers,
    )
    assert r.status_code == 201, r.text
    deal = r.json()
    assert deal["stage"] == "lead" and deal["amount"] == "150000.50" and deal["closed_at"] is None

    r = await client.post(
        f"{API}/deals",
        json={"customer_id": cid, "title": "Yen", "amount": "10.5", "currency": "JPY"},
        headers=agent_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-amount"
    r = await client.post(
        f"{API}/deals",
        json={"customer_id": cid, "title": "X", "amount": "1", "currency": "XXQ"},
        headers=agent_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "unknown-currency"

    r = await client.patch(f"{API}/deals/{deal['id']}", json={"stage": "won"}, headers=agent_headers)
    assert r.json()["stage"] == "won" and r.json()["closed_at"] is not None
    r = await client.get(f"{API}/customers/{cid}/deals", params={"open": "true"}, headers=agent_headers)
    assert r.json()["items"] == []
    r = await client.patch(
        f"{API}/deals/{deal['id']}", json={"stage": "negotiation", "amount": "99.9"}, headers=agent_headers
    )
    assert r.json()["closed_at"] is None and r.json()["amount"] == "99.90"
    r = await client.get(f"{API}/customers/{cid}/deals", params={"open": "true"}, headers=agent_headers)
    assert [d["id"] for d in r.json()["items"]] == [deal["id"]]

    r = await client.get(f"{API}/customers/{cid}/timeline", headers=agent_headers)
    item = next(i for i in r.json()["items"] if i["kind"] == "deal")
    assert item["subject"] == "Annual contract" and item["amount"] == "99.90" and item["currency"] == "RUB"


async def test_merging_customers_moves_their_tickets_and_deals(client, admin_headers) -> None:
    keep = await customer(client, admin_headers, last_name="A")
    gone = await customer(client, admin_headers, last_name="B")
    await client.post(f"{API}/tickets", json={"customer_id": gone, "subject": "T"}, headers=admin_headers)
    await client.post(
        f"{API}/deals", json={"customer_id": gone, "title": "D", "currency": "EUR"}, headers=admin_headers
    )
    r = await client.post(
        f"{API}/customers/merge", json={"keep_id": keep, "merge_id": gone}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    tickets = (await client.get(f"{API}/customers/{keep}/tickets", headers=admin_headers)).json()["items"]
    deals = (await client.get(f"{API}/customers/{keep}/deals", headers=admin_headers)).json()["items"]
    assert len(tickets) == 1 and len(deals) == 1
    # Deleting the customer keeps their tickets and deals, with no customer (and the merged card goes too).
    assert (await client.delete(f"{API}/customers/{keep}", headers=admin_headers)).status_code == 204
    ticket = await client.get(f"{API}/tickets/{tickets[0]['id']}", headers=admin_headers)
    deal = await client.get(f"{API}/deals/{deals[0]['id']}", headers=admin_headers)
    assert ticket.json()["customer_id"] is None and deal.json()["customer_id"] is None
    assert (await client.get(f"{API}/customers/{gone}", headers=admin_headers)).status_code == 404


async def test_tickets_and_deals_need_their_permissions(client, container: Container) -> None:
    anonymous = await client.get(f"{API}/tickets/1")
    assert anonymous.status_code == 401
    headers = await token_headers(container, "viewer", Role.AGENT)
    r = await client.get(f"{API}/deals/1", headers=headers)
    assert r.status_code == 404  # agents may read deals; this one does not exist
