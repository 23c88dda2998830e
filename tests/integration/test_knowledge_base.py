"""The knowledge base over the REST API: drafts and published versions, full-text search in Russian and
English on SQLite FTS5 and PostgreSQL full-text search, suggestions from a contact, the public page."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code in (200, 201), r.text
    answer: dict[str, Any] = r.json()
    return answer


async def article(
    client: httpx.AsyncClient, headers: dict[str, str], language: str, title: str, body: str, **extra: Any
) -> int:
    created = await post(client, headers, "/kb/articles", language=language, title=title, body=body, **extra)
    await post(client, headers, f"/kb/articles/{created['id']}/publish")
    return int(created["id"])


async def titles(client: httpx.AsyncClient, headers: dict[str, str], q: str, **params: Any) -> list[str]:
    r = await client.get(f"{API}/kb/search", params={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [hit["title"] for hit in r.json()]


async def test_published_articles_are_found_by_words_in_russian_and_english_and_drafts_are_not(
    client: httpx.AsyncClient, admin_headers: dict[str, str], agent_headers: dict[str, str]
) -> None:
    category = await post(client, admin_headers, "/kb/categories", name="Оплата")
    await article(
        client,
        admin_headers,
        "ru",
        "Возврат денег",
        "Деньги возвращаются на карту в течение пяти дней.",
        category_id=category["id"],
    )
    await article(client, admin_headers, "en", "Refunds", "Refunds reach your card within five days.")
    await article(client, admin_headers, "en", "Delivery times", "Parcels arrive in two days.")
    draft = await post(
        client, admin_headers, "/kb/articles", language="en", title="Secret refunds", body="draft"
    )

    assert await titles(client, agent_headers, "возврат") == ["Возврат денег"]
    assert await titles(client, agent_headers, "деньги карту") == ["Возврат денег"]
    assert await titles(client, agent_headers, "refunds card") == ["Refunds"]
    assert await titles(client, agent_headers, "card", language="ru") == []
    assert sorted(await titles(client, agent_headers, "days")) == ["Delivery times", "Refunds"]
    assert await titles(client, agent_headers, 'refund" OR body:*') == []  # query syntax is not injected
    assert await titles(client, agent_headers, "secret") == []

    # A new draft of a published article: readers see the published text until it is published.
    r = await client.patch(
        f"{API}/kb/articles/{draft['id']}", json={"title": "Refund secrets"}, headers=admin_headers
    )
    assert r.status_code == 200
    published = await post(client, admin_headers, f"/kb/articles/{draft['id']}/publish")
    assert published["version"] == 1 and published["published_title"] == "Refund secrets"
    assert await titles(client, agent_headers, "secrets") == ["Refund secrets"]
    r = await client.post(f"{API}/kb/articles", json={"language": "en", "title": "x"}, headers=agent_headers)
    assert r.status_code == 403


async def test_a_contact_gets_suggestions_from_its_subject_and_the_public_page_shows_only_published_text(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    project = await post(client, admin_headers, "/projects", code="acme", name="Acme")
    await article(
        client,
        admin_headers,
        "en",
        "Broken kettle",
        "Unplug the kettle and call us.",
        project_id=project["id"],
    )
    await article(client, admin_headers, "en", "Warranty", "Two years on every kettle.")
    await post(client, admin_headers, "/kb/articles", language="en", title="Unpublished kettle tips", body="")
    queue = await post(client, admin_headers, "/queues", name="web", project_id=project["id"])
    await post(
        client,
        admin_headers,
        "/entry-points",
        name="site",
        channel="webform",
        address="site-acme",
        default_queue_id=queue["id"],
    )
    contact = (
        await post(
            client,
            admin_headers,
            "/interactions",
            entry_point="site-acme",
            subject="My kettle is broken",
            customer={"phone": "+7 916 555-00-09"},
        )
    )["interaction"]
    r = await client.get(
        f"{API}/kb/suggestions", params={"interaction_id": contact["id"]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    assert r.json()[0]["title"] == "Broken kettle"
    assert {hit["title"] for hit in r.json()} == {"Broken kettle", "Warranty"}

    r = await client.get(f"{API}/public/kb/acme", params={"q": "kettle"})  # no sign-in
    assert r.status_code == 200, r.text
    assert {hit["title"] for hit in r.json()} == {"Broken kettle", "Warranty"}
    hit = r.json()[0]
    r = await client.get(f"{API}/public/kb/acme/articles/{hit['id']}")
    assert r.status_code == 200 and r.json()["draft_body"] == ""
    r = await client.get(f"{API}/public/kb/nobody")
    assert r.status_code == 404
