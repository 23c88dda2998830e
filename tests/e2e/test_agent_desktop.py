"""Scenarios 1 and 2: an agent answers a web-form contact with the screen-pop; a missed offer."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Server, screenshot, sign_in

# Demo customer no. 1 (services/demo.py): Иван Петров of ООО «Ромашка», phone +7 916 101-11-21.
KNOWN_PHONE = "+7 916 101-11-21"
# GET /api/v1/customers/{id}: the customer's card (the offer's screen-pop reads it too).
CARD_URL = re.compile(r"/api/v1/customers/\d+$")


def go_available(page: Any) -> None:
    page.select_option("#presence", "available")
    page.wait_for_selector('#state-pill[data-state="available"]')


def test_agent_answers_a_web_form_contact_with_the_customer_card_and_completes_it(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)

    contact = server.post_contact("Delivery is late", first_name="Иван", phone=KNOWN_PHONE)

    offer = page.locator(f'.offer[data-contact-id="{contact["id"]}"]')
    offer.wait_for()
    offer.locator(".offer-name").filter(has_text="Петров").wait_for()
    offer.locator(".offer-accept").click()
    offer.wait_for(state="detached")

    panel = page.locator(f"#panel-c{contact['id']}")
    panel.locator(".customer-name").filter(has_text="Иван Петров").wait_for()
    panel.locator(".customer-company").filter(has_text="Ромашка").wait_for()
    panel.locator(".channel-panel .message").filter(has_text="Please help").wait_for()
    timeline = panel.locator(".timeline li")
    timeline.first.wait_for()
    assert timeline.count() >= 2  # this contact and the demo history
    # Newest first: the contact being handled heads the history.
    assert timeline.first.get_attribute("data-interaction-id") == str(contact["id"])

    panel.locator("select[name=disposition]").select_option("resolved")
    panel.locator("textarea[name=notes]").fill("Sent the tracking number.")
    screenshot(page, "desk-contact")
    panel.locator(".complete-contact").click()
    panel.wait_for(state="detached")

    today = page.locator(f'#today-list li[data-interaction-id="{contact["id"]}"]')
    today.filter(has_text="resolved").wait_for()
    # The customer's history now holds the completed contact with its disposition and the note.
    page.fill("#customer-q", "916 101-11-21")
    page.click("#customer-search button[type=submit]")
    page.locator("#customer-results li button").first.click()
    card = page.locator(".tab-panel:not([hidden]) .customer-card")
    item = card.locator(f'.timeline-interaction[data-interaction-id="{contact["id"]}"]')
    item.filter(has_text="resolved").wait_for()
    # The wrap-up note sits with its contact (issue 14, item 10), not as a separate note.
    item.locator(".wrapup-notes").filter(has_text="Sent the tracking number.").wait_for()
    screenshot(page, "desk-history")


def test_a_missed_offer_disappears_the_agent_becomes_not_ready_and_another_agent_gets_it(
    server: Server, new_context: Any
) -> None:
    support = server.queue_id("Support")
    with server.api() as client:
        settings = client.get(f"/queues/{support}").json()["settings"]
        settings["offer_timeout_s"] = 2
        client.patch(f"/queues/{support}", json={"settings": settings}).raise_for_status()

    first = sign_in(new_context(), server, "agent1", "/desk")
    go_available(first)
    # Three offers in a row go unanswered (the engine's default limit), so agent1 becomes not ready.
    contacts = [server.post_contact(f"Question {n}", email=f"asker{n}@example.com") for n in range(3)]
    first.locator(".offer").first.wait_for()
    first.wait_for_selector('#state-pill[data-state="not_ready"][data-reason="missed"]')
    first.locator(".offer").first.wait_for(state="detached")
    assert first.locator(".offer").count() == 0
    assert first.locator("#presence").input_value() == "not_ready:missed"
    screenshot(first, "desk-missed")

    second = sign_in(new_context(), server, "agent2", "/desk")
    go_available(second)
    offer = second.locator(".offer").first
    offer.wait_for()
    assert offer.get_attribute("data-contact-id") in {str(c["id"]) for c in contacts}
    offer.locator(".offer-accept").click()
    second.locator(".tab-panel:not([hidden]) .customer-card").wait_for()
    screenshot(second, "desk-second-agent", for_docs=False)


def test_a_ticket_created_in_the_wrap_up_form_appears_on_the_card_and_the_next_contact_links_to_it(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)

    first = server.post_contact("Kettle leaks", first_name="Иван", phone=KNOWN_PHONE)
    page.locator(f'.offer[data-contact-id="{first["id"]}"] .offer-accept').click()
    panel = page.locator(f"#panel-c{first['id']}")
    panel.locator(".customer-name").filter(has_text="Иван Петров").wait_for()
    panel.locator(".ticket-mode-create").check()
    subject = panel.locator("input[name=ticket_subject]")
    expect(subject).to_have_value("Kettle leaks")  # prefilled from the contact
    subject.fill("Kettle leaks at the base")
    panel.locator("select[name=disposition]").select_option("resolved")
    screenshot(page, "desk-wrap-up-ticket")
    panel.locator(".complete-contact").click()
    panel.wait_for(state="detached")

    # The customer card lists the open ticket and the history shows it next to the contacts.
    page.fill("#customer-q", "916 101-11-21")
    page.click("#customer-search button[type=submit]")
    page.locator("#customer-results li button").first.click()
    card = page.locator(".tab-panel:not([hidden]) .customer-card")
    card.locator(".open-tickets li").filter(has_text="Kettle leaks at the base").wait_for()
    card.locator(".timeline-ticket").filter(has_text="Kettle leaks at the base").wait_for()
    screenshot(page, "desk-card-tickets")
    with server.api() as client:
        customer_id = client.get(f"/interactions/{first['id']}").json()["customer_id"]
        (ticket,) = client.get(f"/customers/{customer_id}/tickets", params={"open": "true"}).json()["items"]
    assert ticket["interaction_ids"] == [first["id"]] and ticket["status"] == "open"

    # The customer writes again: the agent links the new contact to the open ticket at wrap-up.
    second = server.post_contact("Still leaking", first_name="Иван", phone=KNOWN_PHONE)
    page.locator(f'.offer[data-contact-id="{second["id"]}"] .offer-accept').click()
    panel = page.locator(f"#panel-c{second['id']}")
    panel.locator(".ticket-mode-link").check()
    panel.locator("select[name=ticket_id]").select_option(str(ticket["id"]))
    panel.locator("select[name=disposition]").select_option("info")
    panel.locator("textarea[name=notes]").fill("Sent a technician.")
    panel.locator("textarea[name=notes]").press("Control+Enter")  # the keyboard way to complete
    # The tab closes only after the link call has answered, so the ticket holds both contacts now.
    panel.wait_for(state="detached")
    with server.api() as client:
        linked = client.get(f"/tickets/{ticket['id']}").json()["interaction_ids"]
    assert linked == [first["id"], second["id"]]


def test_an_agent_signs_in_to_some_of_their_queues_only(server: Server, new_context: Any) -> None:
    from playwright.sync_api import expect

    sales = server.queue_id("Sales")
    page = sign_in(new_context(), server, "agent1", "/desk")
    box = page.locator(f'#queue-choice input[name=queue][value="{sales}"]')
    expect(box).to_be_checked()  # all of the agent's queues by default
    box.uncheck()
    go_available(page)
    screenshot(page, "desk-queue-choice")

    # "price" goes to Sales by the demo rule; the rest to Support.
    price = server.post_contact("What is the price", email="buyer@example.com")
    question = server.post_contact("Where is my order", email="asker@example.com")
    page.locator(f'.offer[data-contact-id="{question["id"]}"]').wait_for()
    assert page.locator(f'.offer[data-contact-id="{price["id"]}"]').count() == 0
    with server.api() as client:
        assert client.get(f"/interactions/{price['id']}").json()["state"] == "queued"


def test_accept_stays_under_the_pointer_while_the_offer_loads_who_is_calling(
    server: Server, new_context: Any
) -> None:
    """The offer appears at once and fills in the customer when the screen-pop has loaded. If that
    moved the Accept button, a click pressed before and released after it would miss the button (the
    browser gives it to the offer box) and the contact would not be accepted. The screen-pop's
    request is held here until the button is pressed, so it always arrives mid-click."""
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route(CARD_URL, hold)
    long_subject = "The kettle leaks at the base whenever it boils, and the warranty card is lost " * 3
    with page.expect_request(CARD_URL):
        contact = server.post_contact(long_subject, first_name="Иван", phone=KNOWN_PHONE)
    offer = page.locator(f'.offer[data-contact-id="{contact["id"]}"]')
    accept = offer.locator(".offer-accept")
    before = accept.bounding_box()
    assert before is not None and len(held) == 1  # the screen-pop waits for the card
    page.mouse.move(before["x"] + before["width"] / 2, before["y"] + before["height"] / 2)
    page.mouse.down()
    held[0].continue_()
    page.unroute(CARD_URL)
    offer.locator(".offer-name").filter(has_text="Иван Петров").wait_for()
    assert accept.bounding_box() == before
    page.mouse.up()
    panel = page.locator(f"#panel-c{contact['id']}")
    panel.locator(".customer-name").filter(has_text="Иван Петров").wait_for()


def test_a_part_of_the_customer_card_that_fails_to_load_shows_an_error_and_the_rest_of_the_card(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    failure = {"error_id": "internal-error", "message": "Internal server error", "details": {}}

    def fail(route: Any) -> None:
        route.fulfill(status=500, json=failure)

    # The history and the open tickets (the card's list and the wrap-up form's) fail; the card does not.
    for part in ("timeline", "tickets"):
        page.route(re.compile(rf"/api/v1/customers/\d+/{part}"), fail)
    contact = server.post_contact("Kettle leaks", first_name="Иван", phone=KNOWN_PHONE)
    page.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').click()
    panel = page.locator(f"#panel-c{contact['id']}")
    card = panel.locator(".customer-card")
    card.locator(".customer-name").filter(has_text="Иван Петров").wait_for()
    expect(card.locator(".customer-company")).to_contain_text("Ромашка")
    expect(card.locator(".open-deals")).to_be_visible()
    expect(card.locator(".card-error")).to_have_count(2)  # in place of the open tickets and the history
    expect(card.locator(".card-error").first).to_contain_text("Internal server error")
    assert card.locator(".timeline").count() == 0 and card.locator(".open-tickets").count() == 0
    # The wrap-up form says the open tickets are missing and still offers to create one.
    expect(panel.locator(".ticket-error")).to_contain_text("Internal server error")
    expect(panel.locator(".ticket-mode-create")).to_be_visible()
