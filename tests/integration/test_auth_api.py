"""Sign-in, sessions with CSRF, tokens, throttling, permissions and the audit log."""

from __future__ import annotations

import re

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import TEST_PASSWORD, make_user

API = "/api/v1"


async def login(client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"username": username, "password": password})


async def test_browser_session_cookie_is_httponly_samesite_and_writes_need_csrf(client, container) -> None:
    await make_user(container, "sveta", Role.SUPERVISOR)
    r = await login(client, "sveta")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "fo_session=" in cookie
    assert TEST_PASSWORD not in cookie
    csrf = r.json()["csrf_token"]
    assert (await client.get(f"{API}/me")).json()["username"] == "sveta"
    body = {"first_name": "Olga"}
    r = await client.post(f"{API}/customers", json=body)
    assert r.status_code == 403 and r.json()["error_id"] == "csrf-failed"
    r = await client.post(f"{API}/customers", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = await client.post(f"{API}/customers", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    r = await client.post(f"{API}/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert (await client.get(f"{API}/me")).status_code == 401


async def test_a_tampered_cookie_is_refused(client, container) -> None:
    await make_user(container, "a1", Role.AGENT)
    await login(client, "a1")
    client.cookies.set("fo_session", client.cookies["fo_session"][:-3] + "abc")
    r = await client.get(f"{API}/me")
    assert r.status_code == 401 and r.json()["error_id"] == "session-expired"


async def test_wrong_password_and_unknown_user_look_the_same(client, container) -> None:
    await make_user(container, "real", Role.AGENT)
    wrong = await login(client, "real", "not the password")
    ghost = await login(client, "ghost", "not the password")
    assert wrong.status_code == ghost.status_code == 401
    assert (
        wrong.json()
        == ghost.json()
        == {
            "error_id": "bad-credentials",
            "message": "Wrong username or password",
            "details": {},
        }
    )


@pytest.mark.parametrize("settings_overrides", [{"login_max_failures": 3}])
async def test_repeated_failures_are_throttled_even_with_the_right_password(client, container) -> None:
    await make_user(container, "victim", Role.AGENT)
    for _ in range(3):
        assert (await login(client, "victim", "guess")).status_code == 401
    r = await login(client, "victim")
    assert r.status_code == 429
    assert r.json()["error_id"] == "too-many-attempts"
    assert int(r.headers["retry-after"]) > 0


async def test_api_token_is_shown_once_stored_hashed_and_revocable(client, container, admin_headers) -> None:
    user_id = await make_user(container, "integration", Role.AGENT)
    r = await client.post(
        f"{API}/users/{user_id}/tokens", json={"name": "helpdesk sync"}, headers=admin_headers
    )
    assert r.status_code == 201
    created = r.json()
    secret = created["token"]
    assert secret.startswith("fo_") and secret.startswith(created["prefix"])
    listed = (await client.get(f"{API}/me/tokens", headers={"Authorization": f"Bearer {secret}"})).json()
    assert "token" not in listed[0]
    async with container.engine.connect() as conn:
        from sqlalchemy import text

        stored = (
            await conn.execute(text("SELECT token_hash FROM api_tokens WHERE id = :i"), {"i": created["id"]})
        ).scalar()
    assert stored != secret and len(stored) == 64
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get(f"{API}/customers", headers=headers)).status_code == 200
    assert (await client.delete(f"{API}/tokens/{created['id']}", headers=headers)).status_code == 204
    r = await client.get(f"{API}/customers", headers=headers)
    assert r.status_code == 401 and r.json()["error_id"] == "invalid-token"


async def test_malformed_authorization_header_is_401_with_reason(client) -> None:
    r = await client.get(f"{API}/customers", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and r.json()["error_id"] == "invalid-authorization"
    r = await client.get(f"{API}/customers", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


async def test_admin_creates_users_and_the_action_is_audited(client, admin_headers) -> None:
    r = await client.post(
        f"{API}/users",
        json={"username": "olga", "role": "agent", "password": "x" * 12, "language": "ru"},
        headers=admin_headers,
    )
    assert r.status_code == 201
    assert "password" not in r.json() and "password_hash" not in r.json()
    r = await client.post(
        f"{API}/users",
        json={"username": "olga", "role": "agent", "password": "x" * 12},
        headers=admin_headers,
    )
    assert r.status_code == 409
    r = await client.post(
        f"{API}/users", json={"username": "p", "role": "god", "password": "short"}, headers=admin_headers
    )
    assert r.status_code == 422
    entries = (
        await client.get(f"{API}/audit", params={"action": "user.create"}, headers=admin_headers)
    ).json()
    assert any(e["details"].get("username") == "olga" for e in entries["items"])


async def test_users_change_their_own_password_with_the_current_one(client, container: Container) -> None:
    await make_user(container, "self", Role.AGENT)
    csrf = (await login(client, "self")).json()["csrf_token"]
    h = {"X-CSRF-Token": csrf}
    r = await client.post(
        f"{API}/me/password", json={"current_password": "wrong", "new_password": "n" * 12}, headers=h
    )
    assert r.status_code == 403
    r = await client.post(
        f"{API}/me/password", json={"current_password": TEST_PASSWORD, "new_password": "n" * 12}, headers=h
    )
    assert r.status_code == 204
    # Every browser session of the user ends with the password change.
    assert (await client.get(f"{API}/me")).status_code == 401
    assert (await login(client, "self", "n" * 12)).status_code == 200


async def test_login_form_needs_its_csrf_cookie(client, container) -> None:
    await make_user(container, "formuser", Role.AGENT)
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = await client.post(
        "/login", data={"username": "formuser", "password": TEST_PASSWORD, "csrf_token": "forged"}
    )
    assert r.status_code == 403
    r = await client.post(
        "/login", data={"username": "formuser", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "formuser" in (await client.get("/")).text


async def test_health_ready_and_metrics(client, admin_headers, container) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}
    assert (await client.get("/metrics")).status_code == 401
    r = await client.get("/metrics", headers=admin_headers)
    assert r.status_code == 200 and "frontoffice_http_requests_total" in r.text


async def test_openapi_document_lists_the_api(client) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    assert "/api/v1/customers" in spec["paths"] and "/api/v1/customers/import" in spec["paths"]


async def test_errors_are_translated_to_russian(client, container) -> None:
    await make_user(container, "ru", Role.AGENT, language="ru")
    r = await client.post(
        f"{API}/auth/login",
        json={"username": "ru", "password": "bad"},
        headers={"Accept-Language": "ru-RU,ru;q=0.9"},
    )
    assert r.json()["message"] == "Неверное имя пользователя или пароль"


async def test_the_language_switch_is_remembered_in_the_profile(client, container) -> None:
    await make_user(container, "polyglot", Role.AGENT)
    assert (await login(client, "polyglot")).status_code == 200
    r = await client.get("/lang/ru", params={"next": "/"})
    assert r.status_code == 303 and "fo_lang=ru" in r.headers["set-cookie"]
    client.cookies.delete("fo_lang")
    assert (await client.get(f"{API}/me")).json()["language"] == "ru"
    assert (await client.get("/lang/xx")).status_code == 404


async def test_logout_with_a_token_and_a_garbage_cookie_is_not_a_500(client, admin_headers) -> None:
    client.cookies.set("fo_session", "not-a-signed-value")
    r = await client.post(f"{API}/auth/logout", headers=admin_headers)
    assert r.status_code == 204
