"""Hole 1 of issue 19: a revoked token (or a deactivated user's) must stop at once, even when a request
with it reads the token while the revocation is being committed.

The race, made deterministic: the revocation's ``UPDATE`` has run but is not committed yet when a
request with the token arrives (a listener on the engine runs that request right after the
statement). The request reads the committed row — still valid — and is served, which is right: it
came before the revocation took effect. What must not happen is that it leaves the old row in the
token cache, so that later requests keep working for up to TOKEN_CACHE_S.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.util.concurrency import await_

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor

from ..conftest import make_user

API = "/api/v1"


def _run_during(
    container: Container, marker: str, request: Callable[[], Any]
) -> tuple[list[httpx.Response], Callable[[], None]]:
    """Run ``request`` (an HTTP call) once, right after the first statement containing ``marker``
    executes, inside that statement's open transaction (the listener runs in the transaction's
    greenlet, so it can await). Returns the responses and an uninstaller."""
    answers: list[httpx.Response] = []
    fired: list[bool] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Once, and not for the statements of the racing request itself.
        if marker in statement and not fired:
            fired.append(True)
            answers.append(await_(request()))

    engine = container.engine.sync_engine
    event.listen(engine, "after_cursor_execute", after)
    return answers, lambda: event.remove(engine, "after_cursor_execute", after)


async def test_a_request_racing_a_token_revocation_does_not_keep_the_token_alive(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    user_id = await make_user(container, "shop", Role.SUPERVISOR)
    token = await container.auth.create_token(Actor.system(), "shop sync", user_id=user_id)
    headers = {"Authorization": f"Bearer {token.token}"}
    # Used once (last use written, so the racing request only reads), then the cache is empty, as
    # after TOKEN_CACHE_S or on another node.
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200
    container.auth.forget_tokens()

    answers, stop = _run_during(
        container, "UPDATE api_tokens SET revoked_at", lambda: client.get(f"{API}/me", headers=headers)
    )
    try:
        r = await client.delete(f"{API}/tokens/{token.id}", headers=admin_headers)
    finally:
        stop()
    assert r.status_code == 204
    assert [a.status_code for a in answers] == [200]  # it raced the revocation and came first
    after = await client.get(f"{API}/me", headers=headers)
    assert after.status_code == 401, "the revoked token still works from the cache"
    assert after.json()["error_id"] == "invalid-token"


async def test_a_request_racing_a_user_deactivation_does_not_keep_the_users_token_alive(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    user_id = await make_user(container, "leaver", Role.AGENT)
    token = await container.auth.create_token(Actor.system(), "script", user_id=user_id)
    headers = {"Authorization": f"Bearer {token.token}"}
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200
    container.auth.forget_tokens()

    # The user's row is changed and the answer being prepared (its project limit read) when the
    # racing request comes: after the change's statement, before its commit.
    answers, stop = _run_during(
        container, "FROM user_projects", lambda: client.get(f"{API}/me", headers=headers)
    )
    try:
        r = await client.patch(f"{API}/users/{user_id}", json={"is_active": False}, headers=admin_headers)
    finally:
        stop()
    assert r.status_code == 200, r.text
    assert [a.status_code for a in answers] == [200]
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 401


async def test_a_revoked_token_is_refused_at_once_without_a_race(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    user_id = await make_user(container, "plain", Role.AGENT)
    token = await container.auth.create_token(Actor.system(), "plain", user_id=user_id)
    headers = {"Authorization": f"Bearer {token.token}"}
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200  # cached now
    assert (await client.delete(f"{API}/tokens/{token.id}", headers=admin_headers)).status_code == 204
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 401


async def test_a_look_up_that_read_the_token_before_the_revocation_does_not_cache_it_after(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    """The other interleaving: the look-up reads the token row before the revocation commits and
    stores its result only after the revocation has committed and cleared the cache. The cache's
    generation, noted before the read, has moved: the stale result is not kept."""
    user_id = await make_user(container, "slow", Role.AGENT)
    token = await container.auth.create_token(Actor.system(), "slow", user_id=user_id)
    headers = {"Authorization": f"Bearer {token.token}"}
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 200
    container.auth.forget_tokens()
    has_read, revoked = asyncio.Event(), asyncio.Event()
    paused: list[bool] = []

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM api_tokens JOIN users" in statement and not paused:
            paused.append(True)
            has_read.set()
            await_(revoked.wait())  # hold the look-up between its read and its caching

    engine = container.engine.sync_engine
    event.listen(engine, "after_cursor_execute", after)
    try:
        racing = asyncio.create_task(client.get(f"{API}/me", headers=headers))
        await asyncio.wait_for(has_read.wait(), 10)
        r = await client.delete(f"{API}/tokens/{token.id}", headers=admin_headers)
        assert r.status_code == 204
        revoked.set()
        assert (await racing).status_code == 200  # it read the token before the revocation
    finally:
        revoked.set()
        event.remove(engine, "after_cursor_execute", after)
    assert (await client.get(f"{API}/me", headers=headers)).status_code == 401
