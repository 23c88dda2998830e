"""The web chat's WebSocket protocol over loopback with the ``websockets`` client: acknowledged after
the commit, resumed by the last id seen, deduplicated by the client id, refused for a foreign origin or
a bad token, limited in size and rate; the agent's messages arrive through the outbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import func, select

from frontoffice.bootstrap import Container
from frontoffice.channels.chat.protocol import MESSAGE_BURST
from frontoffice.store.tables import Message
from frontoffice.web.app import create_app

from ..conftest import eventually, free_port, serve_in_task
from .test_acd_api import API
from .test_conversations import ChatDesk


@pytest.fixture
async def site(client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]) -> ChatDesk:
    d = ChatDesk(client, container, admin_headers)
    queue = await d.queue("Chat")
    r = await client.post(
        f"{API}/entry-points",
        json={
            "name": "Shop chat",
            "channel": "chat",
            "address": "shop",
            "default_queue_id": queue,
            "chat": {"allowed_origins": ["https://shop.example"], "greeting": {"en": "Hi!"}},
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["chat"]["allowed_origins"] == ["https://shop.example"]
    await d.agent("anna", {queue: 1}, capacity={"chat": 3})
    await d.login("anna")
    return d


@pytest.fixture
async def base(container: Container) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = await serve_in_task(server)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


class Visitor:
    """A widget as the protocol sees it."""

    def __init__(self, base: str, origin: str = "https://shop.example") -> None:
        self.url = f"ws://{base}/chat/ws?key=shop"
        self.origin = origin
        self.ws: Any = None
        self.token: str | None = None
        self.visitor_id = ""

    async def connect(self, last_seen: int = 0, token: str | None = None) -> dict[str, Any]:
        self.ws = await websockets.connect(self.url, origin=self.origin)  # type: ignore[arg-type]
        await self.send(
            t="hello", token=token or self.token, last_seen=last_seen, page="https://shop.example/cart"
        )
        welcome = await self.until("welcome")
        self.token = welcome["token"]
        self.visitor_id = welcome["visitor"]
        return welcome

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, kind: str, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["t"] == kind and all(frame.get(k) == v for k, v in match.items()):
                    return frame

    async def close(self) -> None:
        await self.ws.close()


async def messages(container: Container) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)) or 0)


async def test_a_message_is_acknowledged_after_its_commit_and_a_repeat_is_the_same_message(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    welcome = await visitor.connect()
    assert welcome["phase"] == "idle" and welcome["config"]["greeting"] == {"en": "Hi!"}
    await visitor.send(t="msg", cid="c1", text="Hello", prechat={"name": "Ivan Petrov", "topic": "Delivery"})
    ack = await visitor.until("ack", cid="c1")
    # The ack came after the commit: another session reads the message.
    async with container.sessions() as s:
        stored = await s.get(Message, ack["id"])
        assert stored is not None and stored.body == "Hello" and stored.flags["cid"] == "c1"
    # Resent after a lost ack (same client id): the same message, nothing new.
    await visitor.send(t="msg", cid="c1", text="Hello")
    again = await visitor.until("ack", cid="c1")
    assert again["id"] == ack["id"] and await messages(container) == 1
    await visitor.close()
    # A reload resumes: the history comes back once, with the client id that lets the widget merge it.
    resumed = await visitor.connect(last_seen=0)
    assert [(m["id"], m["cid"], m["dir"]) for m in resumed["messages"]] == [(ack["id"], "c1", "in")]
    assert resumed["phase"] == "waiting"
    await visitor.close()
    caught_up = await visitor.connect(last_seen=ack["id"])
    assert caught_up["messages"] == []
    await visitor.close()


async def test_the_agents_messages_reach_the_visitor_live_and_on_resume(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    await visitor.connect()
    await visitor.send(t="msg", cid="c1", text="Hello", prechat={"name": "Ivan"})
    ack = await visitor.until("ack", cid="c1")
    entry = await container.chat.entry("shop")
    received = await container.conversations.receipt(entry.id, f"chat:{visitor.visitor_id}:c1")
    assert received is not None
    interaction_id = received.interaction_id
    await site.accept("anna", interaction_id)
    headers = site.agents["anna"]
    r = await site.client.post(
        f"{API}/interactions/{interaction_id}/conversation/messages",
        json={"body": "Hi Ivan, <b>how</b> can I help?"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    live = await visitor.until("msg", dir="out")
    assert live["text"] == "Hi Ivan, <b>how</b> can I help?" and live["id"] > ack["id"]
    await visitor.send(t="got", id=live["id"])
    await eventually(lambda: _state(container, live["id"], "delivered"), "the message was marked delivered")
    await visitor.close()
    # Sent while the visitor is away (a page change): fetched on resume, after the last id seen.
    r = await site.client.post(
        f"{API}/interactions/{interaction_id}/conversation/messages",
        json={"body": "Are you still there?"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    await eventually(lambda: _state(container, r.json()["id"], "sent"), "the outbox delivered it")
    resumed = await visitor.connect(last_seen=live["id"])
    assert [m["text"] for m in resumed["messages"]] == ["Are you still there?"]
    # The agent read the visitor's message: the widget gets a read receipt.
    r = await site.client.post(
        f"{API}/interactions/{interaction_id}/conversation/read",
        json={"message_id": ack["id"]},
        headers=headers,
    )
    assert r.json() == {"read": 1}
    receipt = await visitor.until("receipt")
    assert receipt["id"] == ack["id"] and receipt["state"] == "read"
    await visitor.close()


async def _state(container: Container, message_id: int, state: str) -> bool:
    async with container.sessions() as s:
        return await s.scalar(select(Message.delivery_state).where(Message.id == message_id)) == state


async def test_a_page_of_a_site_not_allowed_is_refused(site: ChatDesk, base: str) -> None:
    with pytest.raises(websockets.exceptions.ConnectionClosed) as refused:
        visitor = Visitor(base, origin="https://evil.example")
        await visitor.connect()
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4403


async def test_a_forged_token_is_refused(site: ChatDesk, base: str) -> None:
    visitor = Visitor(base)
    with pytest.raises(websockets.exceptions.ConnectionClosed) as refused:
        await visitor.connect(token="eyJmb3JnZWQiOnRydWV9.forged.signature")
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401


async def test_oversized_messages_and_floods_are_refused_per_visitor(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    await visitor.connect()
    await visitor.send(t="msg", cid="long", text="x" * 4001)
    assert (await visitor.until("error", cid="long"))["code"] == "message-too-long"
    for n in range(MESSAGE_BURST):
        await visitor.send(t="msg", cid=f"m{n}", text=f"message {n}")
        await visitor.until("ack", cid=f"m{n}")
    await visitor.send(t="msg", cid="flood", text="one too many")
    assert (await visitor.until("error", cid="flood"))["code"] == "rate-limited"
    assert await messages(container) == MESSAGE_BURST
    await visitor.close()
