"""Issue 14, items 5–9: the agent desktop through a working day — offers noticed from another tab,
focus after accepting, the phone-size layout, a server outage, and long words."""

from __future__ import annotations

import re
from typing import Any

from .conftest import Server, screenshot, sign_in

# A stand-in for the Notification API and for the tab being in the background, which headless
# Chromium cannot show: the desk sees a hidden tab and a notification permission it may ask for.
BACKGROUND_TAB = """
window.__hidden = false;
window.__notes = [];
class FakeNotification {
  constructor(title, options) { window.__notes.push({ title, body: (options || {}).body || "" }); }
  close() {}
  addEventListener() {}
}
FakeNotification.permission = localStorage.getItem("test-permission") || "default";
FakeNotification.requestPermission = () => {
  localStorage.setItem("test-asked", String(Number(localStorage.getItem("test-asked") || 0) + 1));
  localStorage.setItem("test-permission", "granted");
  FakeNotification.permission = "granted";
  return Promise.resolve("granted");
};
window.Notification = FakeNotification;
Object.defineProperty(Document.prototype, "hidden", {
  configurable: true, get() { return window.__hidden; } });
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
"""

LONG_WORD = "Supercalifragilistic" * 12
LONG_URL = "https://example.com/orders/" + "a1b2c3d4e5" * 15 + "?tracking=" + "9" * 40

NO_SIDEWAYS_SCROLL = "() => document.scrollingElement.scrollWidth <= window.innerWidth"


def go_available(page: Any) -> None:
    page.select_option("#presence", "available")
    page.wait_for_selector('#state-pill[data-state="available"]')


def set_background(page: Any, hidden: bool) -> None:
    page.evaluate(
        "(hidden) => { window.__hidden = hidden; document.dispatchEvent(new Event('visibilitychange')); }",
        hidden,
    )


def accept(page: Any, contact_id: int) -> Any:
    offer = page.locator(f'.offer[data-contact-id="{contact_id}"]')
    offer.locator(".offer-accept").click()
    offer.wait_for(state="detached")
    panel = page.locator(f"#panel-c{contact_id}")
    panel.locator(".wrapup-form").wait_for()
    return panel


def inside_viewport(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    width = page.evaluate("window.innerWidth")
    return bool(box) and box["x"] >= 0 and box["x"] + box["width"] <= width and box["width"] > 0


def test_an_offer_in_a_background_tab_flashes_the_title_and_notifies_with_permission_asked_once(
    server: Server, new_context: Any
) -> None:
    context = new_context()
    context.add_init_script(BACKGROUND_TAB)
    page = sign_in(context, server, "agent1", "/desk")
    title = page.title()
    go_available(page)
    # Going available is the moment to ask (a click of the agent's); asked once.
    page.wait_for_function("() => localStorage.getItem('test-asked') === '1'")

    set_background(page, True)
    contact = server.post_contact("Parcel lost in Kazan", email="kazan@example.com")
    page.locator(f'.offer[data-contact-id="{contact["id"]}"]').wait_for()
    page.wait_for_function("() => window.__notes.length === 1")
    note = page.evaluate("window.__notes[0]")
    assert "Incoming contact" in note["title"]
    page.wait_for_function(
        f"() => document.title !== {title!r} && document.title.includes('Incoming contact')"
    )
    # Back in the tab: the title is the page's own again.
    set_background(page, False)
    page.wait_for_function(f"() => document.title === {title!r}")

    # Signing in again later does not ask again.
    page.reload()
    page.wait_for_selector('#conn[data-state="open"]')
    page.select_option("#presence", "offline")
    page.wait_for_selector('#state-pill[data-state="offline"]')
    go_available(page)
    assert page.evaluate("localStorage.getItem('test-asked')") == "1"


def test_accepting_an_offer_moves_keyboard_focus_into_the_contact(server: Server, new_context: Any) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    contact = server.post_contact("Focus please", email="focus@example.com")
    page.locator(f'.offer[data-contact-id="{contact["id"]}"] .offer-accept').wait_for()
    page.keyboard.press("Alt+A")
    page.wait_for_function(
        f"() => document.activeElement && document.activeElement !== document.body"
        f" && document.getElementById('panel-c{contact['id']}')?.contains(document.activeElement)"
    )


def test_the_desk_at_phone_size_has_no_sideways_scroll_and_shows_the_customer_before_wrap_up(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(viewport=(390, 844)), server, "agent1", "/desk")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert inside_viewport(page, "#sign-out")
    assert inside_viewport(page, ".topbar .lang a[lang=ru]")
    go_available(page)
    contact = server.post_contact("Small screen", first_name="Иван", phone="+7 916 101-11-21")
    panel = accept(page, contact["id"])
    panel.locator(".customer-name").wait_for()
    card = panel.locator("section.customer").bounding_box()
    wrap = panel.locator(".wrapup-form").bounding_box()
    assert card and wrap and card["y"] < wrap["y"]
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "desk-phone")


def test_long_words_and_urls_wrap_inside_the_contact_and_the_lists(server: Server, new_context: Any) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    contact = server.post_contact(f"{LONG_WORD} {LONG_URL}", email="long@example.com")
    panel = accept(page, contact["id"])
    panel.locator(".channel-panel .message").first.wait_for()
    page.locator(f'#today-list li[data-interaction-id="{contact["id"]}"]').wait_for()
    clipped = page.evaluate(
        """() => [...document.querySelectorAll(
             '.channel-panel, .channel-panel h3, .message, .customer, #today-list li, .tab-panel')]
           .filter((n) => n.offsetParent !== null && n.scrollWidth > n.clientWidth + 1)
           .map((n) => n.className || n.tagName)"""
    )
    assert clipped == []
    assert page.evaluate(NO_SIDEWAYS_SCROLL)


def test_a_server_outage_shows_a_banner_an_unknown_state_and_server_unreachable_in_russian(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(locale="ru-RU"), server, "agent1", "/desk")
    page.goto(f"{server.url}/lang/ru?next=/desk")
    page.wait_for_selector('#conn[data-state="open"]')
    go_available(page)
    board = sign_in(new_context(locale="ru-RU"), server, "supervisor", "/wallboard")
    board.locator(".tile .longest").first.wait_for()
    server.stop()

    banner = page.locator("#outage")
    banner.wait_for()
    assert re.search("[а-яА-Я]", banner.text_content() or "")
    page.wait_for_selector('#state-pill[data-state="unknown"]')
    assert page.locator("#state-time").text_content() == "—"
    page.fill("#customer-q", "Петров")
    page.click("#customer-search button[type=submit]")
    error = page.locator(".toast.error")
    error.first.wait_for()
    assert "Сервер недоступен" in (error.first.text_content() or "")
    assert "Failed to fetch" not in (page.locator("body").text_content() or "")
    screenshot(page, "desk-outage", for_docs=False)
    # The wallboard too: a banner, and its ticking figures no longer tick.
    board.locator("#outage").wait_for()
    board.wait_for_function(
        "() => [...document.querySelectorAll('.tile .longest, #agents .time-in-state')]"
        ".every((n) => n.textContent === '—')"
    )
