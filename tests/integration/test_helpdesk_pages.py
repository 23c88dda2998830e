"""The help desk and sales pages (issue 16): work lists, the ticket page, the deals board, the knowledge
base and the canned answers, in English and Russian, refused to whoever may not open them; and what
the ticket page adds to the API (notes with @mentions, replies refused without a channel, watchers, the
timeline, the history of changes, split)."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import TEST_PASSWORD, make_user, token_headers

API = "/api/v1"
PAGES = ("/tickets", "/deals", "/kb", "/canned-answers")


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    r = await client.post(f"{API}/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text


async def ticket(client: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await client.post(
        f"{API}/customers", json={"first_name": "Анна", "last_name": "Волкова"}, headers=headers
    )
    assert r.status_code == 201, r.text
    body = {"customer_id": r.json()["id"], "subject": "Refund for order 7"} | extra
    r = await client.post(f"{API}/tickets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_each_page_renders_in_english_and_russian(client, container: Container, admin_headers) -> None:
    await make_user(container, "sv", Role.SUPERVISOR)
    t = await ticket(client, admin_headers)
    await sign_in(client, "sv")
    expected = {
        "en": {
            "/tickets": ("Tickets", "tickets.js", "Least SLA time left"),
            f"/tickets/{t['id']}": ("Refund for order 7", "ticket.js", "History of changes"),
            "/deals": ("Deals", "deals.js", "Pipeline"),
            "/kb": ("Knowledge base", "kb.js", "New article"),
            "/canned-answers": ("Canned answers", "canned.js", "New macro"),
        },
        "ru": {
            "/tickets": ("Заявки", "tickets.js", "Меньше всего времени по SLA"),
            f"/tickets/{t['id']}": ("Refund for order 7", "ticket.js", "История изменений"),
            "/deals": ("Сделки", "deals.js", "Воронка"),
            "/kb": ("База знаний", "kb.js", "Новая статья"),
            "/canned-answers": ("Шаблоны ответов", "canned.js", "Новый макрос"),
        },
    }
    for lang, pages in expected.items():
        client.cookies.set("fo_lang", lang)
        for path, texts in pages.items():
            r = await client.get(path)
            assert r.status_code == 200, (lang, path)
            for text in texts:
                assert text in r.text, (lang, path, text)
        # The navigation leads to the new pages.
        assert 'href="/tickets"' in r.text and 'href="/deals"' in r.text and 'href="/kb"' in r.text


async def test_pages_refuse_who_may_not_open_them(client, container: Container, admin_headers) -> None:
    for path in (*PAGES, "/tickets/1"):
        r = await client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    await make_user(container, "ag", Role.AGENT)
    await sign_in(client, "ag")
    r = await client.get("/canned-answers")  # shared answers and macros are the supervisors'
    assert r.status_code == 303 and r.headers["location"] == "/desk"
    desk = await client.get("/tickets")
    assert desk.status_code == 200 and 'href="/canned-answers"' not in desk.text
    assert 'id="kb-new"' not in (await client.get("/kb")).text  # writing articles is the supervisors'
    assert (await client.get("/tickets/999999")).status_code == 404


async def test_a_ticket_of_another_project_is_not_found_on_its_page(
    client, container: Container, admin_headers
) -> None:
    ids = []
    for code in ("alpha", "beta"):
        r = await client.post(
            f"{API}/projects", json={"code": code, "name": code.title()}, headers=admin_headers
        )
        ids.append(r.json()["id"])
    theirs = await ticket(client, admin_headers, project_id=ids[1])
    user_id = await make_user(container, "lead", Role.AGENT)
    r = await client.put(
        f"{API}/users/{user_id}/projects", json={"project_ids": [ids[0]]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    await sign_in(client, "lead")
    client.cookies.set("fo_lang", "ru")
    r = await client.get(f"/tickets/{theirs['id']}")
    assert r.status_code == 404 and "Такой заявки нет" in r.text and "Refund" not in r.text
    assert (await client.get(f"{API}/tickets/{theirs['id']}/timeline")).status_code == 404


async def test_notes_mention_replies_need_a_channel_and_the_timeline_and_history_show_them(
    client, container: Container, admin_headers
) -> None:
    agent = await token_headers(container, "agent", Role.AGENT)
    await make_user(container, "olga", Role.SUPERVISOR)
    t = await ticket(client, agent)
    r = await client.post(
        f"{API}/tickets/{t['id']}/notes",
        json={"body": "@olga please check; mail me at a@olga.ru"},
        headers=agent,
    )
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["kind"] == "note" and len(note["mentions"]) == 1 and note["delivery"] == "internal"
    watchers = (await client.get(f"{API}/tickets/{t['id']}/watchers", headers=agent)).json()
    assert [w["username"] for w in watchers] == ["olga"]
    # The customer has no channel to answer on: refused, nothing stored (test_ticket_outbound.py
    # sends replies).
    r = await client.post(f"{API}/tickets/{t['id']}/replies", json={"body": "Hello Анна"}, headers=agent)
    assert r.status_code == 409 and r.json()["error_id"] == "no-reply-channel"
    timeline = (await client.get(f"{API}/tickets/{t['id']}/timeline", headers=agent)).json()
    assert [e["kind"] for e in timeline] == ["note"]
    history = (await client.get(f"{API}/tickets/{t['id']}/history", headers=agent)).json()["items"]
    actions = [h["action"] for h in history]
    assert actions[:1] == ["ticket.note"] and "ticket.reply" not in actions
    assert history[0]["actor_name"] == "agent"
    r = await client.post(f"{API}/tickets/{t['id']}/notes", json={"body": ""}, headers=agent)
    assert r.status_code == 422
    r = await client.post(f"{API}/tickets/{t['id']}/watchers", json={}, headers=agent)
    assert sorted(w["username"] for w in r.json()) == ["agent", "olga"]
    r = await client.delete(f"{API}/tickets/{t['id']}/watchers/{watchers[0]['user_id']}", headers=agent)
    assert r.status_code == 403  # taking another user off is the supervisors'
    await client.patch(f"{API}/tickets/{t['id']}", json={"status": "closed"}, headers=agent)
    r = await client.post(f"{API}/tickets/{t['id']}/replies", json={"body": "late"}, headers=agent)
    assert r.status_code == 409 and r.json()["error_id"] == "ticket-closed"


async def test_split_moves_contacts_to_a_new_ticket_of_the_same_customer(
    client, container: Container, admin_headers
) -> None:
    r = await client.post(f"{API}/queues", json={"name": "Help"}, headers=admin_headers)
    queue_id = r.json()["id"]
    r = await client.post(
        f"{API}/entry-points",
        json={"name": "site", "channel": "webform", "address": "site", "default_queue_id": queue_id},
        headers=admin_headers,
    )
    contacts = []
    for n in range(3):
        r = await client.post(
            f"{API}/interactions",
            json={
                "entry_point": "site",
                "subject": f"Q{n}",
                "body": f"Question {n}",
                "customer": {"email": "nina@example.com"},
            },
            headers=admin_headers,
        )
        contacts.append(r.json()["interaction"])
    customer_id = contacts[0]["customer_id"]
    r = await client.post(
        f"{API}/tickets",
        json={"customer_id": customer_id, "subject": "All", "source_interaction_id": contacts[0]["id"]},
        headers=admin_headers,
    )
    t = r.json()
    for c in contacts[1:]:
        await client.post(
            f"{API}/tickets/{t['id']}/interactions", json={"interaction_id": c["id"]}, headers=admin_headers
        )
    every = [c["id"] for c in contacts]
    r = await client.post(
        f"{API}/tickets/{t['id']}/split",
        json={"interaction_ids": every, "subject": "x"},
        headers=admin_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "split-takes-everything"
    r = await client.post(
        f"{API}/tickets/{t['id']}/split",
        json={"interaction_ids": [every[2]], "subject": "Second"},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["interaction_ids"] == [every[2]] and new["customer_id"] == customer_id
    old = (await client.get(f"{API}/tickets/{t['id']}", headers=admin_headers)).json()
    # The ticket keeps its own work item in the ACD (it waits for an agent) beside the two contacts.
    assert old["work_item_id"] is not None and old["work_item_id"] not in every
    assert [i for i in old["interaction_ids"] if i != old["work_item_id"]] == every[:2]
    history = (await client.get(f"{API}/tickets/{t['id']}/history", headers=admin_headers)).json()["items"]
    assert history[0]["action"] == "ticket.split" and history[0]["details"]["new_ticket_id"] == new["id"]
    timeline = (await client.get(f"{API}/tickets/{new['id']}/timeline", headers=admin_headers)).json()
    assert [e["contact"]["id"] for e in timeline] == [every[2]]
    assert [m["body"] for m in timeline[0]["messages"]] == [
        "Question 2"
    ]  # the message comes with its contact
