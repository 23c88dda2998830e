"""Editing a customer card on the agent desktop is one transaction: all of it is saved or nothing."""

from __future__ import annotations

from typing import Any

from .conftest import Server, sign_in

# Demo customers no. 1 and 2 (services/demo.py): Иван Петров and the next one, with these phones.
IVAN_PHONE = "+7 916 101-11-21"
OTHER_CUSTOMERS_PHONE = "+7 916 102-12-22"


def open_card(page: Any, phone: str) -> Any:
    page.fill("#customer-q", phone)
    page.click("#customer-search button[type=submit]")
    page.locator("#customer-results li button").first.click()
    card = page.locator(".tab-panel:not([hidden]) .customer-card")
    card.locator(".customer-name").wait_for()
    return card


def card_of(server: Server, phone: str) -> dict[str, Any]:
    with server.api() as client:
        r = client.get("/customers/lookup", params={"kind": "phone", "value": phone})
        r.raise_for_status()
        card: dict[str, Any] = r.json()
        return card


def test_an_edit_with_another_customers_phone_saves_nothing_and_a_corrected_one_saves_everything(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    page = sign_in(new_context(), server, "agent1", "/desk")
    card = open_card(page, IVAN_PHONE)
    card.get_by_role("button", name="Edit").click()
    form = card.get_by_role("form", name="Edit customer")
    form.locator("input[name=first_name]").fill("Ivan")
    form.locator("input[name=identity]").fill(OTHER_CUSTOMERS_PHONE)

    form.get_by_role("button", name="Save").click()

    # The refusal stays on the form (issue 14, item 2) until the edit is corrected.
    expect(form.locator(".form-error")).to_contain_text("already belongs to another customer")
    before = card_of(server, IVAN_PHONE)
    assert before["first_name"] == "Иван"
    assert "+79161021222" not in [i["value"] for i in before["identities"]]

    form.locator("input[name=identity]").fill("+7 916 555-66-77")
    form.get_by_role("button", name="Save").click()

    expect(card.locator(".customer-name")).to_contain_text("Ivan")
    saved = card_of(server, IVAN_PHONE)
    assert saved["first_name"] == "Ivan"
    assert "+79165556677" in [i["value"] for i in saved["identities"]]


def test_a_card_created_for_an_unknown_sender_is_linked_to_the_contact(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.select_option("#presence", "available")
    page.wait_for_selector('#state-pill[data-state="available"]')
    contact = server.post_contact("Where is my order")  # no phone or address: nobody is recognised
    page.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').click()
    panel = page.locator(f"#panel-c{contact['id']}")
    form = panel.get_by_role("form", name="Create customer")
    form.locator("input[name=first_name]").fill("Nina")

    form.get_by_role("button", name="Create customer").click()

    panel.locator(".customer-name").filter(has_text="Nina").wait_for()
    with server.api() as client:
        linked = client.get(f"/interactions/{contact['id']}").json()
        card = client.get(f"/customers/{linked['customer_id']}").json()
    assert card["first_name"] == "Nina"
