"""The browser pages (desk, wallboard, reports, admin) and the small API the desktop and wallboard add."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.web.ui import JS_MESSAGES

from ..conftest import TEST_PASSWORD, make_user, token_headers

API = "/api/v1"
STATIC_JS = Path(__file__).parents[2] / "frontoffice" / "web" / "static" / "js"


async def sign_in(client: httpx.AsyncClient, username: str) -> str:
    r = await client.post(f"{API}/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


async def test_pages_need_a_session_and_each_role_lands_on_its_page(client, container) -> None:
    for path in ("/desk", "/wallboard", "/reports", "/admin"):
        r = await client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    await make_user(container, "sv", Role.SUPERVISOR)
    csrf = await sign_in(client, "sv")
    home = await client.get("/")
    assert "sv" in home.text and 'url=/wallboard"' in home.text
    page = await client.get("/wallboard")
    assert page.status_code == 200
    # The page carries the session's CSRF token for the script's writes, and the script itself.
    assert f'<meta name="csrf-token" content="{csrf}">' in page.text
    assert "/static/js/wallboard.js" in page.text
    assert (await client.get("/reports")).status_code == 200
    admin = await client.get("/admin")
    assert admin.status_code == 303 and admin.headers["location"] == "/wallboard"


async def test_pages_speak_the_chosen_language(client, container) -> None:
    await make_user(container, "olga", Role.ADMIN, language="ru")
    await sign_in(client, "olga")
    assert "Администрирование" in (await client.get("/admin")).text
    client.cookies.set("fo_lang", "en")
    page = (await client.get("/admin")).text
    assert "Administration" in page and '"Accept": "Accept"' in page


async def test_static_scripts_are_served_and_every_script_string_is_in_the_catalog(client) -> None:
    r = await client.get("/static/js/desk.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    used: set[str] = set()
    for script in STATIC_JS.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        used |= {m.replace('\\"', '"') for m in re.findall(r'\bt\(\s*"((?:[^"\\]|\\.)*)"', text)}
    assert sorted(used - set(JS_MESSAGES)) == []


async def _site(client: httpx.AsyncClient, admin: dict[str, str]) -> int:
    r = await client.post(
        f"{API}/queues", json={"name": "Help", "settings": {"disposition_required": True}}, headers=admin
    )
    queue_id = int(r.json()["id"])
    r = await client.post(
        f"{API}/entry-points",
        json={"name": "site", "channel": "webform", "address": "site", "default_queue_id": queue_id},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return queue_id


async def test_waiting_contacts_of_a_queue_best_first_for_supervisors_only(
    client, container: Container, admin_headers
) -> None:
    queue_id = await _site(client, admin_headers)
    ids = []
    for n, priority in enumerate((0, 5)):
        r = await client.post(
            f"{API}/interactions",
            json={
                "entry_point": "site",
                "subject": f"Q{n}",
                "priority": priority,
                "customer": {"first_name": "Ann", "last_name": f"Lee{n}", "email": f"ann{n}@example.com"},
            },
            headers=admin_headers,
        )
        ids.append(r.json()["interaction"]["id"])
    r = await client.get(f"{API}/queues/{queue_id}/waiting", headers=admin_headers)
    assert r.status_code == 200
    waiting = r.json()
    assert [w["interaction_id"] for w in waiting] == [ids[1], ids[0]]  # priority 5 first
    assert waiting[0]["position"] == 1 and waiting[0]["subject"] == "Q1"
    assert waiting[0]["customer_name"] == "Ann Lee1"
    assert (await client.get(f"{API}/queues/999/waiting", headers=admin_headers)).status_code == 404
    agent = await token_headers(container, "agent", Role.AGENT)
    assert (await client.get(f"{API}/queues/{queue_id}/waiting", headers=agent)).status_code == 403


async def test_agent_links_an_unknown_sender_sees_queues_and_contacts_of_the_day(
    client, container: Container, admin_headers
) -> None:
    queue_id = await _site(client, admin_headers)
    agent = await token_headers(container, "agent", Role.AGENT)
    me = (await client.get(f"{API}/me", headers=agent)).json()
    r = await client.put(
        f"{API}/agents/{me['id']}", json={"queues": {str(queue_id): 1}}, headers=admin_headers
    )
    assert r.status_code == 200
    queues = (await client.get(f"{API}/agent/queues", headers=agent)).json()
    assert queues == [
        {
            "queue_id": queue_id,
            "name": "Help",
            "tier": 1,
            "wrap_up_s": 0.0,
            "disposition_required": True,
            "signed_in": True,
        }
    ]
    assert (await client.post(f"{API}/agent/login", json={}, headers=agent)).status_code == 204
    r = await client.post(
        f"{API}/interactions", json={"entry_point": "site", "subject": "Anonymous"}, headers=admin_headers
    )
    contact = r.json()["interaction"]
    assert contact["customer_id"] is None
    assert (await client.post(f"{API}/agent/offers/{contact['id']}/accept", headers=agent)).status_code == 204

    customer = (await client.post(f"{API}/customers", json={"first_name": "Pavel"}, headers=agent)).json()
    r = await client.post(
        f"{API}/interactions/{contact['id']}/customer", json={"customer_id": customer["id"]}, headers=agent
    )
    assert r.status_code == 200 and r.json()["customer_id"] == customer["id"]
    timeline = (await client.get(f"{API}/customers/{customer['id']}/timeline", headers=agent)).json()
    assert [i["id"] for i in timeline["items"]] == [contact["id"]]
    r = await client.post(
        f"{API}/interactions/{contact['id']}/customer", json={"customer_id": 9999}, headers=agent
    )
    assert r.status_code == 404

    today = await client.get(
        f"{API}/agent/contacts", params={"since": "2000-01-01T00:00:00+00:00"}, headers=agent
    )
    assert [i["id"] for i in today.json()] == [contact["id"]]
    future = await client.get(
        f"{API}/agent/contacts", params={"since": "2999-01-01T00:00:00+03:00"}, headers=agent
    )
    assert future.json() == []
    naive = await client.get(f"{API}/agent/contacts", params={"since": "2026-01-01T00:00:00"}, headers=agent)
    assert naive.status_code == 400
