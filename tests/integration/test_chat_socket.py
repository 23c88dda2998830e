"""The web chat's WebSocket protocol over loopback with the ``websockets`` client: acknowledged after
the commit, resumed by the last id seen, deduplicated by the client id, refused for a foreign origin or
a bad token, limited in size and rate; the agent's messages arrive through the outbox. Then the
features around the messages: typing both ways, the waiting visitor's place in the queue, file upload
with its type and size limits, the offline form that opens a ticket, the transcript by email through
the outbox, and the rating at the end."""

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
from frontoffice.store.tables import (
    Identity,
    Interaction,
    Message,
    MessageAttachment,
    OutboxItem,
    Ticket,
)
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


# ---------------------------------------------------------------- around the messages
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _chatting(site: ChatDesk, container: Container, visitor: Visitor) -> int:
    """The visitor wrote; anna accepted: the turn's interaction id."""
    await visitor.connect()
    await visitor.send(t="msg", cid="c1", text="Hello", prechat={"name": "Ivan Petrov"})
    await visitor.until("ack", cid="c1")
    entry = await container.chat.entry("shop")
    received = await container.conversations.receipt(entry.id, f"chat:{visitor.visitor_id}:c1")
    assert received is not None
    await site.accept("anna", received.interaction_id)
    return received.interaction_id


async def test_typing_shows_on_the_agents_panel_and_the_agents_typing_on_the_widget(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    interaction_id = await _chatting(site, container, visitor)
    site.drain()
    await visitor.send(t="typing", on=True)

    def visitor_typing() -> bool:
        return any(
            m.type == "conversation_typing"
            and m.data.get("typing") is True
            and m.data.get("who") == "visitor"
            for m in site.drain()
        )

    await eventually(visitor_typing, "the agent's panel was told the visitor types")
    r = await site.client.post(
        f"{API}/interactions/{interaction_id}/conversation/typing",
        json={"typing": True},
        headers=site.agents["anna"],
    )
    assert r.status_code == 204, r.text
    assert (await visitor.until("typing"))["on"] is True
    await visitor.close()


async def test_a_waiting_visitor_is_told_their_place_in_the_queue(
    site: ChatDesk, container: Container, base: str
) -> None:
    r = await site.client.post(
        f"{API}/agent/state", json={"state": "not_ready", "reason": "lunch"}, headers=site.agents["anna"]
    )  # nobody free: the chats wait
    assert r.status_code == 204, r.text
    first, second = Visitor(base), Visitor(base)
    for n, visitor in enumerate((first, second)):
        await visitor.connect()
        await visitor.send(t="msg", cid=f"w{n}", text="Anyone there?")
        await visitor.until("ack", cid=f"w{n}")
    assert (await first.until("queue"))["position"] == 1
    assert (await second.until("queue"))["position"] == 2
    await first.close()
    await second.close()


async def test_a_visitors_file_is_checked_stored_and_attached_to_the_message(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    await visitor.connect()
    assert visitor.token is not None
    form = {"key": "shop", "token": visitor.token}
    async with httpx.AsyncClient(base_url=f"http://{base}") as http:
        r = await http.post("/chat/files", data=form, files={"file": ("receipt.png", PNG, "image/png")})
        assert r.status_code == 201, r.text
        uploaded = r.json()
        assert uploaded["name"] == "receipt.png" and uploaded["size"] == len(PNG)
        # An HTML page named .png, a program, a file over the limit: refused, nothing stored.
        fake = await http.post(
            "/chat/files", data=form, files={"file": ("x.png", b"<html><script>", "image/png")}
        )
        assert fake.status_code == 415 and fake.json()["error"] == "file-type-not-allowed"
        exe = await http.post(
            "/chat/files", data=form, files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")}
        )
        assert exe.status_code == 415
        big = await http.post(
            "/chat/files",
            data=form,
            files={"file": ("big.pdf", b"%PDF" + b"0" * (10 * 1024 * 1024), "application/pdf")},
        )
        assert big.status_code == 413  # refused by the body limit before the handler reads it
        forged = await http.post(
            "/chat/files",
            data={"key": "shop", "token": "forged.token.value"},
            files={"file": ("receipt.png", PNG, "image/png")},
        )
        assert forged.status_code == 403
    await visitor.send(t="msg", cid="f1", text="My receipt", files=[uploaded["ref"]])
    ack = await visitor.until("ack", cid="f1")
    async with container.sessions() as s:
        attached = list(
            await s.scalars(select(MessageAttachment).where(MessageAttachment.message_id == ack["id"]))
        )
    assert [(a.filename, a.content_type, a.size) for a in attached] == [
        ("receipt.png", "image/png", len(PNG))
    ]
    # A reference is the visitor's own: another visitor cannot attach it.
    other = Visitor(base)
    await other.connect()
    await other.send(t="msg", cid="f2", text="Not mine", files=[uploaded["ref"]])
    assert (await other.until("error", cid="f2"))["code"] == "unknown-file"
    await visitor.close()
    await other.close()


async def test_the_offline_form_opens_a_ticket_for_the_customer_it_names(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    await visitor.connect()
    await visitor.send(t="offline", name="Olga Smirnova", email="", phone="", text="Call me back")
    assert (await visitor.until("error"))["code"] == "no-contact-details"
    await visitor.send(
        t="offline",
        name="Olga Smirnova",
        email="olga@example.com",
        phone="",
        text="Where is my order?\nNo. 77",
    )
    received = await visitor.until("offline-received")
    async with container.sessions() as s:
        ticket = await s.get(Ticket, received["ticket"])
        assert ticket is not None and ticket.subject == "Where is my order?"
        owner = await s.scalar(select(Identity.customer_id).where(Identity.value == "olga@example.com"))
    assert owner == ticket.customer_id
    await visitor.close()


async def test_the_transcript_goes_by_email_through_the_outbox_from_the_entry_points_address(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    # No address to send mail from: the widget does not offer the transcript, and a request is refused.
    assert (await visitor.connect())["config"]["transcript"] is False
    await visitor.close()
    interaction_id = await _chatting(site, container, visitor)
    await visitor.send(t="transcript", email="ivan@example.com")
    assert (await visitor.until("error"))["code"] == "no-from-address"
    await visitor.close()
    entry = await container.chat.entry("shop")
    r = await site.client.get(f"{API}/entry-points", headers=site.admin)
    [current] = [e for e in r.json() if e["id"] == entry.id]
    changed = {k: v for k, v in current.items() if k not in ("id", "secrets_set")}
    changed["email"] = {"from_address": "shop@example.com"}
    r = await site.client.put(f"{API}/entry-points/{entry.id}", json=changed, headers=site.admin)
    assert r.status_code == 200, r.text
    assert (await visitor.connect())["config"]["transcript"] is True
    r = await site.client.post(
        f"{API}/interactions/{interaction_id}/conversation/messages",
        json={"body": "Your parcel leaves today."},
        headers=site.agents["anna"],
    )
    assert r.status_code == 201, r.text
    await visitor.until("msg", dir="out")
    await visitor.send(t="transcript", email="ivan@example.com")
    await visitor.until("transcript-queued")
    async with container.sessions() as s:
        queued = await s.scalar(select(OutboxItem).where(OutboxItem.channel == "email"))
        assert queued is not None and queued.message_id is not None
        mail = await s.get(Message, queued.message_id)
    assert mail is not None and mail.interaction_id == interaction_id
    assert mail.recipients["to"] == ["ivan@example.com"] and "shop@example.com" in mail.sender
    assert "Hello" in mail.body and "Your parcel leaves today." in mail.body
    assert mail.flags.get("transcript") is True
    await visitor.close()


async def test_the_rating_at_the_end_is_kept_on_the_contact_and_shown_to_the_agent(
    site: ChatDesk, container: Container, base: str
) -> None:
    visitor = Visitor(base)
    interaction_id = await _chatting(site, container, visitor)
    await visitor.send(t="rate", score=9, comment="")
    assert (await visitor.until("error"))["code"] == "bad-rating"  # 1 to 5
    site.drain()
    await visitor.send(t="rate", score=5, comment="Quick and kind")
    await visitor.until("rated")
    async with container.sessions() as s:
        interaction = await s.get(Interaction, interaction_id)
        assert interaction is not None
        assert interaction.attributes["rating"] == 5
        assert interaction.attributes["rating_comment"] == "Quick and kind"
    assert any(m.type == "conversation_rating" and m.data["rating"] == 5 for m in site.drain())
    await visitor.close()
