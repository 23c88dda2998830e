"""The note box's @-picker in the browser: an agent types "@an" in an internal note, moves with the arrow
keys, inserts a colleague with Enter and another with a click (Escape closes the list first); the saved
note mentions both, and the mentioned colleague's desk shows it at once. A supervisor working in Russian
finds a colleague by the Cyrillic display name and inserts her with Tab. An answer to an earlier question
that comes after the latest one's does not replace the list."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .conftest import WAIT_MS, Server, sign_in, wait_for

PASSWORD = "mention-picker-1"


def _call(server: Server, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    with server.api() as client:
        r = client.request(method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()


def _colleague(server: Server, username: str, display_name: str) -> int:
    user = _call(
        server,
        "POST",
        "/users",
        {"username": username, "display_name": display_name, "role": "agent", "password": PASSWORD},
    )
    server.passwords[username] = PASSWORD
    return int(user["id"])


def test_an_agent_mentions_colleagues_from_the_note_box_with_the_keyboard_and_the_mouse(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    anna = _colleague(server, "anna.k", "Анна Ковалёва")
    andrei = _colleague(server, "andrei", "Andrei Petrov")
    customer = _call(server, "POST", "/customers", {"first_name": "Boris", "last_name": "Orlov"})
    ticket = _call(server, "POST", "/tickets", {"customer_id": customer["id"], "subject": "Printer on fire"})

    desk = sign_in(new_context(), server, "anna.k", "/desk")
    expect(desk.locator("#mention-count")).to_have_text("0", timeout=WAIT_MS)

    page = sign_in(new_context(), server, "agent1", "/desk")
    page.goto(f"{server.url}/tickets/{ticket['id']}")
    page.check("input[name=mode][value=note]")
    box = page.locator("#reply-body")
    picker = page.get_by_role("listbox", name="Colleagues to mention")
    options = picker.get_by_role("option")
    expect(box).to_have_attribute("aria-expanded", "false")

    # "@an": both colleagues, the first one active; Escape closes the list and typing on keeps it closed.
    box.click()
    box.press_sequentially("@an")
    expect(options).to_have_count(2, timeout=WAIT_MS)
    expect(options.nth(0)).to_contain_text("Andrei Petrov")
    expect(options.nth(1)).to_contain_text("Анна Ковалёва")
    expect(options.nth(1)).to_contain_text("@anna.k")
    expect(box).to_have_attribute("aria-expanded", "true")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", options.nth(0).get_attribute("id") or "?")
    box.press("Escape")
    expect(picker).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    box.press_sequentially("d")
    expect(box).to_have_value("@and")
    expect(picker).to_be_hidden()
    for _ in range(4):
        box.press("Backspace")
    expect(box).to_have_value("")

    # Arrow down to Anna, Enter inserts her username at the caret.
    box.press_sequentially("Hi @an")
    expect(options).to_have_count(2, timeout=WAIT_MS)
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(options.nth(0)).to_have_attribute("aria-selected", "false")
    expect(box).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id") or "?")
    box.press("Enter")
    expect(box).to_have_value("Hi @anna.k ")
    expect(picker).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")

    # A click inserts too (the list narrows to Andrei as the letters are typed).
    box.press_sequentially("and @andr")
    expect(options).to_have_count(1, timeout=WAIT_MS)
    options.first.click()
    expect(box).to_have_value("Hi @anna.k and @andrei ")
    box.press_sequentially("please call the customer")
    page.click("#reply-send")
    note_text = "Hi @anna.k and @andrei please call the customer"
    expect(page.locator("#t-timeline")).to_contain_text(note_text, timeout=WAIT_MS)
    expect(box).to_have_value("")

    # The note mentions both, as if typed by hand: they watch the ticket, and Anna's desk lists it at once.
    note = next(
        e["post"] for e in _call(server, "GET", f"/tickets/{ticket['id']}/timeline") if e["kind"] == "note"
    )
    assert note["body"] == note_text and sorted(note["mentions"]) == sorted([anna, andrei])
    watchers = {w["user_id"] for w in _call(server, "GET", f"/tickets/{ticket['id']}/watchers")}
    assert {anna, andrei} <= watchers
    mention = desk.locator(f'#mention-list li[data-ticket-id="{ticket["id"]}"]')
    expect(mention.locator(".mention-excerpt")).to_have_text(note_text, timeout=WAIT_MS)
    expect(desk.locator("#mention-count")).to_have_text("1")

    # In Russian: the supervisor finds Anna by her Cyrillic surname, in capitals, and Tab inserts her.
    ru = sign_in(new_context(), server, "supervisor", "/wallboard")
    ru.goto(f"{server.url}/tickets/{ticket['id']}")
    ru.check("input[name=mode][value=note]")
    ru_box = ru.locator("#reply-body")
    ru_box.click()
    ru_box.press_sequentially("@КОВ")
    ru_options = ru.get_by_role("listbox", name="Кого упомянуть").get_by_role("option")
    expect(ru_options).to_have_count(1, timeout=WAIT_MS)
    expect(ru_options.first).to_contain_text("Анна Ковалёва")
    ru_box.press("Tab")
    expect(ru_box).to_have_value("@anna.k ")


def test_a_late_answer_to_an_earlier_question_does_not_replace_the_list(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    _colleague(server, "anna.k", "Анна Ковалёва")
    _colleague(server, "andrei", "Andrei Petrov")
    customer = _call(server, "POST", "/customers", {"first_name": "Boris"})
    ticket = _call(server, "POST", "/tickets", {"customer_id": customer["id"], "subject": "Kettle"})
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.goto(f"{server.url}/tickets/{ticket['id']}")
    page.check("input[name=mode][value=note]")
    box = page.locator("#reply-body")
    options = page.get_by_role("listbox", name="Colleagues to mention").get_by_role("option")

    # The picker's questions wait here until the test lets them through, in the order it chooses.
    held: dict[str, Any] = {}
    page.route(
        lambda url: "/api/v1/users/mentionable" in url,
        lambda route: held.setdefault(parse_qs(urlsplit(route.request.url).query)["q"][0], route),
    )
    box.click()
    box.press_sequentially("@a")
    wait_for(lambda: "a" in held, "the question for @a", page)
    box.press_sequentially("nd")
    wait_for(lambda: "and" in held, "the question for @and", page)
    held["and"].continue_()
    expect(options).to_have_count(1, timeout=WAIT_MS)
    expect(options.first).to_contain_text("Andrei Petrov")

    # The answer to "@a" (both colleagues) comes last: it is dropped, the list still answers "@and".
    page.evaluate(
        """() => { window.lateAnswer = new Promise((done) => document.getElementById("reply-body")
             .addEventListener("fo:mention-answer", (event) => {
               if (event.detail.q === "a") done(event.detail.shown);
             })); }"""
    )
    held["a"].continue_()
    assert page.evaluate("() => window.lateAnswer") is False
    expect(options).to_have_count(1)
    box.press("Enter")
    expect(box).to_have_value("@andrei ")
