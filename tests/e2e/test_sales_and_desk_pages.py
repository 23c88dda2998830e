"""The last pages of issue 16 in the browser: a sales rep finds a deal in the list, edits it and closes
its task; the forecast weighs the pipeline; a company's page lists its people, tickets and deals and is
renamed; a supervisor keeps the knowledge base's categories and edits and deletes canned answers and
macros (in Russian, errors next to the field); the ticket page shows each SLA clock, suggests articles
and sends a reply with a file and a copy; a mentioned agent finds the note and a due task on the desk;
the reports page gives the help desk and sales figures; a supervisor writes an SLA policy and a pipeline;
the wallboard lists the tickets closest to their SLA deadline."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from .conftest import Server, sign_in


def _post(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with server.api() as client:
        r = client.post(path, json=body)
        assert r.status_code in (200, 201), r.text
        data: dict[str, Any] = r.json()
        return data


def _get(server: Server, path: str) -> Any:
    with server.api() as client:
        r = client.get(path)
        r.raise_for_status()
        return r.json()


def _customer(server: Server, email: str | None = None, **extra: Any) -> int:
    identities = [{"kind": "email", "value": email}] if email else []
    body = {"first_name": "Анна", "last_name": "Волкова", "identities": identities} | extra
    return int(_post(server, "/customers", body)["id"])


def _user_id(server: Server, username: str) -> int:
    return int(next(u["id"] for u in _get(server, "/users") if u["username"] == username))


HARDWARE = {
    "name": "Hardware",
    "stages": [
        {"key": "demo", "name": "Demo", "probability_pct": 30},
        {"key": "won", "name": "Won", "probability_pct": 100, "kind": "won"},
        {"key": "lost", "name": "Lost", "probability_pct": 0, "kind": "lost"},
    ],
    "won_reasons": ["price", "service"],
}


def test_a_sales_rep_finds_a_deal_in_the_list_edits_it_and_closes_its_task(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    pipeline = _post(server, "/pipelines", HARDWARE)
    customer_id = _customer(server)
    deal = _post(
        server,
        "/deals",
        {
            "customer_id": customer_id,
            "title": "Ten printers",
            "amount": "1500.00",
            "currency": "EUR",
            "pipeline_id": pipeline["id"],
        },
    )
    _post(server, "/deals", {"customer_id": customer_id, "title": "Old lead", "currency": "EUR"})
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.goto(f"{server.url}/deals/list")
    expect(page.locator("#deal-list tbody tr")).to_have_count(2)
    page.select_option("#d-pipeline", str(pipeline["id"]))
    page.locator("#deal-filters button[type=submit]").click()
    expect(page.locator("#deal-list tbody tr")).to_have_count(1)
    row = page.locator(f'#deal-list tr[data-deal-id="{deal["id"]}"]')
    expect(row.locator(".stage")).to_have_text("Demo")
    assert "pipeline=" in page.url  # the filters are in the address
    row.locator("a.deal-title").click()
    page.wait_for_url(f"**/deals/{deal['id']}")

    # A wrong amount is refused next to its field; nothing changes.
    page.fill("#deal-amount", "fifteen")
    page.locator("#deal-form button[type=submit]").click()
    expect(page.locator("#deal-amount")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#deal-form .field-error")).to_be_visible()
    assert _get(server, f"/deals/{deal['id']}")["amount"] == "1500.00"

    page.fill("#deal-amount", "2000")
    page.select_option("#deal-stage", "won")
    page.select_option("#deal-reason", "service")
    page.locator("#deal-form button[type=submit]").click()
    expect(page.locator("#toasts")).to_contain_text("Deal saved")
    saved = _get(server, f"/deals/{deal['id']}")
    assert (saved["amount"], saved["stage"], saved["close_reason"]) == ("2000.00", "won", "service")

    page.fill("#act-title", "Send the contract")
    page.locator("#activity-form button[type=submit]").click()
    item = page.locator("#activities li").filter(has_text="Send the contract")
    expect(item).to_be_visible()
    item.locator("button.mark-done").click()
    expect(page.locator("#activities li").filter(has_text="Send the contract")).to_have_count(0)
    page.check("#show-done")
    expect(page.locator("#activities li.done").filter(has_text="Send the contract")).to_be_visible()
    done = _get(server, f"/activities?deal_id={deal['id']}&open=false")["items"]
    assert [(a["title"], a["done_at"] is not None) for a in done] == [("Send the contract", True)]


def test_the_forecast_weighs_the_pipeline_by_month(server: Server, new_context: Any) -> None:
    from playwright.sync_api import expect

    pipeline = _post(server, "/pipelines", HARDWARE)
    customer_id = _customer(server)
    month = dt.date.today().replace(day=1)
    close = (month + dt.timedelta(days=10)).isoformat()
    for title, amount in (("Printers", "1500.00"), ("Toner", "500.00")):
        _post(
            server,
            "/deals",
            {
                "customer_id": customer_id,
                "title": title,
                "amount": amount,
                "currency": "EUR",
                "pipeline_id": pipeline["id"],
                "expected_close_on": close,
            },
        )
    lost = _post(
        server,
        "/deals",
        {
            "customer_id": customer_id,
            "title": "Lost one",
            "amount": "9000.00",
            "currency": "EUR",
            "pipeline_id": pipeline["id"],
            "expected_close_on": close,
        },
    )
    with server.api() as client:
        assert client.patch(f"/deals/{lost['id']}", json={"stage": "lost"}).status_code == 200
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.goto(f"{server.url}/deals/forecast")
    total = page.locator(
        f'#forecast tfoot tr.total[data-month="{month.isoformat()[:7]}"][data-currency="EUR"]'
    )
    expect(total.locator(".amount")).to_contain_text("2,000.00")
    expect(total.locator(".weighted")).to_contain_text("600.00")  # 30 % of 2,000; the lost deal left out
    expect(page.locator("#forecast-empty")).to_be_hidden()
    # A month without deals says so.
    page.fill("#fc-month", (month + dt.timedelta(days=400)).isoformat()[:7])
    page.fill("#fc-months", "1")
    page.locator("#forecast-form button[type=submit]").click()
    expect(page.locator("#forecast-empty")).to_be_visible()


def test_a_company_page_lists_its_people_tickets_and_deals_and_is_renamed(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    company = _post(server, "/companies", {"name": "Ромашка"})
    customer_id = _customer(server, company_id=company["id"])
    article = _post(
        server, "/kb/articles", {"language": "en", "title": "Kettle descaling", "body": "Use vinegar."}
    )
    _post(server, f"/kb/articles/{article['id']}/publish", {})
    ticket = _post(server, "/tickets", {"customer_id": customer_id, "subject": "Broken kettle"})
    deal = _post(server, "/deals", {"customer_id": customer_id, "title": "Ten kettles", "currency": "RUB"})
    page = sign_in(new_context(), server, "agent1", "/desk")
    # From the ticket page's customer panel to the company's page.
    page.goto(f"{server.url}/tickets/{ticket['id']}")
    # The knowledge base's articles on the ticket's subject are at hand.
    expect(page.locator(f'#t-kb li[data-article-id="{article["id"]}"] a')).to_have_text("Kettle descaling")
    page.locator("#t-customer a.company-name").click()
    page.wait_for_url(f"**/companies/{company['id']}")
    expect(page.locator("#company-people li")).to_have_text(["Анна Волкова"])
    expect(page.locator(f'#company-tickets tr[data-ticket-id="{ticket["id"]}"]')).to_contain_text(
        "Broken kettle"
    )
    expect(page.locator(f'#company-deals tr[data-deal-id="{deal["id"]}"]')).to_contain_text("Ten kettles")

    page.fill("#co-name", "Ромашка Плюс")
    page.fill("#co-website", "https://romashka.example")
    page.locator("#company-form button[type=submit]").click()
    expect(page.locator("#company-name")).to_have_text("Ромашка Плюс")
    saved = _get(server, f"/companies/{company['id']}")
    assert (saved["name"], saved["website"]) == ("Ромашка Плюс", "https://romashka.example")


def test_a_supervisor_keeps_kb_categories_and_edits_and_deletes_canned_answers(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    answer = _post(
        server,
        "/canned-answers",
        {"shortcut": "hi", "title": "Hello", "body": "Hello {{customer.name}}", "shared": True},
    )
    page = sign_in(new_context(), server, "supervisor", "/wallboard")  # she reads the pages in Russian
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{server.url}/kb")
    page.locator("#kb-categories-link").click()
    page.wait_for_url("**/kb/categories")
    page.fill("#cat-name", "Оплата")
    page.locator("#category-form button[type=submit]").click()
    item = page.locator("#categories li").filter(has=page.locator('input[value="Оплата"]'))
    expect(item).to_have_count(1)
    category_id = item.get_attribute("data-category-id")
    item.locator('input[name="name"]').fill("Оплата и возвраты")
    item.locator("button[type=submit]").click()
    expect(page.locator("#toasts")).to_contain_text("Категория сохранена")
    assert [c["name"] for c in _get(server, "/kb/categories")] == ["Оплата и возвраты"]
    page.locator(f'#categories li[data-category-id="{category_id}"] button.delete').click()
    expect(page.locator(f'#categories li[data-category-id="{category_id}"]')).to_have_count(0)
    assert _get(server, "/kb/categories") == []

    page.goto(f"{server.url}/canned-answers")
    row = page.locator(f'#answers li[data-answer-id="{answer["id"]}"]')
    row.locator("button.edit").click()
    shortcut = row.locator('input[name="shortcut"]')
    shortcut.fill("hi there")  # a shortcut has no spaces: refused next to the field, in Russian
    row.locator("button[type=submit]").click()
    expect(shortcut).to_have_attribute("aria-invalid", "true")
    expect(row.locator(".field-error")).to_have_text("Здесь есть недопустимые символы")
    shortcut.fill("hello")
    row.locator('textarea[name="body"]').fill("Здравствуйте, {{customer.name}}!")
    row.locator("button[type=submit]").click()
    expect(page.locator(f'#answers li[data-answer-id="{answer["id"]}"]')).to_contain_text("/hello")
    assert _get(server, "/canned-answers?q=hello")[0]["body"] == "Здравствуйте, {{customer.name}}!"
    page.locator(f'#answers li[data-answer-id="{answer["id"]}"] button.delete').click()
    expect(page.locator(f'#answers li[data-answer-id="{answer["id"]}"]')).to_have_count(0)
    assert _get(server, "/canned-answers?q=") == []

    # A macro is edited in the macro form and deleted.
    macro = _post(server, "/macros", {"name": "Pending", "actions": {"status": "pending"}, "shared": True})
    page.reload()
    page.locator(f'#macros li[data-macro-id="{macro["id"]}"] button.edit').click()
    expect(page.locator("#macro-form h3")).to_contain_text("Pending")
    page.fill("#m-name", "Ждём клиента")
    page.select_option("#m-priority", "high")
    page.locator("#macro-form button[type=submit]").click()
    expect(page.locator(f'#macros li[data-macro-id="{macro["id"]}"]')).to_contain_text("Ждём клиента")
    (saved,) = _get(server, "/macros")
    assert (saved["name"], saved["actions"]["status"], saved["actions"]["priority"]) == (
        "Ждём клиента",
        "pending",
        "high",
    )
    page.locator(f'#macros li[data-macro-id="{macro["id"]}"] button.delete').click()
    expect(page.locator(f'#macros li[data-macro-id="{macro["id"]}"]')).to_have_count(0)
    assert _get(server, "/macros") == []


def test_the_ticket_page_shows_each_sla_clock_and_sends_a_reply_with_a_file_and_a_copy(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    _post(
        server,
        "/sla-policies",
        {
            "name": "Standard",
            "position": 0,
            "first_response_s": 3600,
            "next_response_s": 1800,
            "resolution_s": 86400,
            "warn_before_s": 300,
        },
    )
    _post(
        server,
        "/entry-points",
        {"name": "Support mail", "channel": "email", "address": "support@shop.example", "email": {}},
    )
    customer_id = _customer(server, "anna@customer.example")
    ticket = _post(server, "/tickets", {"customer_id": customer_id, "subject": "Invoice wrong"})
    page = sign_in(new_context(), server, "agent1", "/desk")
    page.goto(f"{server.url}/tickets/{ticket['id']}")

    clocks = page.locator("#t-sla table.sla-clocks")
    expect(clocks.locator('tr[data-metric="first_response"]')).to_have_attribute("data-state", "running")
    expect(clocks.locator('tr[data-metric="next_response"]')).to_have_attribute("data-state", "off")
    expect(clocks.locator('tr[data-metric="resolution"]')).to_have_attribute("data-state", "running")
    expect(clocks.locator('tr[data-metric="first_response"] td.left')).to_contain_text("left")

    page.locator("#reply-body").fill("The corrected invoice is attached.")
    page.locator("#reply-cc").fill("boss at customer")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#reply-cc")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reply-form .field-error")).to_have_text(
        "Enter email addresses, such as anna@example.com"
    )

    page.locator("#reply-cc").fill("boss@customer.example")
    page.set_input_files(
        "#reply-files",
        files=[{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 x"}],
    )
    expect(page.locator('#reply-chosen li[data-filename="invoice.pdf"]')).to_be_visible()
    page.get_by_role("button", name="Send").click()
    reply = page.locator("#t-timeline li.tl-reply")
    expect(reply.locator(".reply-cc")).to_contain_text("boss@customer.example")
    expect(reply.locator('a[download="invoice.pdf"]')).to_be_visible()
    expect(page.locator("#reply-chosen li")).to_have_count(0)
    # The reply answered the first response: its clock stopped in time.
    expect(clocks.locator('tr[data-metric="first_response"]')).to_have_attribute("data-state", "met")
    # A task on the ticket, from its side panel.
    page.fill("#act-title", "Check the payment")
    page.locator("#activity-form button[type=submit]").click()
    expect(page.locator("#activities li").filter(has_text="Check the payment")).to_be_visible()
    tasks = _get(server, f"/activities?ticket_id={ticket['id']}")["items"]
    assert [a["title"] for a in tasks] == ["Check the payment"]
    post = next(e["post"] for e in _get(server, f"/tickets/{ticket['id']}/timeline") if e["kind"] == "reply")
    assert post["cc"] == ["boss@customer.example"] and [f["filename"] for f in post["attachments"]] == [
        "invoice.pdf"
    ]


def test_a_mentioned_agent_finds_the_note_and_a_due_task_on_the_desk(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    ticket = _post(server, "/tickets", {"customer_id": _customer(server), "subject": "Printer on fire"})
    agent1 = _user_id(server, "agent1")
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    _post(
        server,
        "/activities",
        {"ticket_id": ticket["id"], "title": "Call Anna back", "due_at": due, "owner_id": agent1},
    )
    page = sign_in(new_context(), server, "agent1", "/desk")
    expect(page.locator("#activity-list li").filter(has_text="Call Anna back")).to_be_visible()
    expect(page.locator("#mention-count")).to_have_text("0")

    # A colleague mentions her in a note: the desk lists it at once (the live stream).
    _post(server, f"/tickets/{ticket['id']}/notes", {"body": "@agent1 please call the customer"})
    mention = page.locator(f'#mention-list li[data-ticket-id="{ticket["id"]}"]')
    expect(mention).to_contain_text("Printer on fire")
    expect(mention.locator(".mention-excerpt")).to_have_text("@agent1 please call the customer")
    expect(page.locator("#mention-count")).to_have_text("1")
    mention.locator("a.mention-link").click()
    page.wait_for_url(f"**/tickets/{ticket['id']}")
    page.goto(f"{server.url}/desk")
    expect(page.locator("#mention-list")).to_contain_text("Nobody mentioned you.")

    page.locator("#activity-list li").filter(has_text="Call Anna back").locator("button.mark-done").click()
    expect(page.locator("#activity-list")).to_contain_text("No open tasks.")
    assert _get(server, f"/activities?ticket_id={ticket['id']}&open=true")["items"] == []


def test_the_reports_page_shows_sla_satisfaction_and_sales_figures(server: Server, new_context: Any) -> None:
    from playwright.sync_api import expect

    _post(server, "/sla-policies", {"name": "Standard", "position": 0, "first_response_s": 3600})
    customer_id = _customer(server)
    _post(server, "/tickets", {"customer_id": customer_id, "subject": "Kettle"})
    pipeline = _post(server, "/pipelines", HARDWARE)
    deal = _post(
        server,
        "/deals",
        {"customer_id": customer_id, "title": "Printers", "currency": "EUR", "pipeline_id": pipeline["id"]},
    )
    with server.api() as client:
        r = client.patch(f"/deals/{deal['id']}", json={"stage": "won", "close_reason": "price"})
        assert r.status_code == 200, r.text
    page = sign_in(new_context(), server, "supervisor", "/wallboard")  # in Russian
    page.goto(f"{server.url}/reports")
    page.select_option("#hd-pipeline", str(pipeline["id"]))
    page.locator("#hd-report-form button[type=submit]").click()
    expect(page.locator("#hd-sla caption").first).to_have_text("SLA: открыто заявок — 1")
    expect(page.locator("#hd-sales caption").first).to_have_text("Продажи: закрыто сделок — 1")
    expect(page.locator("#hd-sales table").nth(1).locator("tbody tr")).to_have_count(3)
    expect(page.locator("#hd-csat table")).to_be_visible()


def test_a_supervisor_writes_an_sla_policy_and_a_pipeline_on_the_settings_page(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    page = sign_in(new_context(), server, "supervisor", "/wallboard")  # in Russian
    page.goto(f"{server.url}/tickets")
    page.locator("a.settings-link").click()
    page.wait_for_url("**/helpdesk-settings")

    page.locator("#policy-new").click()
    page.fill("#pol-name", "VIP")
    page.check('#pol-priorities input[value="urgent"]')
    page.fill("#pol-tags", "vip")
    page.fill("#pol-first", "30")
    page.fill("#pol-resolution", "480")
    page.fill("#pol-warn", "5")
    page.select_option("#pol-breach-priority", "urgent")
    page.locator("#policy-form button[type=submit]").click()
    expect(page.locator("#policies tbody tr").filter(has_text="VIP")).to_contain_text("30 мин")
    (policy,) = _get(server, "/sla-policies")
    assert (
        policy["priorities"],
        policy["customer_tags"],
        policy["first_response_s"],
        policy["resolution_s"],
    ) == (
        ["urgent"],
        ["vip"],
        1800,
        28800,
    )
    assert (policy["warn_before_s"], policy["breach_priority"], policy["next_response_s"]) == (
        300,
        "urgent",
        None,
    )

    # A pipeline without a lost stage is refused on the form, in Russian; then saved.
    page.locator("#pipeline-new").click()
    page.fill("#pl-name", "Оборудование")
    page.fill("#pl-stages", "demo; Демо; 30; open\nwon; Выиграна; 100; won")
    page.locator("#pipeline-form button[type=submit]").click()
    expect(page.locator("#pipeline-form .form-error")).not_to_be_empty()
    assert [p["name"] for p in _get(server, "/pipelines") if p["id"] is not None] == []
    page.fill("#pl-stages", "demo; Демо; 30; open\nwon; Выиграна; 100; won\nlost; Проиграна; 0; lost")
    page.fill("#pl-lost", "цена, сроки")
    page.locator("#pipeline-form button[type=submit]").click()
    expect(page.locator("#pipelines li").filter(has_text="Оборудование")).to_contain_text("Демо 30 %")
    (pipeline,) = [p for p in _get(server, "/pipelines") if p["id"] is not None]
    assert [s["key"] for s in pipeline["stages"]] == ["demo", "won", "lost"]
    assert pipeline["lost_reasons"] == ["цена", "сроки"]
    # Reopening and surveys are the administrators': shown, not changeable.
    expect(page.locator("#set-reopen")).to_be_disabled()


def test_the_wallboard_lists_the_tickets_closest_to_their_sla_deadline(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    # First response due in ten minutes, warned an hour before: breaching at once.
    _post(
        server,
        "/sla-policies",
        {"name": "Tight", "position": 0, "first_response_s": 600, "warn_before_s": 3600},
    )
    ticket = _post(server, "/tickets", {"customer_id": _customer(server), "subject": "Printer on fire"})
    board = sign_in(new_context(), server, "supervisor", "/wallboard")
    row = board.locator(f'#wb-tickets tr[data-ticket-id="{ticket["id"]}"]')
    expect(row).to_have_attribute("data-sla", "breaching")
    expect(row).to_contain_text("Printer on fire")
    expect(row.locator("td.sla")).to_contain_text("осталось")


def test_the_desk_suggests_knowledge_base_articles_for_the_contacts_subject(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    from .test_agent_desktop import go_available
    from .test_desk_day import accept

    article = _post(
        server,
        "/kb/articles",
        {"language": "en", "title": "Router reboot", "body": "Unplug it for ten seconds."},
    )
    _post(server, f"/kb/articles/{article['id']}/publish", {})
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    contact = server.post_contact("My router keeps dropping", email="router.owner@example.com")
    panel = accept(page, contact["id"])
    link = panel.locator(f'section.kb-suggestions li[data-article-id="{article["id"]}"] a')
    expect(link).to_have_text("Router reboot")
    expect(link).to_have_attribute("target", "_blank")


def test_an_agent_adds_a_call_back_on_the_customer_card_and_it_is_on_their_tasks(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    from .test_agent_desktop import go_available
    from .test_desk_day import accept

    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    contact = server.post_contact("Please call me back", first_name="Пётр", phone="+7 916 555-44-33")
    panel = accept(page, contact["id"])
    tasks = panel.locator("details.activities-section")
    tasks.locator("summary").click()
    expect(tasks.locator("ul.activities li")).to_have_text(["No activities."])
    form = tasks.locator("form.activity-form")
    form.locator("select[name=kind]").select_option("call")
    form.locator("input[name=title]").fill("Call back about the order")
    form.locator("button[type=submit]").click()
    expect(tasks.locator("ul.activities li strong")).to_have_text(["Call back about the order"])
    with server.api() as client:
        customer_id = client.get(f"/interactions/{contact['id']}").json()["customer_id"]
    r = httpx.get(
        f"{server.url}/api/v1/activities",
        params={"customer_id": customer_id},
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )
    assert [(a["kind"], a["title"]) for a in r.json()["items"]] == [("call", "Call back about the order")]
