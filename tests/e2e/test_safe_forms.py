"""Issue 14, items 1 and 2: forms that cannot save twice, and errors next to their fields."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Server, sign_in

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def open_demo_customer(page: Any) -> Any:
    page.fill("#customer-q", "916 101-11-21")
    page.click("#customer-search button[type=submit]")
    page.locator("#customer-results li button").first.click()
    card = page.locator(".tab-panel:not([hidden]) .customer-card")
    card.wait_for()
    return card


def notes_with(server: Server, customer_id: str, text: str) -> int:
    with server.api() as client:
        items = client.get(f"/customers/{customer_id}/timeline?limit=100").json()["items"]
    return sum(1 for i in items if i["kind"] == "note" and text in (i.get("summary") or ""))


def test_a_refused_field_shows_a_translated_error_next_to_it_until_it_is_corrected(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(locale="ru-RU"), server, "admin", "/admin")
    page.goto(f"{server.url}/lang/ru?next=/admin")
    page.goto(f"{server.url}/admin#users")
    form = page.locator("#user-form")
    username = form.locator("[name=username]")
    # The inputs stop where the API would refuse (services/schemas.py: username ≤ 64, password ≤ 200).
    assert username.get_attribute("maxlength") == "64"
    assert form.locator("[name=password]").get_attribute("maxlength") == "200"
    username.fill("плохое имя!")
    form.locator("[name=password]").fill("a-long-enough-password")
    form.locator("button[type=submit]").click()

    form.locator("[name=username][aria-invalid=true]").wait_for()
    note = form.locator(".field-error")
    note.wait_for()
    text = note.text_content() or ""
    assert re.search("[а-яА-Я]", text), text  # in the page's language
    assert "pattern" not in text and "String" not in text and "username" not in text
    # Next to the field (its own box sits right under the input), not in a toast.
    field_box, note_box = username.bounding_box(), note.bounding_box()
    assert field_box and note_box and 0 <= note_box["y"] - (field_box["y"] + field_box["height"]) < 40
    assert page.locator(".toast.error").count() == 0
    # Another action on the page does not remove it; correcting the field does.
    form.locator("[name=display_name]").fill("Кто-то")
    assert note.count() == 1
    username.fill("good.name")
    note.wait_for(state="detached")
    assert username.get_attribute("aria-invalid") is None


def test_following_the_link_of_the_section_shown_keeps_what_is_typed_in_it(
    server: Server, new_context: Any
) -> None:
    """Seen in CI: /admin showed Users, then /admin#users (the same section, by its link) drew the
    section again over the form being filled; Create user then met an empty required field, and the
    browser refused it without a word. The section shown is not read and drawn again."""
    page = sign_in(new_context(), server, "admin", "/admin")
    username = page.locator("#user-form [name=username]")
    username.fill("new.operator")
    reads: list[str] = []
    page.on("request", lambda request: reads.append(request.url) if "/api/v1/" in request.url else None)
    page.goto(f"{server.url}/admin#users")
    page.locator('.admin-nav a[href="#users"][aria-current="true"]').wait_for()
    # The hash change has been handled and a frame drawn: a second drawing would have begun.
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    assert reads == []
    assert username.input_value() == "new.operator"


def test_double_clicking_save_note_saves_one_note(server: Server, new_context: Any) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    card = open_demo_customer(page)
    customer_id = card.get_attribute("data-customer-id") or ""
    card.get_by_role("button", name="Add note").click()
    card.locator("textarea[name=body]").fill("Called back about the refund.")
    card.get_by_role("button", name="Save note").dblclick()
    page.locator(".toast", has_text="Note saved").first.wait_for()
    notes = page.locator(".tab-panel:not([hidden]) .timeline-note")
    notes.filter(has_text="Called back about the refund.").first.wait_for()
    assert notes_with(server, customer_id, "Called back about the refund.") == 1


def test_a_retried_action_sends_the_same_idempotency_key_and_a_new_action_a_new_one(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    card = open_demo_customer(page)
    keys: list[str] = []
    failed = []

    def once_unreachable(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if not failed:
            failed.append(True)
            route.abort("connectionfailed")
        else:
            route.continue_()

    page.route("**/api/v1/customers/*/notes", once_unreachable)
    card.get_by_role("button", name="Add note").click()
    card.locator("textarea[name=body]").fill("First try fails.")
    card.get_by_role("button", name="Save note").click()
    # The failure is told in words, on the form, and the button works again.
    card.locator(".form-error", has_text="Server unreachable").wait_for()
    card.get_by_role("button", name="Save note").click()
    page.locator(".toast", has_text="Note saved").first.wait_for()
    assert len(keys) == 2 and keys[0] == keys[1] and UUID.match(keys[0]), keys

    card = page.locator(".tab-panel:not([hidden]) .customer-card")
    card.get_by_role("button", name="Add note").click()
    card.locator("textarea[name=body]").fill("A second, different note.")
    card.get_by_role("button", name="Save note").click()
    page.locator(".toast", has_text="Note saved").nth(1).wait_for()
    assert len(keys) == 3 and keys[2] != keys[0] and UUID.match(keys[2])


def test_double_clicking_complete_with_create_a_ticket_makes_one_ticket_and_one_note(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.select_option("#presence", "available")
    page.wait_for_selector('#state-pill[data-state="available"]')
    contact = server.post_contact("Refund twice?", first_name="Иван", phone="+7 916 101-11-21")
    page.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').click()
    panel = page.locator(f"#panel-c{contact['id']}")
    panel.locator("textarea[name=notes]").fill("Refund requested once.")
    panel.locator(".ticket-mode-create").check()
    panel.locator(".complete-contact").dblclick()
    page.locator(".toast", has_text="Ticket created").first.wait_for()
    panel.wait_for(state="detached")
    customer_id = str(contact["customer_id"])
    with server.api() as client:
        tickets = client.get(f"/customers/{customer_id}/tickets?limit=100").json()["items"]
    assert sum(1 for t in tickets if t["subject"] == "Refund twice?") == 1
    assert notes_with(server, customer_id, "Refund requested once.") == 1
