"""Users limited to some projects (a client team of an outsourcing center): the admin API, and the
wallboard, waiting lists and the WebSocket stream showing only those projects' queues and contacts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets

from frontoffice.bootstrap import Container
from frontoffice.bus import BusMessage
from frontoffice.domain.model import Role
from frontoffice.web.app import create_app

from ..conftest import TEST_PASSWORD, free_port, make_user, token_headers
from .test_acd_api import API, Desk


class Center:
    """Two client projects, each with a queue, an entry point and a signed-in agent."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.client = desk.client
        self.admin = desk.admin
        self.projects: dict[str, int] = {}
        self.queues: dict[str, int] = {}

    async def build(self) -> Center:
        for code in ("alpha", "beta"):
            r = await self.client.post(
                f"{API}/projects", json={"code": code, "name": code.title()}, headers=self.admin
            )
            assert r.status_code == 201, r.text
            self.projects[code] = r.json()["id"]
            r = await self.client.post(
                f"{API}/queues",
                json={"name": f"{code} support", "project_id": self.projects[code]},
                headers=self.admin,
            )
            assert r.status_code == 201, r.text
            self.queues[code] = r.json()["id"]
            await self.desk.entry(f"{code}-site", self.queues[code])
            await self.desk.agent(f"{code}-agent", {self.queues[code]: 1})
            await self.desk.login(f"{code}-agent")
        return self

    async def contact(self, code: str) -> int:
        return int((await self.desk.contact(f"{code}-site"))["interaction"]["id"])

    async def limit(self, user_id: int, *codes: str) -> httpx.Response:
        ids = [self.projects[c] for c in codes] if codes else None
        return await self.client.put(
            f"{API}/users/{user_id}/projects", json={"project_ids": ids}, headers=self.admin
        )


@pytest.fixture
async def center(client, container, admin_headers) -> Center:
    return await Center(Desk(client, container, admin_headers)).build()


async def test_admin_limits_a_user_to_projects_and_the_user_shows_it(center: Center, container) -> None:
    client, admin = center.client, center.admin
    sup = await make_user(container, "team-lead", Role.SUPERVISOR)
    assert (await client.get(f"{API}/users/{sup}", headers=admin)).json()["project_ids"] is None

    r = await center.limit(sup, "beta", "alpha")
    assert r.status_code == 200, r.text
    both = sorted(center.projects.values())
    assert r.json() == {"project_ids": both}
    assert (await client.get(f"{API}/users/{sup}", headers=admin)).json()["project_ids"] == both
    assert (await client.get(f"{API}/users/{sup}/projects", headers=admin)).json()["project_ids"] == both
    listed = {u["id"]: u for u in (await client.get(f"{API}/users", headers=admin)).json()}
    assert listed[sup]["project_ids"] == both

    audit = (await client.get(f"{API}/audit", params={"action": "user.projects"}, headers=admin)).json()
    assert audit["items"][0]["object_id"] == str(sup)
    assert audit["items"][0]["details"]["project_ids"] == both

    assert (await center.limit(sup)).json() == {"project_ids": None}  # null lifts the limit
    assert (await client.get(f"{API}/users/{sup}", headers=admin)).json()["project_ids"] is None


async def test_setting_projects_rejects_unknown_projects_bad_bodies_and_non_admins(
    center: Center, container
) -> None:
    client, admin = center.client, center.admin
    sup = await make_user(container, "team-lead", Role.SUPERVISOR)
    url = f"{API}/users/{sup}/projects"

    r = await client.put(url, json={"project_ids": [center.projects["alpha"], 999_999]}, headers=admin)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-project"
    assert r.json()["details"]["project_id"] == 999_999
    r = await client.put(f"{API}/users/999999/projects", json={"project_ids": None}, headers=admin)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-user"
    for body in ({"projects": [1]}, {}, {"project_ids": []}, {"project_ids": ["x"]}, {"project_ids": [0]}):
        r = await client.put(url, json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error_id"] == "validation-failed"
    root = (await client.get(f"{API}/me", headers=admin)).json()["id"]
    r = await client.put(f"{API}/users/{root}/projects", json={"project_ids": [1]}, headers=admin)
    assert r.status_code == 400 and r.json()["error_id"] == "admin-sees-all-projects"

    other = await token_headers(container, "other-lead", Role.SUPERVISOR)
    assert (await client.get(url, headers=other)).status_code == 200  # users.read
    r = await client.put(url, json={"project_ids": None}, headers=other)
    assert r.status_code == 403 and r.json()["error_id"] == "forbidden"  # users.write


async def test_wallboard_and_waiting_lists_show_only_the_users_projects(center: Center, container) -> None:
    client = center.client
    headers = await token_headers(container, "alpha-lead", Role.SUPERVISOR)
    me = (await client.get(f"{API}/me", headers=headers)).json()["id"]
    for agent in ("alpha-agent", "beta-agent"):  # busy agents: new contacts stay waiting
        r = await client.post(
            f"{API}/agent/state",
            json={"state": "not_ready", "reason": "lunch"},
            headers=center.desk.agents[agent],
        )
        assert r.status_code == 204, r.text
    a, b = await center.contact("alpha"), await center.contact("beta")
    qa, qb = center.queues["alpha"], center.queues["beta"]

    def queue_ids(board: dict[str, Any]) -> set[int]:
        return {q["queue_id"] for q in board["queues"]}

    assert queue_ids((await client.get(f"{API}/wallboard", headers=headers)).json()) == set(
        center.queues.values()
    )
    assert (await center.limit(me, "alpha")).status_code == 200
    # At once for the next request, although token look-ups are cached for a while.
    board = (await client.get(f"{API}/wallboard", headers=headers)).json()
    assert queue_ids(board) == {center.queues["alpha"]}
    assert {g["agent_id"] for g in board["agents"]} == set(center.desk.agent_ids.values())  # agents: all
    live = (await client.get(f"{API}/stats/live", headers=headers)).json()
    assert {q["queue_id"] for q in live["queues"]} == {center.queues["alpha"]}

    r = await client.get(f"{API}/queues/{center.queues['alpha']}/waiting", headers=headers)
    assert r.status_code == 200 and [w["interaction_id"] for w in r.json()] == [a]
    r = await client.get(f"{API}/queues/{center.queues['beta']}/waiting", headers=headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-queue"
    r = await client.get(f"{API}/queues/{center.queues['beta']}/waiting", headers=center.admin)
    assert [w["interaction_id"] for w in r.json()] == [b]

    # Nor can the user act on another project's contacts or move a contact into its queue.
    r = await client.post(f"{API}/interactions/{b}/priority", json={"priority": 5}, headers=headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-contact"
    r = await client.post(f"{API}/interactions/{b}/move", json={"queue_id": qa}, headers=headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-contact"
    r = await client.post(f"{API}/interactions/{a}/move", json={"queue_id": qb}, headers=headers)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-queue"
    r = await client.post(f"{API}/interactions/{a}/priority", json={"priority": 5}, headers=headers)
    assert r.status_code == 204, r.text

    # A browser session is limited the same way.
    r = await client.post(f"{API}/auth/login", json={"username": "alpha-lead", "password": TEST_PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["project_ids"] == [center.projects["alpha"]]
    assert queue_ids((await client.get(f"{API}/wallboard")).json()) == {center.queues["alpha"]}
    assert (await center.limit(me)).status_code == 200
    assert len(queue_ids((await client.get(f"{API}/wallboard")).json())) == 2


@pytest.fixture
async def stream_url(container: Container) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await asyncio.sleep(0.02)
        yield f"ws://127.0.0.1:{port}/api/v1/stream"
    finally:
        server.should_exit = True
        await serving


async def _until(ws: websockets.ClientConnection, done: Any) -> list[dict[str, Any]]:
    """Messages received until ``done(messages)`` is true."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while not done(seen):
            seen.append(json.loads(await ws.recv()))
    return seen


async def test_stream_sends_a_limited_supervisor_only_their_projects(
    center: Center, container: Container, stream_url: str
) -> None:
    limited = await token_headers(container, "alpha-lead", Role.SUPERVISOR)
    limited_id = (await center.client.get(f"{API}/me", headers=limited)).json()["id"]
    assert (await center.limit(limited_id, "alpha")).status_code == 200
    everyone = await token_headers(container, "head", Role.SUPERVISOR)
    qa, qb = center.queues["alpha"], center.queues["beta"]

    def token(headers: dict[str, str]) -> str:
        return headers["Authorization"].split()[1]

    async with (
        websockets.connect(f"{stream_url}?token={token(limited)}") as limited_ws,
        websockets.connect(f"{stream_url}?token={token(everyone)}") as all_ws,
    ):
        hello = json.loads(await limited_ws.recv())
        assert [q["queue_id"] for q in hello["data"]["wallboard"]["queues"]] == [qa]
        hello = json.loads(await all_ws.recv())
        assert {q["queue_id"] for q in hello["data"]["wallboard"]["queues"]} == {qa, qb}

        b = await center.contact("beta")
        a = await center.contact("alpha")

        def offered(messages: list[dict[str, Any]]) -> set[int]:
            return {m["data"]["contact_id"] for m in messages if m["type"] == "offer_contact"}

        def figures(messages: list[dict[str, Any]]) -> set[int]:
            return {
                q["queue_id"] for m in messages if m["type"] == "queue_figures" for q in m["data"]["queues"]
            }

        got = await _until(all_ws, lambda ms: offered(ms) == {a, b} and figures(ms) == {qa, qb})
        assert any(m["type"] == "contact_queued" and m["data"]["contact_id"] == b for m in got)

        # Everything about b was published before this marker; the limited socket gets what it may.
        container.bus.publish(BusMessage(type="marker", data={}, audience=("all",)))
        got = await _until(limited_ws, lambda ms: bool(ms) and ms[-1]["type"] == "marker")
        assert offered(got) == {a}
        assert figures(got) == {qa}
        assert any(m["type"] == "contact_queued" and m["data"]["contact_id"] == a for m in got)
        assert not [m for m in got if b in (m["data"].get("contact_id"), m["data"].get("contact_ids"))]
        assert not [m for m in got if qb in (m["data"].get("queue_id"), m["data"].get("to_queue"))]
        # Agent states belong to no project: every supervisor sees them.
        await center.client.post(
            f"{API}/agent/state",
            json={"state": "not_ready", "reason": "lunch"},
            headers=center.desk.agents["beta-agent"],
        )
        changed = await _until(limited_ws, lambda ms: bool(ms) and ms[-1]["type"] == "agent_state_changed")
        assert changed[-1]["data"]["agent_id"] == center.desk.agent_ids["beta-agent"]
