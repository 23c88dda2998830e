"""The last pages of issue 16 (the deal list, a deal, the forecast, a company, the knowledge base's
categories): rendered in English and Russian, refused to whoever may not open them, 404 for a deal or
company the user may not see, before any script runs."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import TEST_PASSWORD, make_user

API = "/api/v1"


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    r = await client.post(f"{API}/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_each_sales_page_renders_in_english_and_russian(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    company = await post(client, admin_headers, "/companies", name="Ромашка")
    customer = await post(client, admin_headers, "/customers", first_name="Анна", company_id=company["id"])
    deal = await post(
        client, admin_headers, "/deals", customer_id=customer["id"], title="Ten kettles", currency="EUR"
    )
    await make_user(container, "sv", Role.SUPERVISOR)
    await sign_in(client, "sv")
    expected = {
        "en": {
            "/deals/list": ("Deal list", "deal_list.js", "Open deals only"),
            "/deals/forecast": ("Sales forecast", "forecast.js", "Weighted"),
            f"/deals/{deal['id']}": ("Ten kettles", "deal.js", "New activity"),
            f"/companies/{company['id']}": ("Ромашка", "company.js", "People"),
            "/kb/categories": ("Knowledge base categories", "kb_categories.js", "New category"),
        },
        "ru": {
            "/deals/list": ("Список сделок", "deal_list.js", "Только открытые сделки"),
            "/deals/forecast": ("Прогноз продаж", "forecast.js", "Взвешенная"),
            f"/deals/{deal['id']}": ("Ten kettles", "deal.js", "Новое дело"),
            f"/companies/{company['id']}": ("Ромашка", "company.js", "Люди"),
            "/kb/categories": ("Категории базы знаний", "kb_categories.js", "Новая категория"),
        },
    }
    for lang, pages in expected.items():
        client.cookies.set("fo_lang", lang)
        for path, texts in pages.items():
            r = await client.get(path)
            assert r.status_code == 200, (lang, path)
            for text in texts:
                assert text in r.text, (lang, path, text)
    # The board links to the list and the forecast; the knowledge base to its categories.
    board = await client.get("/deals")
    assert 'href="/deals/list"' in board.text and 'href="/deals/forecast"' in board.text
    assert 'href="/kb/categories"' in (await client.get("/kb")).text


async def test_sales_pages_refuse_who_may_not_open_them_and_unknown_ones_are_not_found(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    for path in ("/deals/list", "/deals/forecast", "/deals/1", "/companies/1", "/kb/categories"):
        r = await client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    await make_user(container, "ag", Role.AGENT)
    await sign_in(client, "ag")
    r = await client.get("/kb/categories")  # writing the knowledge base is the supervisors'
    assert r.status_code == 303 and r.headers["location"] == "/desk"
    assert 'href="/kb/categories"' not in (await client.get("/kb")).text
    client.cookies.set("fo_lang", "ru")
    r = await client.get("/deals/999999")
    assert r.status_code == 404 and "Такой сделки нет" in r.text and "deal.js" not in r.text
    r = await client.get("/companies/999999")
    assert r.status_code == 404 and "Компания не найдена" in r.text and "company.js" not in r.text


async def test_a_deal_and_a_company_of_another_project_are_not_found_on_their_pages(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    ids = []
    for code in ("alpha", "beta"):
        ids.append((await post(client, admin_headers, "/projects", code=code, name=code.title()))["id"])
    company = await post(client, admin_headers, "/companies", name="Beta Ltd")
    customer = await post(
        client,
        admin_headers,
        "/customers",
        first_name="Boris",
        company_id=company["id"],
        project_id=ids[1],
    )
    deal = await post(
        client,
        admin_headers,
        "/deals",
        customer_id=customer["id"],
        title="Secret deal",
        currency="EUR",
        project_id=ids[1],
    )
    user_id = await make_user(container, "lead", Role.AGENT)
    r = await client.put(
        f"{API}/users/{user_id}/projects", json={"project_ids": [ids[0]]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    await sign_in(client, "lead")
    r = await client.get(f"/deals/{deal['id']}")
    assert r.status_code == 404 and "Secret deal" not in r.text
    r = await client.get(f"/companies/{company['id']}")
    assert r.status_code == 404 and "Beta Ltd" not in r.text


async def test_the_public_help_page_lists_searches_and_shows_published_articles_only(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    alpha = await post(client, admin_headers, "/projects", code="alpha", name="Alpha")
    beta = await post(client, admin_headers, "/projects", code="beta", name="Beta")

    async def article(title: str, body: str, project_id: int | None, publish: bool = True) -> int:
        a = await post(
            client,
            admin_headers,
            "/kb/articles",
            language="ru",
            title=title,
            body=body,
            project_id=project_id,
        )
        if publish:
            r = await client.post(f"{API}/kb/articles/{a['id']}/publish", headers=admin_headers)
            assert r.status_code == 200, r.text
        return int(a["id"])

    refund = await article("Возврат денег", "Деньги возвращаются за пять дней.", alpha["id"])
    common = await article("Часы работы", "Мы работаем с девяти до шести.", None)
    secret = await article("Черновик", "Ещё не готово.", alpha["id"], publish=False)
    theirs = await article("Скидки Beta", "Только для Beta.", beta["id"])
    client.cookies.clear()  # no sign-in

    r = await client.get("/help/alpha", params={"lang": "ru"})
    assert r.status_code == 200, r.text
    assert "Возврат денег" in r.text and "Часы работы" in r.text
    assert "Черновик" not in r.text and "Скидки Beta" not in r.text and "Помощь" in r.text
    r = await client.get("/help/alpha", params={"q": "деньги возвращаются", "lang": "en"})
    assert f'data-article-id="{refund}"' in r.text and f'data-article-id="{common}"' not in r.text

    r = await client.get(f"/help/alpha/articles/{refund}")
    assert r.status_code == 200 and "Деньги возвращаются за пять дней." in r.text
    for missing in (secret, theirs):
        r = await client.get(f"/help/alpha/articles/{missing}", params={"lang": "ru"})
        assert r.status_code == 404 and "Такой статьи нет" in r.text
    r = await client.get("/help/nowhere")
    assert r.status_code == 404 and "There is no such help page." in r.text


async def test_the_help_desk_settings_page_is_the_supervisors_in_english_and_russian(
    client: httpx.AsyncClient, container: Container
) -> None:
    await make_user(container, "sv", Role.SUPERVISOR)
    await make_user(container, "ag", Role.AGENT)
    await sign_in(client, "ag")
    r = await client.get("/helpdesk-settings")
    assert r.status_code == 303 and r.headers["location"] == "/desk"
    assert 'href="/helpdesk-settings"' not in (await client.get("/tickets")).text
    await sign_in(client, "sv")
    for lang, texts in {
        "en": ("Help desk settings", "SLA policies", "Only administrators change these."),
        "ru": ("Настройки заявок", "Политики SLA", "Это меняют только администраторы."),
    }.items():
        client.cookies.set("fo_lang", lang)
        r = await client.get("/helpdesk-settings")
        assert r.status_code == 200 and "helpdesk_settings.js" in r.text
        for text in texts:
            assert text in r.text, (lang, text)
    assert 'href="/helpdesk-settings"' in (await client.get("/tickets")).text
