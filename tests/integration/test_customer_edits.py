"""Every CRM write is one transaction: all of it or nothing, and a refused value is named by its field
(``details.field``, as in the request body). On SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from .test_tickets_deals_api import web_contact

API = "/api/v1"


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> dict:
    r = await client.post(f"{API}/customers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_an_edit_with_someone_elses_phone_changes_nothing_and_names_the_field(
    client, admin_headers
) -> None:
    await create(
        client, admin_headers, first_name="Ivan", identities=[{"kind": "phone", "value": "+74951234567"}]
    )
    anna = await create(client, admin_headers, first_name="Anna", last_name="Lebedeva")

    r = await client.patch(
        f"{API}/customers/{anna['id']}",
        json={
            "first_name": "Anya",
            "tags": ["vip"],
            "add_identities": [
                {"kind": "email", "value": "anna@example.ru"},
                {"kind": "phone", "value": "8 495 123-45-67"},
            ],
        },
        headers=admin_headers,
    )

    assert r.status_code == 409, r.text
    assert r.json()["error_id"] == "identity-taken"
    assert r.json()["details"]["field"] == "add_identities.1.value"
    card = (await client.get(f"{API}/customers/{anna['id']}", headers=admin_headers)).json()
    assert (card["first_name"], card["tags"], card["identities"]) == ("Anna", [], [])


async def test_an_edit_adds_identities_with_the_other_changes_in_one_request(client, admin_headers) -> None:
    anna = await create(client, admin_headers, first_name="Anna")

    r = await client.patch(
        f"{API}/customers/{anna['id']}",
        json={"first_name": "Anya", "add_identities": [{"kind": "phone", "value": "8 495 123-45-67"}]},
        headers=admin_headers,
    )

    assert r.status_code == 200, r.text
    assert r.json()["first_name"] == "Anya"
    assert [i["value"] for i in r.json()["identities"]] == ["+74951234567"]


async def test_an_edit_with_a_malformed_phone_or_unknown_company_changes_nothing_and_names_the_field(
    client, admin_headers
) -> None:
    anna = await create(client, admin_headers, first_name="Anna")
    for body, error_id, field in (
        ({"add_identities": [{"kind": "phone", "value": "12"}]}, "invalid-phone", "add_identities.0.value"),
        ({"company_id": 999_999}, "no-such-company", "company_id"),
        ({"owner_id": 999_999}, "no-such-user", "owner_id"),
        ({"vip": None}, "invalid-vip", "vip"),
    ):
        r = await client.patch(
            f"{API}/customers/{anna['id']}", json={"first_name": "Anya", **body}, headers=admin_headers
        )
        assert r.json()["error_id"] == error_id, r.text
        assert r.json()["details"]["field"] == field, r.text
    card = (await client.get(f"{API}/customers/{anna['id']}", headers=admin_headers)).json()
    assert card["first_name"] == "Anna"


async def test_a_new_customer_with_a_taken_phone_creates_neither_the_card_nor_its_company(
    client, admin_headers
) -> None:
    await create(
        client, admin_headers, first_name="Ivan", identities=[{"kind": "phone", "value": "+74951234567"}]
    )

    r = await client.post(
        f"{API}/customers",
        json={
            "first_name": "Anna",
            "company_name": "Romashka LLC",
            "identities": [
                {"kind": "email", "value": "anna@example.ru"},
                {"kind": "phone", "value": "74951234567"},
            ],
        },
        headers=admin_headers,
    )

    assert r.status_code == 409 and r.json()["error_id"] == "identity-taken"
    assert r.json()["details"]["field"] == "identities.1.value"
    companies = (await client.get(f"{API}/companies", params={"q": "romashka"}, headers=admin_headers)).json()
    assert companies["items"] == []
    found = await client.get(
        f"{API}/customers/lookup", params={"kind": "email", "value": "anna@example.ru"}, headers=admin_headers
    )
    assert found.status_code == 404


async def test_a_new_customer_with_a_malformed_identity_or_unknown_owner_names_the_field(
    client, admin_headers
) -> None:
    for body, error_id, field in (
        ({"identities": [{"kind": "email", "value": "a@@b"}]}, "invalid-email", "identities.0.value"),
        ({"company_id": 999_999}, "no-such-company", "company_id"),
        ({"owner_id": 999_999}, "no-such-user", "owner_id"),
    ):
        r = await client.post(f"{API}/customers", json={"first_name": "Anna", **body}, headers=admin_headers)
        assert r.json()["error_id"] == error_id, r.text
        assert r.json()["details"]["field"] == field, r.text
    assert (await client.get(f"{API}/customers", headers=admin_headers)).json()["items"] == []


async def test_adding_someone_elses_identity_names_the_field(client, admin_headers) -> None:
    await create(
        client, admin_headers, first_name="Ivan", identities=[{"kind": "phone", "value": "+74951234567"}]
    )
    anna = await create(client, admin_headers, first_name="Anna")

    r = await client.post(
        f"{API}/customers/{anna['id']}/identities",
        json={"kind": "phone", "value": "74951234567"},
        headers=admin_headers,
    )

    assert r.status_code == 409 and r.json()["details"]["field"] == "value"
    r = await client.post(
        f"{API}/customers/{anna['id']}/identities",
        json={"kind": "phone", "value": "12"},
        headers=admin_headers,
    )
    assert r.status_code == 400 and r.json()["details"]["field"] == "value"


async def test_a_card_for_an_unknown_sender_is_created_and_linked_to_the_contact_at_once(
    client, admin_headers
) -> None:
    contact = await web_contact(client, admin_headers, "+7 916 555-02-02")
    await client.delete(f"{API}/customers/{contact['customer_id']}", headers=admin_headers)

    r = await client.post(
        f"{API}/customers",
        json={
            "first_name": "Vera",
            "identities": [{"kind": "phone", "value": "+7 916 555-02-02"}],
            "interaction_id": contact["id"],
        },
        headers=admin_headers,
    )

    assert r.status_code == 201, r.text
    linked = (await client.get(f"{API}/interactions/{contact['id']}", headers=admin_headers)).json()
    assert linked["customer_id"] == r.json()["id"]


async def test_a_card_for_a_contact_that_cannot_be_linked_is_not_created(client, admin_headers) -> None:
    r = await client.post(
        f"{API}/customers",
        json={
            "first_name": "Vera",
            "identities": [{"kind": "phone", "value": "+7 916 555-02-02"}],
            "interaction_id": 999_999,
        },
        headers=admin_headers,
    )

    assert r.status_code == 404, r.text
    assert r.json()["error_id"] == "no-such-interaction" and r.json()["details"]["field"] == "interaction_id"
    found = await client.get(
        f"{API}/customers/lookup", params={"kind": "phone", "value": "+79165550202"}, headers=admin_headers
    )
    assert found.status_code == 404
