"""The admin console's integration screens: a scoped API token (the secret shown once, the list
with scopes) and a public web form with its snippet, which then takes a submission."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from .conftest import Server, screenshot, sign_in


def test_admin_makes_a_narrow_token_and_a_public_web_form_whose_snippet_posts(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "admin", "/admin")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    page.goto(f"{server.url}/admin#tokens")
    form = page.get_by_role("form", name="New API token")
    form.get_by_label("What is the token for?").fill("shop website")
    form.get_by_label("admin — everything its user may do").uncheck()
    form.get_by_label("contacts:create — send contacts in (a website's form, a shop)").check()
    form.get_by_role("button", name="Create token").click()
    secret = page.locator("dialog code.secret")
    secret.wait_for()
    assert secret.text_content().startswith("fo_")  # type: ignore[union-attr]
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    row = page.locator("#section-tokens table.token-list").first.locator("tr", has_text="shop website")
    row.get_by_text("contacts:create").wait_for()

    page.goto(f"{server.url}/admin#entry-points")
    page.locator("#section-entry-points tr", has_text="website").locator(".edit-entry").click()
    settings = page.locator("#web-form-settings")
    settings.get_by_label("Allowed sites").fill("https://shop.example")
    settings.get_by_role("button", name="Create web form").click()
    snippet = page.locator("textarea.snippet")
    snippet.wait_for()
    html = snippet.input_value()
    assert 'name="website"' in html and "/api/v1/public/forms/pk_" in html
    screenshot(page, "admin-web-form")
    assert script_errors == []

    # The snippet's form posts to the server as it is.
    action = html.split('action="', 1)[1].split('"', 1)[0]
    action = action.replace(action.split("/api/v1/")[0], server.url)
    body = json.dumps({"email": "visitor@example.com", "message": "Hello from the shop"}).encode()
    request = urllib.request.Request(
        action, data=body, headers={"Content-Type": "application/json", "Origin": "https://shop.example"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert json.loads(answer.read())["accepted"] is True
