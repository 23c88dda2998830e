"""The ``Idempotency-Key`` of ``POST /interactions`` is its user's own (issue 19, hole 7): another
user's request with the same key is another contact, and an empty key is refused."""

from __future__ import annotations

from typing import Any

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import token_headers
from .test_acd_api import API, Desk

FORM: dict[str, Any] = {
    "entry_point": "site",
    "subject": "Invoice 42",
    "body": "Hello",
    "customer": {"first_name": "Ivan", "phone": "+7 916 000-00-01"},
}


async def _post(client: httpx.AsyncClient, headers: dict[str, str], key: str) -> httpx.Response:
    return await client.post(f"{API}/interactions", json=FORM, headers=headers | {"Idempotency-Key": key})


async def test_two_users_with_the_same_key_get_two_contacts_and_neither_sees_the_others(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    await desk.entry("site", await desk.queue("support"))
    shop = await token_headers(container, "shop", Role.AGENT)
    billing = await token_headers(container, "billing", Role.AGENT)

    first = await _post(client, shop, "form-1")
    assert first.status_code == 201 and first.json()["created"] is True, first.text
    other = await _post(client, billing, "form-1")
    assert other.status_code == 201, other.text
    assert other.json()["created"] is True
    assert other.json()["interaction"]["id"] != first.json()["interaction"]["id"]

    # Each user's repeat answers that user's own contact.
    again = await _post(client, shop, "form-1")
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["interaction"]["id"] == first.json()["interaction"]["id"]
    again = await _post(client, billing, "form-1")
    assert again.json()["interaction"]["id"] == other.json()["interaction"]["id"]


async def test_an_empty_or_over_long_key_is_refused_and_creates_nothing(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    await desk.entry("site", await desk.queue("support"))
    for key in ("", "k" * 201):
        r = await _post(client, admin_headers, key)
        assert r.status_code == 400, (len(key), r.text)
        assert r.json()["error_id"] == "invalid-idempotency-key"
        assert r.json()["details"] == {"max_length": 200}
    r = await client.get(f"{API}/interactions", headers=admin_headers)
    assert r.json()["items"] == []
    assert (await _post(client, admin_headers, "k" * 200)).status_code == 201
