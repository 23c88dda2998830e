"""Blank records are refused with the field named, instead of being saved or ignored silently."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from frontoffice.bootstrap import Container

from .test_acd_api import API, Desk


def refused_field(r: httpx.Response) -> tuple[int, list[list[str]]]:
    body = r.json()
    return r.status_code, [e["loc"] for e in body.get("details", {}).get("errors", [])]


@pytest.fixture
async def desk(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> Desk:
    return Desk(client, container, admin_headers)


async def test_a_contact_with_no_subject_no_body_and_no_customer_is_refused_naming_the_subject(
    desk: Desk,
) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    r = await desk.client.post(
        f"{API}/interactions",
        json={"entry_point": "site", "subject": "  ", "customer": {}},
        headers=desk.admin | {"Accept-Language": "ru"},
    )
    assert refused_field(r) == (422, [["body", "subject"]])
    assert r.json()["details"]["errors"][0]["type"] == "blank"
    assert "тем" in r.json()["details"]["errors"][0]["message"]  # in the request's language
    listed = await desk.client.get(f"{API}/interactions", headers=desk.admin)
    assert listed.json()["items"] == []


async def test_a_contact_with_a_customer_but_no_subject_is_still_taken(desk: Desk) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    created = await desk.contact(subject="", body="")
    assert created["created"] is True


@pytest.mark.parametrize(
    "card",
    [{}, {"first_name": " ", "last_name": "", "middle_name": "\t"}, {"tags": ["vip"], "vip": True}],
)
async def test_a_customer_with_every_field_empty_is_refused_naming_the_name(
    client: httpx.AsyncClient, admin_headers: dict[str, str], card: dict[str, Any]
) -> None:
    r = await client.post(f"{API}/customers", json=card, headers=admin_headers)
    assert refused_field(r) == (422, [["body", "first_name"]])
    assert r.json()["details"]["errors"][0]["type"] == "blank"
    assert (await client.get(f"{API}/customers", headers=admin_headers)).json()["items"] == []


async def test_a_customer_with_only_a_phone_or_a_company_is_taken(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    phone_only = {"identities": [{"kind": "phone", "value": "+7 916 000-00-02"}]}
    assert (await client.post(f"{API}/customers", json=phone_only, headers=admin_headers)).status_code == 201
    company_only = {"company_name": "Acme"}
    assert (
        await client.post(f"{API}/customers", json=company_only, headers=admin_headers)
    ).status_code == 201


async def test_a_whitespace_only_note_is_refused_naming_the_body(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    cid = (await client.post(f"{API}/customers", json={"first_name": "Ivan"}, headers=admin_headers)).json()[
        "id"
    ]
    r = await client.post(f"{API}/customers/{cid}/notes", json={"body": " \n\t "}, headers=admin_headers)
    assert refused_field(r) == (422, [["body", "body"]])
    assert r.json()["details"]["errors"][0]["type"] == "blank"
    timeline = (await client.get(f"{API}/customers/{cid}/timeline", headers=admin_headers)).json()
    assert [i for i in timeline["items"] if i["kind"] == "note"] == []


async def test_completing_with_whitespace_only_notes_is_refused_naming_the_notes(desk: Desk) -> None:
    q = await desk.queue("support")
    await desk.entry("site", q)
    await desk.agent("olga", {q: 1})
    await desk.login("olga")
    iid = (await desk.contact())["interaction"]["id"]
    olga = desk.agents["olga"]
    assert (await desk.client.post(f"{API}/agent/offers/{iid}/accept", headers=olga)).status_code == 204
    r = await desk.client.post(f"{API}/agent/contacts/{iid}/complete", json={"notes": "   "}, headers=olga)
    assert refused_field(r) == (422, [["body", "notes"]])
    assert await desk.state(iid) == "connected"
