"""Scoped API tokens: scopes narrow a token below its owner's role, expiry ends it, a project list
limits it, last use is written at most once a minute, and tokens made before scopes keep their
owner's full rights (migration 0024)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.store.migrate import upgrade
from frontoffice.store.tables import ApiToken
from frontoffice.web.app import create_app

from ..conftest import ShiftedClock, free_port, make_user, serve_in_task
from .test_acd_api import API, Desk
from .test_project_scoping import Center


async def _token(
    client: httpx.AsyncClient, admin: dict[str, str], user_id: int, **body: Any
) -> tuple[dict[str, str], dict[str, Any]]:
    r = await client.post(
        f"{API}/users/{user_id}/tokens", json={"name": "integration", **body}, headers=admin
    )
    assert r.status_code == 201, r.text
    created = r.json()
    return {"Authorization": f"Bearer {created['token']}"}, created


async def test_a_website_token_may_send_contacts_and_do_nothing_else(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    queue = await desk.queue("site")
    await desk.entry("site", queue)
    owner = await make_user(container, "web", Role.ADMIN)  # the owner could do anything
    website, created = await _token(client, admin_headers, owner, scopes=["contacts:create"])
    assert created["scopes"] == ["contacts:create"]

    contact = {"entry_point": "site", "body": "Call me", "customer": {"email": "ann@example.com"}}
    r = await client.post(f"{API}/interactions", json=contact, headers=website)
    assert r.status_code == 201, r.text
    interaction_id = r.json()["interaction"]["id"]

    for method, path, body in [
        ("GET", f"/interactions/{interaction_id}", None),
        ("GET", "/customers", None),
        ("POST", "/customers", {"first_name": "Eve"}),
        ("POST", f"/interactions/{interaction_id}/abandon", None),
        ("GET", "/users", None),
        ("POST", "/me/tokens", {"name": "wider"}),
    ]:
        r = await client.request(method, f"{API}{path}", json=body, headers=website)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error_id"] == "token-scope", (method, path)
    # The refusal says which scopes would allow it.
    r = await client.get(f"{API}/customers", headers=website)
    assert r.json()["details"]["scopes_that_allow"] == ["admin", "crm:read", "crm:write"]


async def test_a_read_only_crm_token_reads_customers_but_cannot_change_them(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    owner = await make_user(container, "billing", Role.SUPERVISOR)
    reader, _ = await _token(client, admin_headers, owner, scopes=["crm:read"])
    assert (await client.get(f"{API}/customers", headers=reader)).status_code == 200
    assert (await client.get(f"{API}/customers/changes", headers=reader)).status_code == 200
    r = await client.post(f"{API}/customers", json={"first_name": "Olga"}, headers=reader)
    assert r.status_code == 403 and r.json()["error_id"] == "token-scope"
    assert (await client.get(f"{API}/tickets/changes", headers=reader)).status_code == 403
    writer, _ = await _token(client, admin_headers, owner, scopes=["crm:read", "crm:write"])
    assert (
        await client.post(f"{API}/customers", json={"first_name": "Olga"}, headers=writer)
    ).status_code == 201


async def test_scopes_never_widen_the_owners_role(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    agent = await make_user(container, "ag", Role.AGENT)
    everything, _ = await _token(client, admin_headers, agent, scopes=["admin"])
    r = await client.get(f"{API}/users", headers=everything)  # an agent may not list users
    assert r.status_code == 403 and r.json()["error_id"] == "forbidden"
    reports, _ = await _token(client, admin_headers, agent, scopes=["reports:read"])
    assert (await client.get(f"{API}/stats/live", headers=reports)).status_code == 403


async def test_a_narrow_token_cannot_make_or_revoke_other_tokens_but_can_revoke_itself(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    owner = await make_user(container, "crm", Role.ADMIN)
    narrow, created = await _token(client, admin_headers, owner, scopes=["crm:read"])
    _, other = await _token(client, admin_headers, owner, scopes=["crm:read"])
    r = await client.post(f"{API}/me/tokens", json={"name": "mine", "scopes": ["admin"]}, headers=narrow)
    assert r.status_code == 403 and r.json()["error_id"] == "token-scope"
    assert (await client.delete(f"{API}/tokens/{other['id']}", headers=narrow)).status_code == 403
    assert (await client.delete(f"{API}/tokens/{created['id']}", headers=narrow)).status_code == 204
    assert (await client.get(f"{API}/me", headers=narrow)).status_code == 401


async def test_an_expired_token_is_refused_even_while_cached(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], clock: ShiftedClock
) -> None:
    owner = await make_user(container, "temp", Role.AGENT)
    expires = (clock() + timedelta(hours=1)).isoformat()
    headers, created = await _token(client, admin_headers, owner, scopes=["crm:read"], expires_at=expires)
    assert created["expires_at"] is not None
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200  # cached now
    clock.advance(3601)
    r = await client.get(f"{API}/me", headers=headers)
    assert r.status_code == 401 and r.json()["error_id"] == "token-expired"
    past = (clock() - timedelta(minutes=1)).isoformat()
    r = await client.post(
        f"{API}/users/{owner}/tokens", json={"name": "x", "expires_at": past}, headers=admin_headers
    )
    assert r.status_code == 400 and r.json()["error_id"] == "token-expired-already"


async def test_a_token_limited_to_a_project_sees_only_that_projects_contacts(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    center = await Center(Desk(client, container, admin_headers)).build()
    alpha, beta = await center.contact("alpha"), await center.contact("beta")
    owner = await make_user(container, "alpha-sync", Role.SUPERVISOR)  # the owner sees every project
    headers, created = await _token(
        client, admin_headers, owner, scopes=["crm:read"], project_ids=[center.projects["alpha"]]
    )
    assert created["project_ids"] == [center.projects["alpha"]]
    assert (await client.get(f"{API}/interactions/{alpha}", headers=headers)).status_code == 200
    assert (await client.get(f"{API}/interactions/{beta}", headers=headers)).status_code == 404
    r = await client.post(
        f"{API}/users/{owner}/tokens", json={"name": "x", "project_ids": [99999]}, headers=admin_headers
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-project"


async def test_last_use_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], clock: ShiftedClock
) -> None:
    owner = await make_user(container, "busy", Role.AGENT)
    headers, created = await _token(client, admin_headers, owner, scopes=["crm:read"])

    async def last_used() -> datetime | None:
        async with container.sessions() as s:
            return await s.scalar(select(ApiToken.last_used_at).where(ApiToken.id == created["id"]))

    assert await last_used() is None
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200
    first = await last_used()
    assert first is not None
    clock.advance(30)
    container.auth.forget_tokens()  # read from the database again, as on a cache miss
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200
    assert await last_used() == first
    clock.advance(31)
    container.auth.forget_tokens()
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200
    later = await last_used()
    assert later is not None and later > first


async def test_the_admin_lists_every_users_tokens_with_scopes_expiry_and_last_use(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    owner = await make_user(container, "lister", Role.AGENT)
    headers, created = await _token(client, admin_headers, owner, scopes=["tickets:read", "crm:read"])
    await client.get(f"{API}/me", headers=headers)
    listed = (await client.get(f"{API}/tokens", headers=admin_headers)).json()
    mine = next(t for t in listed if t["id"] == created["id"])
    assert mine["username"] == "lister" and mine["scopes"] == ["crm:read", "tickets:read"]
    assert mine["last_used_at"] is not None and mine["expires_at"] is None
    assert all("token" not in t for t in listed)
    agent_token = await container.auth.create_token(Actor.system(), "a", user_id=owner)
    r = await client.get(f"{API}/tokens", headers={"Authorization": f"Bearer {agent_token.token}"})
    assert r.status_code == 403


async def test_tokens_made_before_scopes_keep_their_owners_full_rights(tmp_path: Path) -> None:
    """Migration 0024 gives every existing token the ``admin`` scope (its owner's full rights)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0021")
    db = sqlite3.connect(tmp_path / "old.db")
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    db.execute(
        "INSERT INTO users (id, username, display_name, role, language, password_hash, is_active,"
        " created_at, password_changed_at) VALUES (1, 'old', 'Old', 'supervisor', 'en', 'x', 1, ?, ?)",
        (now, now),
    )
    db.execute(
        "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at)"
        " VALUES (1, 'legacy', 'fo_abc', 'hash', ?)",
        (now,),
    )
    db.commit()
    db.close()
    upgrade(url)
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT scopes, expires_at, project_ids FROM api_tokens").fetchall() == [
        ('["admin"]', None, None)
    ]
    db.close()


@pytest.fixture
async def stream_url(container: Container) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(container), host="127.0.0.1", port=port, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    serving: asyncio.Task[None] = await serve_in_task(server)
    yield f"ws://127.0.0.1:{port}/api/v1/stream"
    server.should_exit = True
    await serving


async def test_the_live_stream_needs_a_token_that_may_read_contacts(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], stream_url: str
) -> None:
    owner = await make_user(container, "watcher", Role.SUPERVISOR)
    _, website = await _token(client, admin_headers, owner, scopes=["contacts:create"])
    _, reader = await _token(client, admin_headers, owner, scopes=["crm:read"])
    with pytest.raises(websockets.InvalidStatus):  # closed before the handshake completes
        async with websockets.connect(f"{stream_url}?token={website['token']}"):
            pass
    async with websockets.connect(f"{stream_url}?token={reader['token']}") as ws:
        hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    assert "wallboard" not in hello["data"]  # supervision needs the admin scope, not crm:read
