"""The colleagues a note's @-picker offers (``GET /users/mentionable``): matched by username or display
name in any script and case, at most a handful, only what the picker shows (never an address or a
password hash), only users the caller's client team may see, and of a ticket only those who may see
it; a name it inserts is a mention the note records. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor

from ..conftest import make_user, token_headers

API = "/api/v1"


async def _picker(
    client: httpx.AsyncClient, headers: dict[str, str], q: str = "", **params: Any
) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/users/mentionable", params={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


async def _names(client: httpx.AsyncClient, headers: dict[str, str], q: str = "", **params: Any) -> list[str]:
    return [u["username"] for u in await _picker(client, headers, q, **params)]


async def _ticket(client: httpx.AsyncClient, admin: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/customers", json={"first_name": "Anna"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"{API}/tickets", json={"customer_id": r.json()["id"], "subject": "Kettle", **extra}, headers=admin
    )
    assert r.status_code == 201, r.text
    ticket: dict[str, Any] = r.json()
    return ticket


async def _headers(container: Container, user_id: int) -> dict[str, str]:
    token = await container.auth.create_token(Actor.system(), "tests", user_id=user_id)
    return {"Authorization": f"Bearer {token.token}"}


async def test_the_picker_matches_usernames_and_display_names_in_any_case_and_script(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    agent = await token_headers(container, "agent", Role.AGENT)
    await make_user(container, "andrei", Role.AGENT, display_name="Andrei Petrov", email="andrei@example.com")
    await make_user(container, "ANTON", Role.SUPERVISOR, display_name="Anton Big")
    await make_user(container, "k.ivanova", Role.AGENT, display_name="Katya Ivanova")
    await make_user(container, "boris", Role.AGENT, display_name="Анна Борисова")
    gone = await make_user(container, "anatoly", Role.AGENT, display_name="Anatoly Gone")
    r = await client.patch(f"{API}/users/{gone}", json={"is_active": False}, headers=admin_headers)
    assert r.status_code == 200, r.text

    # A word of the username or display name starts with the letters; a username's start comes first.
    # Inactive users are not offered, nor is the caller (mentioning oneself tells nobody anything).
    assert await _names(client, agent, "an") == ["andrei", "ANTON"]
    assert await _names(client, agent, "AN") == ["andrei", "ANTON"]
    assert await _names(client, agent, "@iva") == ["k.ivanova"]
    assert await _names(client, agent, "petr") == ["andrei"]
    assert await _names(client, agent, "ag") == []
    # Display names in Cyrillic, typed in either case.
    assert await _names(client, agent, "ан") == ["boris"]
    assert await _names(client, agent, "БОР") == ["boris"]

    # Only what the picker shows: no address, role, password hash.
    found = await _picker(client, agent, "andr")
    assert found == [{"id": found[0]["id"], "username": "andrei", "display_name": "Andrei Petrov"}]


async def test_the_picker_answers_a_handful_of_users_at_most(
    client: httpx.AsyncClient, container: Container
) -> None:
    agent = await token_headers(container, "agent", Role.AGENT)
    for n in range(12):
        await make_user(container, f"anya{n:02}", Role.AGENT, display_name=f"Anya {n:02}")
    assert await _names(client, agent, "anya") == [f"anya{n:02}" for n in range(8)]
    assert await _names(client, agent, "anya", limit=3) == ["anya00", "anya01", "anya02"]
    assert len(await _picker(client, agent, "anya", limit=20)) == 12
    r = await client.get(f"{API}/users/mentionable", params={"q": "anya", "limit": 21}, headers=agent)
    assert r.status_code == 422, r.text


async def test_the_picker_offers_only_colleagues_of_the_callers_projects_and_of_the_ticket(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    projects: dict[str, int] = {}
    for code in ("alpha", "beta"):
        r = await client.post(f"{API}/projects", json={"code": code, "name": code}, headers=admin_headers)
        assert r.status_code == 201, r.text
        projects[code] = r.json()["id"]

    async def user(name: str, role: Role, *codes: str) -> int:
        user_id = await make_user(container, name, role)
        if codes:
            r = await client.put(
                f"{API}/users/{user_id}/projects",
                json={"project_ids": [projects[c] for c in codes]},
                headers=admin_headers,
            )
            assert r.status_code == 200, r.text
        return user_id

    alpha_agent = await _headers(container, await user("u.alpha", Role.AGENT, "alpha"))
    await user("u.alpha.beta", Role.AGENT, "alpha", "beta")
    beta_agent = await _headers(container, await user("u.beta", Role.AGENT, "beta"))
    everywhere = await _headers(container, await user("u.head", Role.SUPERVISOR))

    # A client team sees its own colleagues and the center's unrestricted staff, not another client's team.
    assert await _names(client, alpha_agent, "u") == ["u.alpha.beta", "u.head"]
    assert await _names(client, beta_agent, "u") == ["u.alpha.beta", "u.head"]
    assert await _names(client, everywhere, "u") == ["u.alpha", "u.alpha.beta", "u.beta"]
    assert "root" in await _names(client, alpha_agent, "ro")

    # Of a ticket: only those who may see it (its project's team and the unrestricted).
    beta_ticket = await _ticket(client, admin_headers, project_id=projects["beta"])
    assert await _names(client, everywhere, "u", ticket_id=beta_ticket["id"]) == ["u.alpha.beta", "u.beta"]
    assert await _names(client, beta_agent, "u", ticket_id=beta_ticket["id"]) == ["u.alpha.beta", "u.head"]
    # A ticket the caller may not see is not found, as everywhere else.
    r = await client.get(
        f"{API}/users/mentionable", params={"q": "u", "ticket_id": beta_ticket["id"]}, headers=alpha_agent
    )
    assert (r.status_code, r.json()["error_id"]) == (404, "no-such-ticket")


async def test_a_name_the_picker_inserts_is_recorded_as_a_mention_whatever_its_case(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    anton = await make_user(container, "ANTON", Role.AGENT, display_name="Anton Big")
    ticket = await _ticket(client, admin_headers)
    [offered] = await _picker(client, admin_headers, "anto", ticket_id=ticket["id"])
    r = await client.post(
        f"{API}/tickets/{ticket['id']}/notes",
        json={"body": f"@{offered['username']} please look"},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["mentions"] == [anton]
    r = await client.get(f"{API}/me/mentions", headers=await _headers(container, anton))
    assert [m["excerpt"] for m in r.json()["items"]] == ["@ANTON please look"]
