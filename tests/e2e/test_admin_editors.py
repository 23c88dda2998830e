"""Issue 14 item 17: the admin console's agent editor, password reset, queue names, code names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import Server, sign_in


@pytest.fixture
def server_env() -> dict[str, str]:
    # The entry points' gateway and Bot API URLs are on loopback: outgoing integrations reach it
    # only when allowed.
    return {"FRONTOFFICE_INTEGRATIONS_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}


def admin_page(server: Server, new_context: Any, section: str) -> Any:
    page = sign_in(new_context(), server, "admin", "/admin")
    page.goto(f"{server.url}/lang/en?next=/admin")
    page.goto(f"{server.url}/admin#{section}")
    page.locator(f"#section-{section} h2").wait_for()
    return page


def test_after_saving_a_profile_the_editor_stays_on_that_agent(server: Server, new_context: Any) -> None:
    with server.api() as client:
        agent2 = next(u["id"] for u in client.get("/users").json() if u["username"] == "agent2")
    page = admin_page(server, new_context, "agents")
    page.locator("#agent-picker").select_option(str(agent2))
    page.locator("#section-agents input[name=skills]").fill("english=7")
    page.locator("#section-agents button[type=submit]").click()
    page.locator(".toast", has_text="Profile saved").wait_for()
    page.locator("#section-agents td", has_text="english=7").wait_for()
    assert page.locator("#agent-picker").input_value() == str(agent2)
    assert page.locator("#section-agents input[name=skills]").input_value() == "english=7"


def test_an_administrator_resets_another_users_password(server: Server, new_context: Any) -> None:
    page = admin_page(server, new_context, "users")
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator("#section-users tbody tr", has_text="agent2")
    row.locator(".reset-password").click()
    dialog = page.locator("dialog.password-dialog")
    dialog.locator("input[name=new_password]").fill("short")
    dialog.locator("button[type=submit]").click()
    # Too short: the browser keeps the form (the same limit as the API's) and nothing is sent.
    assert dialog.locator("input[name=new_password]:invalid").count() == 1
    assert dialog.is_visible()
    dialog.locator("input[name=new_password]").fill("a-new-secret-42")
    dialog.locator("button[type=submit]").click()
    page.locator(".toast", has_text="Password changed").wait_for()
    r = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": "agent2", "password": "a-new-secret-42"}
    )
    assert r.status_code == 200, r.text


def test_escalation_queues_are_chosen_by_name(server: Server, new_context: Any) -> None:
    billing, sales, support_id = (server.queue_id(name) for name in ("Billing", "Sales", "Support"))
    edit_support = f'#section-queues tr[data-queue-id="{support_id}"] button'
    page = admin_page(server, new_context, "queues")
    page.click(edit_support)
    escalations = page.locator("#queue-form textarea[name=escalations]")
    escalations.fill("60; 1; Billing, Sales")
    page.click("#queue-save")
    page.locator(".toast", has_text="Queue saved").wait_for()
    with server.api() as client:
        support = next(q for q in client.get("/queues").json() if q["name"] == "Support")
    assert support["settings"]["escalations"][0]["add_queues"] == [billing, sales]
    # Shown by name when opened again; an unknown name is an error next to the field.
    page.click(edit_support)
    assert "Billing, Sales" in escalations.input_value()
    escalations.fill("60; 1; Nowhere")
    page.click("#queue-save")
    page.locator("#queue-form .field-error", has_text="Nowhere").wait_for()


def test_codes_have_a_name_per_language(server: Server, new_context: Any) -> None:
    page = admin_page(server, new_context, "codes")
    form = page.locator("#section-codes form").last  # not-ready reasons
    form.locator("input[name=code]").fill("training")
    form.locator("input[name=name_en]").fill("Training")
    form.locator("input[name=name_ru]").fill("Обучение")
    form.locator("button[type=submit]").click()
    page.locator("#section-codes tr", has_text="Обучение").wait_for()
    with server.api() as client:
        reason = next(r for r in client.get("/codes/not-ready-reasons").json() if r["code"] == "training")
    assert reason["names"] == {"en": "Training", "ru": "Обучение"}


def test_an_entry_points_channel_settings_are_edited_as_json_and_kept_when_other_fields_change(
    server: Server, new_context: Any
) -> None:
    support = server.queue_id("Support")
    gateway = {
        "gateway": "http",
        "http": {
            "url": "http://127.0.0.1:9/send",
            "webhook_secret": "s3cret-hook-0123456789",
            "api_key": "k-123",
        },
    }
    with server.api() as client:
        r = client.post(
            "/entry-points",
            json={
                "name": "SMS line",
                "channel": "sms",
                "address": "+79990001122",
                "default_queue_id": support,
                "sms": gateway,
            },
        )
        assert r.status_code == 201, r.text
        sms_id = r.json()["id"]
    page = admin_page(server, new_context, "entry-points")
    page.click(f'#section-entry-points tr[data-entry-id="{sms_id}"] .edit-entry')
    area = page.locator("#entry-form textarea[name=sms]")
    assert '"url": "http://127.0.0.1:9/send"' in area.input_value()
    assert "s3cret-hook" not in area.input_value()  # secrets are never shown ...
    assert (
        "sms.http.webhook_secret" in page.locator("#entry-form .secrets-set").inner_text()
    )  # ... only named
    # Another field changes: the gateway's settings and its stored secrets stay as they were.
    page.locator("#entry-form input[name=name]").fill("SMS line (Moscow)")
    page.click("#entry-save")
    page.locator(".toast", has_text="Entry point saved").wait_for()
    with server.api() as client:
        [saved] = [e for e in client.get("/entry-points").json() if e["id"] == sms_id]
    assert saved["name"] == "SMS line (Moscow)" and saved["sms"]["http"]["url"] == "http://127.0.0.1:9/send"
    assert {"sms.http.webhook_secret", "sms.http.api_key"} <= set(saved["secrets_set"])
    # Not JSON, then a setting the API refuses: each error is shown next to the settings, nothing saved.
    area = page.locator("#entry-form textarea[name=sms]")
    area.fill("{ not json")
    page.click("#entry-save")
    page.locator("#entry-form .field-error", has_text="Not valid JSON").wait_for()
    area.fill('{"gateway": "http", "http": {"url": "http://127.0.0.1:9/send", "method": "PUT"}}')
    page.click("#entry-save")
    page.locator("#entry-form .field-error", has_text="http.method").wait_for()
    # A gateway on an address outgoing integrations may not reach: refused under the settings.
    area.fill('{"gateway": "http", "http": {"url": "http://169.254.169.254/send"}}')
    page.click("#entry-save")
    page.locator(
        "#entry-form .field-error", has_text="http.url: 169.254.169.254 is a link-local address"
    ).wait_for()
    with server.api() as client:
        [kept] = [e for e in client.get("/entry-points").json() if e["id"] == sms_id]
    assert kept["sms"]["http"].get("method", "POST") == "POST"
    # A Telegram bot is set up from the console: a messenger entry point with its telegram block.
    page.click("#section-entry-points button.primary")
    form = page.locator("#entry-form")
    form.locator("input[name=name]").fill("Shop bot")
    form.locator("select[name=channel]").select_option("messenger")
    form.locator("input[name=address]").fill("shop_bot")
    form.locator("select[name=default_queue_id]").select_option(str(support))
    form.locator("textarea[name=telegram]").fill(
        '{"token": "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQ", "base_url": "http://127.0.0.1:9"}'
    )
    page.click("#entry-save")
    page.locator(".toast", has_text="Entry point saved").wait_for()
    with server.api() as client:
        [bot] = [e for e in client.get("/entry-points").json() if e["address"] == "shop_bot"]
    assert bot["channel"] == "messenger" and "telegram.token" in bot["secrets_set"]
    assert bot["telegram"]["token"] is None  # stored, never read back
