"""The Planning page: the shared top bar, load per minute or per hour, occupancy and abandonment warnings."""

from __future__ import annotations

from typing import Any

from .conftest import WAIT_MS, Server, screenshot, sign_in


def open_planning(context: Any, server: Server, lang: str) -> Any:
    """The supervisor's Planning page in ``lang``, chosen with the top bar's language switch."""
    page = sign_in(context, server, "supervisor", "/wallboard")
    page.goto(f"{server.url}/planning")
    page.locator(f'header.topbar a[lang="{lang}"]').click()
    # A locator, not a script: the click reloads the page, and a script run between the two documents
    # finds no <html> element at all (CI saw "Cannot read properties of null (reading 'lang')").
    page.locator(f'html[lang="{lang}"] #staff-form').wait_for()
    return page


def test_planning_has_the_top_bar_takes_calls_per_minute_and_warns_on_occupancy(
    server: Server, new_context: Any
) -> None:
    page = open_planning(new_context(viewport=(1440, 900)), server, "en")
    bar = page.locator("header.topbar")
    assert bar.locator('nav a[aria-current="page"]').text_content() == "Planning"
    assert bar.locator("#sign-out").is_visible() and bar.locator('a[lang="ru"]').is_visible()

    # 100 calls a minute at 180 s is 300 erlangs: 309 agents for 80/20, at 97 % occupancy.
    form = page.locator("#staff-form")
    form.locator('input[name="load"]').fill("100")
    form.locator('select[name="load_unit"]').select_option("60")
    form.locator('button[type="submit"]').click()
    result = page.locator("#staff-result")
    result.filter(has_text="309 agents").wait_for(timeout=WAIT_MS)
    warning = result.locator(".warning")
    assert "above the 90% ceiling" in (warning.text_content() or "")
    screenshot(page, "planning")

    # The ceiling is the planner's: at 99 % the same answer is not flagged, and the page remembers it.
    page.fill("#occupancy-ceiling", "99")
    page.locator("#occupancy-ceiling").dispatch_event("change")
    form.locator('button[type="submit"]').click()
    result.filter(has_text="309 agents").wait_for(timeout=WAIT_MS)
    page.wait_for_function("() => !document.querySelector('#staff-result .warning')", timeout=WAIT_MS)
    page.reload()
    assert page.locator("#occupancy-ceiling").input_value() == "99"


def test_planning_warns_when_callers_abandon_in_russian(server: Server, new_context: Any) -> None:
    page = open_planning(new_context(locale="ru-RU"), server, "ru")
    form = page.locator("#staff-form")
    assert form.locator('select[name="load_unit"] option[value="60"]').text_content() == "в минуту"
    # 10 calls a minute at 180 s (30 Erl) with 120 s patience and 80/20 abandons more than 5 %.
    form.locator('input[name="load"]').fill("10")
    form.locator('select[name="load_unit"]').select_option("60")
    form.locator('input[name="patience_s"]').fill("120")
    form.locator('button[type="submit"]').click()
    page.locator("#staff-result .warning", has_text="Брошенных").wait_for(timeout=WAIT_MS)
    screenshot(page, "planning-ru")
