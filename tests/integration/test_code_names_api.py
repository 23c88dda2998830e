"""Dispositions and not-ready reasons have a name per language; the API answers in the request's."""

from __future__ import annotations

import httpx
import pytest

API = "/api/v1"


@pytest.mark.parametrize("kind", ["dispositions", "not-ready-reasons"])
async def test_a_code_is_named_in_the_request_language_and_falls_back_to_the_code(
    client: httpx.AsyncClient, admin_headers: dict[str, str], kind: str
) -> None:
    named = {"code": "lunch", "names": {"en": "Lunch", "ru": "Обед"}}
    r = await client.put(f"{API}/codes/{kind}", json=named, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["names"] == {"en": "Lunch", "ru": "Обед"}
    unnamed = {"code": "training", "names": {"en": "Training"}}
    assert (await client.put(f"{API}/codes/{kind}", json=unnamed, headers=admin_headers)).status_code == 200

    in_ru = await client.get(f"{API}/codes/{kind}", headers=admin_headers | {"Accept-Language": "ru"})
    assert [(c["code"], c["name"]) for c in in_ru.json()] == [("lunch", "Обед"), ("training", "training")]
    in_en = await client.get(f"{API}/codes/{kind}", headers=admin_headers | {"Accept-Language": "en"})
    assert [(c["code"], c["name"]) for c in in_en.json()] == [("lunch", "Lunch"), ("training", "Training")]


async def test_a_code_name_in_an_unknown_language_is_refused_naming_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"code": "lunch", "names": {"de": "Mittag"}}
    r = await client.put(f"{API}/codes/dispositions", json=body, headers=admin_headers)
    assert r.status_code == 422
    assert r.json()["details"]["errors"][0]["loc"][:3] == ["body", "names", "de"]


async def test_a_code_saved_with_the_old_single_name_keeps_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = {"code": "resolved", "name": "Resolved"}
    r = await client.put(f"{API}/codes/dispositions", json=body, headers=admin_headers)
    assert (r.status_code, r.json()["name"]) == (200, "Resolved")
    listed = await client.get(f"{API}/codes/dispositions", headers=admin_headers | {"Accept-Language": "ru"})
    assert listed.json()[0]["name"] == "Resolved"
