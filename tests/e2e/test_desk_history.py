"""Issue 14, item 10: the presence select and the status bar through a contact, and the customer's
history — items that open, notes with their author, wrap-up notes with their contact."""

from __future__ import annotations

from typing import Any

from .conftest import Server, sign_in

KNOWN_PHONE = "+7 916 101-11-21"  # demo customer no. 1, Иван Петров


def test_the_presence_select_follows_the_contact_and_the_bar_keeps_still_when_wrap_up_starts(
    server: Server, new_context: Any
) -> None:
    support = server.queue_id("Support")
    with server.api() as client:
        settings = client.get(f"/queues/{support}").json()["settings"]
        settings["wrap_up_s"] = 300
        client.patch(f"/queues/{support}", json={"settings": settings}).raise_for_status()
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.select_option("#presence", "available")
    page.wait_for_selector('#state-pill[data-state="available"]')
    contact = server.post_contact("Delivery is late", first_name="Иван", phone=KNOWN_PHONE)
    page.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').click()
    page.wait_for_selector('#state-pill[data-state="on_contact"]')
    assert page.input_value("#presence") == "on_contact"
    panel = page.locator(f"#panel-c{contact['id']}")
    # The contact's panel (with its reply box) can be taller than the window: bring the End button
    # into view first, as the agent scrolls to it, so that only a shift of the bar itself counts.
    panel.locator(".end-contact").scroll_into_view_if_needed()
    before = page.locator("#queue-choice").bounding_box()

    panel.locator(".end-contact").click()
    page.wait_for_selector('#state-pill[data-state="wrap_up"]')
    page.locator("#wrapup-timer:not(.hidden)").wait_for()
    assert page.input_value("#presence") == "wrap_up"
    assert page.locator("#queue-choice").bounding_box() == before


def test_history_items_open_notes_show_their_author_and_wrap_up_notes_sit_with_their_contact(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.select_option("#presence", "available")
    page.wait_for_selector('#state-pill[data-state="available"]')
    contact = server.post_contact("Broken kettle", first_name="Иван", phone=KNOWN_PHONE)
    page.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').click()
    panel = page.locator(f"#panel-c{contact['id']}")
    panel.locator("textarea[name=notes]").fill("Promised a replacement.")
    panel.locator(".ticket-mode-create").check()
    panel.locator(".complete-contact").click()
    page.locator(".toast", has_text="Ticket created").wait_for()

    page.fill("#customer-q", "916 101-11-21")
    page.click("#customer-search button[type=submit]")
    page.locator("#customer-results li button").first.click()
    card = page.locator(".tab-panel:not([hidden]) .customer-card")
    item = card.locator(f'.timeline-interaction[data-interaction-id="{contact["id"]}"]')
    item.locator(".wrapup-notes", has_text="Promised a replacement.").wait_for()
    assert card.locator(".timeline-note", has_text="Promised a replacement.").count() == 0
    # The past contact opens with its messages; the ticket opens with its status.
    item.locator("summary").click()
    item.locator(".timeline-detail .message", has_text="Please help").wait_for()
    ticket = card.locator(".timeline-ticket", has_text="Broken kettle").first
    ticket.locator("summary").click()
    ticket.locator(".ticket-detail").wait_for()

    card.get_by_role("button", name="Add note").click()
    card.locator("textarea[name=body]").fill("Prefers e-mail.")
    card.get_by_role("button", name="Save note").click()
    note = page.locator(".tab-panel:not([hidden]) .timeline-note", has_text="Prefers e-mail.")
    note.locator(".note-author", has_text="Katya Ivanova").wait_for()
