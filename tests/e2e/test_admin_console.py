"""Scenario 4: an administrator creates a queue and a routing rule in the Russian UI; contacts follow."""

from __future__ import annotations

from typing import Any

from .conftest import Server, screenshot, sign_in


def test_admin_creates_a_queue_and_a_rule_in_russian_and_a_new_contact_follows_it(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(locale="ru-RU"), server, "admin", "/admin")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(f"{server.url}/lang/ru?next=/admin")
    page.get_by_role("heading", name="Администрирование").wait_for()

    page.goto(f"{server.url}/admin#queues")
    page.click("#new-queue")
    page.fill("#queue-name", "Жалобы")
    page.fill("#queue-sl", "30")
    page.click("#queue-save")
    page.locator("#section-queues tbody tr", has_text="Жалобы").wait_for()
    complaints = server.queue_id("Жалобы")

    page.goto(f"{server.url}/admin#entry-points")
    page.locator("#section-entry-points tr", has_text="website").locator(".edit-entry").click()
    # A rule with a syntax error is refused with the reason, and nothing is saved.
    page.click("#add-rule")
    page.locator(".rule-text").last.fill("subject contains")
    page.click("#entry-save")
    # The rule's number and column show next to the rule, in Russian (issue 14, item 3).
    error = page.locator("#entry-form .rule-row .field-error")
    error.wait_for()
    rules = page.locator(".rule-text").count()
    assert f"правиле {rules}" in error.text_content(), error.text_content()
    assert "столбец" in error.text_content(), error.text_content()
    page.locator(".rule-text").last.fill('subject contains "жалоба"')
    page.locator(".rule-queue").last.select_option(str(complaints))
    page.click("#entry-save")
    page.locator(".toast", has_text="Точка входа сохранена").wait_for()
    assert error.count() == 0
    # The "test this rule" box tells which queue a sample contact would reach.
    page.fill("#test-subject", "жалоба на курьера")
    page.click("#rule-test button[type=submit]")
    page.locator(".test-result").filter(has_text="Жалобы").wait_for()
    screenshot(page, "admin-rules")

    contact = server.post_contact("жалоба на курьера", email="angry@example.com")
    assert contact["queue_id"] == complaints
    other = server.post_contact("Where is my parcel", email="calm@example.com")
    assert other["queue_id"] == server.queue_id("Support")

    # Every other section opens and lists its objects without a script error.
    for section in ("users", "agents", "calendars", "codes", "projects", "tokens", "audit"):
        page.goto(f"{server.url}/admin#{section}")
        page.locator(f"#section-{section} h2").wait_for()
        assert page.locator(f"#section-{section} > .error-text").count() == 0
    page.locator("#section-audit tbody tr", has_text="queue").first.wait_for()
    assert script_errors == []


def test_admin_limits_the_supervisor_to_a_project_in_the_users_section(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "admin", "/admin")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(f"{server.url}/admin#users")
    row = page.locator("#section-users tbody tr").filter(
        has=page.get_by_role("cell", name="supervisor", exact=True)
    )
    row.get_by_text("All projects").wait_for()
    row.get_by_role("button", name="Change projects: supervisor").click()
    dialog = page.get_by_role("dialog", name="Projects of supervisor")
    dialog.get_by_role("checkbox", name="Acme Ltd support").check()
    dialog.get_by_role("button", name="Save").click()
    page.locator(".toast", has_text="Projects saved").wait_for()
    row.get_by_text("Acme Ltd support").wait_for()
    with server.api() as client:
        users = {u["username"]: u for u in client.get("/users").json()}
        acme = next(p["id"] for p in client.get("/projects").json() if p["code"] == "acme")
    assert users["supervisor"]["project_ids"] == [acme]
    assert script_errors == []


def test_the_admin_console_shows_an_imports_progress_and_its_result(server: Server, new_context: Any) -> None:
    rows = "\n".join(f"Name{n},+7495{3_000_000 + n}" for n in range(3_000))
    with server.api() as client:
        r = client.post(
            "/customers/import",
            params={"dry_run": "false"},
            files={"file": ("c.csv", f"first_name,phones\n{rows}\n".encode(), "text/csv")},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
    page = sign_in(new_context(), server, "admin", "/admin")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(f"{server.url}/admin#jobs")
    row = page.locator(f"#section-jobs tr[data-job='{job_id}']")
    row.wait_for()
    assert row.locator("progress").count() == 1 or "succeeded" in row.text_content()
    # The list refreshes itself until the import is done; its report shows in the row.
    row.filter(has_text="succeeded").wait_for(timeout=120_000)
    assert "6000 / 6000" in row.text_content() and '"created":3000' in row.text_content()
    assert script_errors == []
