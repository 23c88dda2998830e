"""An administrator resets another user's password: audited, and that user's browsers are signed out."""

from __future__ import annotations

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import TEST_PASSWORD, make_user

API = "/api/v1"
NEW_PASSWORD = "a brand new secret"


async def test_an_admin_resets_a_users_password_which_signs_them_out_and_is_audited(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    olga = await make_user(container, "olga", Role.AGENT)
    signed_in = await client.post(f"{API}/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert signed_in.status_code == 200
    assert (await client.get(f"{API}/me")).status_code == 200

    r = await client.post(
        f"{API}/users/{olga}/password", json={"new_password": NEW_PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 204, r.text

    assert (await client.get(f"{API}/me")).status_code == 401  # her open session ended
    client.cookies.clear()
    old = await client.post(f"{API}/auth/login", json={"username": "olga", "password": TEST_PASSWORD})
    assert old.status_code == 401
    client.cookies.clear()
    new = await client.post(f"{API}/auth/login", json={"username": "olga", "password": NEW_PASSWORD})
    assert new.status_code == 200
    client.cookies.clear()
    audit = (await client.get(f"{API}/audit", headers=admin_headers)).json()["items"]
    assert any(a["action"] == "user.password_reset" and a["object_id"] == str(olga) for a in audit), audit


async def test_only_an_admin_may_reset_a_password_and_not_their_own_here(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    olga = await make_user(container, "olga", Role.AGENT)
    await make_user(container, "sveta", Role.SUPERVISOR)
    signed_in = await client.post(f"{API}/auth/login", json={"username": "sveta", "password": TEST_PASSWORD})
    csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
    r = await client.post(f"{API}/users/{olga}/password", json={"new_password": NEW_PASSWORD}, headers=csrf)
    assert r.status_code == 403 and r.json()["details"]["permission"] == "users.write"
    client.cookies.clear()

    me = (await client.get(f"{API}/me", headers=admin_headers)).json()["id"]
    r = await client.post(
        f"{API}/users/{me}/password", json={"new_password": NEW_PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 400 and r.json()["error_id"] == "own-password"
    r = await client.post(
        f"{API}/users/{olga}/password", json={"new_password": "short"}, headers=admin_headers
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/users/999999/password", json={"new_password": NEW_PASSWORD}, headers=admin_headers
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-user"
