"""Canned answers and macros over the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import token_headers

API = "/api/v1"


async def post(client: httpx.AsyncClient, headers: dict[str, str], path: str, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}{path}", json=body, headers=headers)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_the_slash_picker_finds_shared_and_own_answers_by_shortcut_then_title(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
    container: Container,
) -> None:
    await post(
        client,
        admin_headers,
        "/canned-answers",
        shortcut="refund",
        title="Refund accepted",
        body="x",
        shared=True,
    )
    await post(
        client,
        admin_headers,
        "/canned-answers",
        shortcut="thanks",
        title="Thanks for the refund request",
        body="x",
        shared=True,
    )
    await post(
        client,
        admin_headers,
        "/canned-answers",
        shortcut="возврат",
        title="Возврат",
        body="x",
        language="ru",
        shared=True,
    )
    await post(client, agent_headers, "/canned-answers", shortcut="ref-mine", title="Mine", body="x")
    other = await token_headers(container, "other", Role.AGENT)
    await post(client, other, "/canned-answers", shortcut="ref-other", title="Other's", body="x")
    r = await client.post(
        f"{API}/canned-answers",
        json={"shortcut": "s", "title": "t", "body": "b", "shared": True},
        headers=agent_headers,
    )
    assert r.status_code == 403

    async def shortcuts(q: str, **params: Any) -> list[str]:
        r = await client.get(f"{API}/canned-answers", params={"q": q, **params}, headers=agent_headers)
        assert r.status_code == 200, r.text
        return [a["shortcut"] for a in r.json()]

    assert await shortcuts("REF") == ["ref-mine", "refund", "thanks"]
    assert await shortcuts("ref", language="en") == ["ref-mine", "refund", "thanks"]
    assert await shortcuts("воз") == ["возврат"]
    assert await shortcuts("nothing") == []


async def test_a_macro_sets_fields_and_tags_and_renders_its_answer_in_one_transaction(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container: Container
) -> None:
    customer = await post(client, admin_headers, "/customers", first_name="Anna", last_name="Petrova")
    ticket = await post(
        client, admin_headers, "/tickets", customer_id=customer["id"], subject="Refund", tags=["new"]
    )
    answer = await post(
        client,
        admin_headers,
        "/canned-answers",
        shortcut="refund",
        title="Refund",
        body="Hello {{customer.name}}, your request #{{ticket.number}} is accepted. {{agent.name}}",
    )
    r = await client.get(f"{API}/tickets/{ticket['id']}/canned-answers/{answer['id']}", headers=admin_headers)
    assert r.status_code == 200, r.text
    me = (await client.get(f"{API}/me", headers=admin_headers)).json()
    agent_name = me["display_name"] or me["username"]
    assert r.json()["text"] == f"Hello Anna Petrova, your request #{ticket['id']} is accepted. {agent_name}"
    assert r.json()["missing"] == []

    macro = await post(
        client,
        admin_headers,
        "/macros",
        name="Refund: pending",
        actions={
            "status": "pending",
            "priority": "high",
            "add_tags": ["refund"],
            "remove_tags": ["new"],
            "canned_answer_id": answer["id"],
        },
    )
    r = await client.post(f"{API}/tickets/{ticket['id']}/macros/{macro['id']}", headers=admin_headers)
    assert r.status_code == 200, r.text
    applied = r.json()
    assert (applied["ticket"]["status"], applied["ticket"]["priority"], applied["ticket"]["tags"]) == (
        "pending",
        "high",
        ["refund"],
    )
    assert applied["reply"]["text"].startswith("Hello Anna Petrova")

    # On a closed ticket the macro changes nothing at all.
    closed = await post(
        client, admin_headers, "/tickets", customer_id=customer["id"], subject="Old", tags=["new"]
    )
    r = await client.patch(f"{API}/tickets/{closed['id']}", json={"status": "closed"}, headers=admin_headers)
    r = await client.post(f"{API}/tickets/{closed['id']}/macros/{macro['id']}", headers=admin_headers)
    assert r.status_code == 409
    r = await client.get(f"{API}/tickets/{closed['id']}", headers=admin_headers)
    assert r.json()["tags"] == ["new"]
