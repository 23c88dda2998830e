"""Deleting a customer over the REST API, on SQLite and PostgreSQL: the card and what only describes
the person (identities, notes, tags, custom fields) go; the contacts, tickets and deals stay, with no
customer."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import token_headers
from .test_tickets_deals_api import web_contact

API = "/api/v1"


async def card_with_history(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """A customer with a phone, an email, a tag, a custom field, a note, a contact, a ticket and a deal."""
    contact = await web_contact(client, headers, "+7 916 555-01-01")
    customer_id = contact["customer_id"]
    r = await client.patch(
        f"{API}/customers/{customer_id}",
        json={"first_name": "Anna", "tags": ["vip"], "custom": {"contract": "A-1"}},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"{API}/customers/{customer_id}/identities",
        json={"kind": "email", "value": "anna@example.ru"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/customers/{customer_id}/notes", json={"body": "Calls on Mondays"}, headers=headers
    )
    assert r.status_code == 201, r.text
    ticket = await client.post(
        f"{API}/tickets",
        json={"customer_id": customer_id, "subject": "Kettle", "source_interaction_id": contact["id"]},
        headers=headers,
    )
    assert ticket.status_code == 201, ticket.text
    deal = await client.post(
        f"{API}/deals",
        json={"customer_id": customer_id, "title": "Service plan", "currency": "RUB", "amount": "100"},
        headers=headers,
    )
    assert deal.status_code == 201, deal.text
    return {
        "customer_id": customer_id,
        "interaction_id": contact["id"],
        "ticket_id": ticket.json()["id"],
        "deal_id": deal.json()["id"],
    }


async def test_deleting_a_customer_with_identities_keeps_their_contacts_tickets_and_deals(
    client, admin_headers
) -> None:
    card = await card_with_history(client, admin_headers)
    customer_id = card["customer_id"]

    r = await client.delete(f"{API}/customers/{customer_id}", headers=admin_headers)

    assert r.status_code == 204, r.text
    missing = await client.get(f"{API}/customers/{customer_id}", headers=admin_headers)
    assert missing.status_code == 404 and missing.json()["error_id"] == "no-such-customer"
    for kind, value in (("phone", "+79165550101"), ("email", "anna@example.ru")):
        r = await client.get(
            f"{API}/customers/lookup", params={"kind": kind, "value": value}, headers=admin_headers
        )
        assert r.status_code == 404, (kind, r.text)
    searched = await client.get(f"{API}/customers", params={"tag": "vip"}, headers=admin_headers)
    assert searched.json()["items"] == []
    interaction = await client.get(f"{API}/interactions/{card['interaction_id']}", headers=admin_headers)
    ticket = await client.get(f"{API}/tickets/{card['ticket_id']}", headers=admin_headers)
    deal = await client.get(f"{API}/deals/{card['deal_id']}", headers=admin_headers)
    assert [r.status_code for r in (interaction, ticket, deal)] == [200, 200, 200], ticket.text + deal.text
    assert interaction.json()["customer_id"] is None
    assert ticket.json()["customer_id"] is None and ticket.json()["interaction_ids"] == [
        card["interaction_id"]
    ]
    assert deal.json()["customer_id"] is None and deal.json()["amount"] == "100.00"
    r = await client.post(
        f"{API}/tickets/{card['ticket_id']}/interactions",
        json={"interaction_id": card["interaction_id"]},
        headers=admin_headers,
    )
    assert r.status_code == 409 and r.json()["error_id"] == "ticket-customer-deleted"
    # The phone is free again: a new card may take it.
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Boris", "identities": [{"kind": "phone", "value": "+7 916 555-01-01"}]},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text


async def test_cards_merged_into_a_deleted_customer_do_not_come_back(client, admin_headers) -> None:
    keep = (await client.post(f"{API}/customers", json={"last_name": "Orlova"}, headers=admin_headers)).json()
    dup = (await client.post(f"{API}/customers", json={"last_name": "Orlova"}, headers=admin_headers)).json()
    r = await client.post(
        f"{API}/customers/merge", json={"keep_id": keep["id"], "merge_id": dup["id"]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text

    r = await client.delete(f"{API}/customers/{keep['id']}", headers=admin_headers)

    assert r.status_code == 204, r.text
    found = await client.get(f"{API}/customers", params={"q": "orlova"}, headers=admin_headers)
    assert found.json()["items"] == []
    assert (await client.get(f"{API}/customers/{dup['id']}", headers=admin_headers)).status_code == 404


async def test_deleting_a_customer_is_audited(client, admin_headers) -> None:
    card = await card_with_history(client, admin_headers)

    r = await client.delete(f"{API}/customers/{card['customer_id']}", headers=admin_headers)

    assert r.status_code == 204, r.text
    entries = (await client.get(f"{API}/audit", headers=admin_headers)).json()["items"]
    deleted = [e for e in entries if e["action"] == "customer.delete"]
    assert len(deleted) == 1 and deleted[0]["object_id"] == str(card["customer_id"])


async def test_an_agent_is_refused_deleting_a_customer_by_the_delete_permission(
    client, admin_headers, container: Container
) -> None:
    card = await card_with_history(client, admin_headers)
    agent = await token_headers(container, "agent", Role.AGENT)

    r = await client.delete(f"{API}/customers/{card['customer_id']}", headers=agent)

    assert r.status_code == 403
    body = r.json()
    assert body["error_id"] == "forbidden"
    assert body["details"]["permission"] == "customers.delete"
    assert "customers.delete" in body["message"]
    assert (
        await client.get(f"{API}/customers/{card['customer_id']}", headers=admin_headers)
    ).status_code == 200


async def test_a_supervisor_may_delete_a_customer(client, admin_headers, container: Container) -> None:
    card = await card_with_history(client, admin_headers)
    supervisor = await token_headers(container, "lead", Role.SUPERVISOR)

    r = await client.delete(f"{API}/customers/{card['customer_id']}", headers=supervisor)

    assert r.status_code == 204, r.text
