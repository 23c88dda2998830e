"""Cross-site WebSocket hijacking (issue 19, hole 4): a page of another site must not open
``/api/v1/stream`` with the user's session cookie, which the browser sends along. Tested with a real
WebSocket client against the app served on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.web.app import create_app

from ..conftest import TEST_PASSWORD, free_port, make_user, serve_in_task


@dataclass
class Site:
    http: str
    ws: str
    host: str


@pytest.fixture
async def site(container: Container) -> AsyncIterator[Site]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = await serve_in_task(server)
    try:
        yield Site(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/api/v1/stream", f"127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving


async def _session_cookie(site: Site, username: str) -> str:
    async with httpx.AsyncClient(base_url=site.http) as http:
        r = await http.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
        return f"fo_session={r.cookies['fo_session']}"


async def _hello(url: str, **options: Any) -> dict[str, Any]:
    async with websockets.connect(url, **options) as ws:
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def test_a_page_of_another_site_cannot_open_the_stream_with_the_users_cookie(
    site: Site, container: Container
) -> None:
    await make_user(container, "lead", Role.SUPERVISOR)
    cookie = await _session_cookie(site, "lead")

    for origin in ("https://evil.example", "http://127.0.0.1.evil.example", "null"):
        with pytest.raises(InvalidStatus) as refused:
            await _hello(site.ws, origin=Origin(origin), additional_headers={"Cookie": cookie})
        assert refused.value.response.status_code == 403, origin

    # The site's own pages may (the Origin of the page that served it), and so may a client that is
    # no browser (it sends no Origin).
    hello = await _hello(site.ws, origin=Origin(site.http), additional_headers={"Cookie": cookie})
    assert hello["type"] == "hello" and hello["data"]["role"] == "supervisor"
    hello = await _hello(site.ws, additional_headers={"Cookie": cookie})
    assert hello["type"] == "hello"


async def test_token_authenticated_sockets_need_no_origin_check(site: Site, container: Container) -> None:
    user_id = await make_user(container, "integration", Role.SUPERVISOR)
    token = (await container.auth.create_token(Actor.system(), "tests", user_id=user_id)).token
    hello = await _hello(f"{site.ws}?token={token}", origin=Origin("https://dashboard.example"))
    assert hello["type"] == "hello" and hello["data"]["user_id"] == user_id


@pytest.mark.parametrize("settings_overrides", [{"allowed_origins": ["https://wallboard.example.com"]}])
async def test_an_allowed_origin_may_open_the_stream_with_the_cookie(
    site: Site, container: Container
) -> None:
    await make_user(container, "lead", Role.SUPERVISOR)
    cookie = await _session_cookie(site, "lead")
    hello = await _hello(
        site.ws,
        origin=Origin("https://wallboard.example.com"),
        additional_headers={"Cookie": cookie},
    )
    assert hello["type"] == "hello"
    with pytest.raises(InvalidStatus):
        await _hello(
            site.ws, origin=Origin("https://other.example.com"), additional_headers={"Cookie": cookie}
        )
