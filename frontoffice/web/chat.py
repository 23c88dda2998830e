"""The web chat's public side: the widget script, its WebSocket, visitors' file uploads and downloads,
and the demo page (docs/chat.md). A thin adapter: frames are parsed by the sans-IO protocol
(``channels/chat/protocol.py``), the use cases are ``services/chat.py``'s.

Security: the socket's ``Origin`` must be one of the entry point's ``allowed_origins`` (or this
server's own); visitor tokens are signed and expire; messages are limited in size and rate per
visitor; every frame's text is data for the widget, which shows it with ``textContent`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from itsdangerous import BadSignature, URLSafeSerializer

from frontoffice.bootstrap import Container
from frontoffice.bus import BusMessage, Subscription
from frontoffice.channels.chat.protocol import (
    ALLOWED_FILE_TYPES,
    MAX_FILE_BYTES,
    ChatProtocolError,
    End,
    Got,
    Hello,
    Offline,
    Ping,
    Rate,
    RateLimit,
    Seen,
    Send,
    Transcript,
    Typing,
    VisitorToken,
    VisitorTokens,
    parse_frame,
)
from frontoffice.domain.exceptions import DomainError
from frontoffice.services.channel_contract import InboundAttachment
from frontoffice.services.chat import ChatEntry, VisitorState, chat_audience
from frontoffice.store.tables import MessageAttachment

__all__ = ["router"]

log = logging.getLogger("frontoffice.chat")
router = APIRouter(tags=["chat"])

WIDGET = Path(__file__).parent / "static" / "chat" / "widget.js"
# Close codes (RFC 6455 §7.4.2 private range): origin refused, bad token, no such chat, no hello.
CLOSE_ORIGIN = 4403
CLOSE_TOKEN = 4401
CLOSE_NO_ENTRY = 4404
CLOSE_NO_HELLO = 4400
# The first frame must be a hello within this time (a socket that says nothing holds a slot).
HELLO_TIMEOUT_S = 10.0
# While a visitor waits, their place in the queue is sent this often (when it changed).
QUEUE_UPDATE_S = 3.0
# Typing frames from one visitor reach the agent at most this often (a keystroke is not an event).
TYPING_INTERVAL_S = 2.0
_FILE_SALT = "frontoffice.chat.file"
# The bus message type the queue ticker puts in a waiting socket's inbox (never published on the bus).
_QUEUE_TICK = "queue-tick"


class QueueTicker:
    """One task for every waiting visitor's queue position (instead of a timer per socket): every
    ``QUEUE_UPDATE_S`` it reads each waiting socket's figures from the ACD (cheap, in memory) and wakes
    only the sockets whose figures changed (or whose turn stopped waiting), through their inbox, so
    each socket still sends its frames in order from its own forwarder. Runs while sockets are open."""

    def __init__(self) -> None:
        self._sockets: set[_Socket] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, socket: _Socket) -> None:
        """Follow this socket's queue position until :meth:`discard`."""
        self._sockets.add(socket)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="chat-queue-ticker")

    def discard(self, socket: _Socket) -> None:
        """Stop following the socket (it closed); the ticker stops with the last one."""
        self._sockets.discard(socket)
        if not self._sockets and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while self._sockets:
            await asyncio.sleep(QUEUE_UPDATE_S)
            for socket in tuple(self._sockets):
                socket.tick()


def _ticker(ws: WebSocket) -> QueueTicker:
    ticker: QueueTicker | None = getattr(ws.app.state, "chat_queue_ticker", None)
    if ticker is None:
        ticker = ws.app.state.chat_queue_ticker = QueueTicker()
    return ticker


def _tokens(c: Container) -> VisitorTokens:
    return c.chat_tokens


def _file_refs(c: Container) -> URLSafeSerializer:
    return URLSafeSerializer(c.settings.ensure_secret_key(), salt=_FILE_SALT)


def own_origin(scheme: str, host: str) -> str:
    """This server's origin as a browser names it (``http://host:port``)."""
    return f"{'https' if scheme in ('https', 'wss') else 'http'}://{host}".lower()


def origin_allowed(entry: ChatEntry, origin: str | None, own: str) -> bool:
    """Whether a page of ``origin`` may use this chat: one of its allowed sites, or this server."""
    if not origin:
        return False
    origin = origin.rstrip("/").lower()
    return origin == own or origin in entry.settings.allowed_origins


def _config(entry: ChatEntry, is_open: bool) -> dict[str, Any]:
    s = entry.settings
    return {
        "name": entry.name,
        "color": s.color,
        "position": s.position,
        "language": s.language,
        "greeting": s.greeting,
        "fields": s.prechat_fields,
        "required": s.prechat_required,
        "topics": s.topics,
        "kb": s.knowledge_base,
        "rating": s.rating,
        "transcript": s.transcript and entry.can_mail,
        "open": is_open,
        "max_file_bytes": MAX_FILE_BYTES,
        "file_types": sorted(ALLOWED_FILE_TYPES),
    }


@router.get("/chat/widget.js", include_in_schema=False)
async def widget() -> FileResponse:
    """The embeddable widget (plain JavaScript, no dependencies)."""
    return FileResponse(
        WIDGET,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/demo/chat", include_in_schema=False)
async def demo(request: Request, key: str | None = None) -> HTMLResponse:
    """A page that embeds the widget, for trying it (``?key=`` picks the chat entry point)."""
    c: Container = request.app.state.container
    if key is None:
        from sqlalchemy import select

        from frontoffice.store.tables import EntryPoint

        async with c.sessions() as s:
            key = await s.scalar(select(EntryPoint.address).where(EntryPoint.channel == "chat").limit(1))
    lang = "ru" if request.query_params.get("lang") == "ru" else "en"
    if key is None:
        body = "<p>No chat entry point yet: create one (channel chat) in the administration.</p>"
    else:
        body = (
            "<p>This page embeds the chat widget of entry point "
            f"<code>{_html(key)}</code>. Open it with the button in the corner.</p>"
            f'<p><a href="/demo/chat?key={quote(key)}&amp;page=2">Another page of this site</a></p>'
            f'<script src="/chat/widget.js" data-entry-point="{_html(key)}" async></script>'
        )
    return HTMLResponse(
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Chat demo</title></head><body><h1>Chat demo</h1>{body}</body></html>"
    )


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


async def _visitor_from_form(
    request: Request, key: str, token: str
) -> tuple[Container, ChatEntry, VisitorToken]:
    c: Container = request.app.state.container
    entry = await c.chat.entry(key)
    visitor = _tokens(c).read(token)
    if visitor.entry_point_id != entry.id:
        raise ChatProtocolError("bad-token", "the token is for another chat")
    return c, entry, visitor


def _cors(request: Request, entry: ChatEntry, response: Response) -> Response:
    origin = request.headers.get("origin")
    own = own_origin(request.url.scheme, request.headers.get("host", ""))
    if origin and origin_allowed(entry, origin, own):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


@router.post("/chat/files", include_in_schema=False)
async def upload(
    request: Request, file: UploadFile, key: str = Form(max_length=320), token: str = Form(max_length=512)
) -> Response:
    """A visitor's file (multipart ``file``, ``key``, ``token``): checked for type and size, stored as a
    blob; answers a signed reference to name in a ``msg`` frame's ``files``."""
    try:
        c, entry, visitor = await _visitor_from_form(request, key, token)
    except (ChatProtocolError, DomainError) as error:
        code = getattr(error, "code", None) or getattr(error, "error_id", "refused")
        return JSONResponse({"error": code}, status_code=403)
    kind = (file.content_type or "").split(";")[0].strip().lower()
    if kind not in ALLOWED_FILE_TYPES:
        return _cors(request, entry, JSONResponse({"error": "file-type-not-allowed"}, status_code=415))
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return _cors(request, entry, JSONResponse({"error": "file-too-large"}, status_code=413))
    if kind.startswith("image/") and not _looks_like_image(data, kind):
        return _cors(request, entry, JSONResponse({"error": "file-type-not-allowed"}, status_code=415))
    stored = await c.conversations.store_file(data, (file.filename or "file")[:200], kind)
    ref = _file_refs(c).dumps([visitor.visitor_id, stored.sha256, stored.size, stored.filename, kind])
    return _cors(
        request,
        entry,
        JSONResponse(
            {"ref": ref, "name": stored.filename, "type": kind, "size": stored.size}, status_code=201
        ),
    )


_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def _looks_like_image(data: bytes, kind: str) -> bool:
    """An image is what its first bytes say (an HTML page renamed .png is refused)."""
    return any(data.startswith(m) for m in _MAGIC.get(kind, ()))


@router.get("/chat/suggestions", include_in_schema=False)
async def suggestions(request: Request, key: str, topic: str = "", lang: str = "") -> Response:
    """Knowledge-base articles for the topic a visitor chose, before the chat starts."""
    c: Container = request.app.state.container
    try:
        entry = await c.chat.entry(key[:320])
    except DomainError:
        return JSONResponse([], status_code=404)
    found = await c.chat.suggestions(topic[:200], lang[:2]) if entry.settings.knowledge_base else []
    return _cors(request, entry, JSONResponse(found))


@router.get("/chat/files/{attachment_id}", include_in_schema=False)
async def download(request: Request, attachment_id: int, key: str, token: str) -> Response:
    """A file of the visitor's conversation (theirs or the agent's), always as a download."""
    try:
        c, entry, visitor = await _visitor_from_form(request, key, token)
    except (ChatProtocolError, DomainError):
        return JSONResponse({"error": "bad-token"}, status_code=403)
    state = await c.chat.visitor(entry, visitor.visitor_id)
    async with c.sessions() as s:
        from frontoffice.store.tables import Message

        a = await s.get(MessageAttachment, attachment_id)
        message = None if a is None else await s.get(Message, a.message_id)
    if a is None or message is None or state.thread_id is None or message.thread_id != state.thread_id:
        return JSONResponse({"error": "no-such-file"}, status_code=404)
    data = await c.blobs.read(a.sha256)
    return Response(
        data,
        media_type=a.content_type if a.content_type in ALLOWED_FILE_TYPES else "application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(a.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


class _Socket:
    """One visitor's socket: the protocol's commands to the chat service, the bus's frames to the
    visitor."""

    def __init__(self, ws: WebSocket, c: Container, entry: ChatEntry) -> None:
        self.ws = ws
        self.c = c
        self.chat = c.chat
        self.entry = entry
        self.visitor: VisitorToken | None = None
        self.state = VisitorState(None, None, None)
        self.sub: Subscription | None = None
        self.rate = RateLimit()
        self.page = ""
        self.referrer = ""
        self.lang: str | None = None
        self.last_typing = 0.0
        self.last_queue: tuple[int, float | None] | None = None
        self.wake = asyncio.Event()

    def tick(self) -> None:
        """The queue ticker's visit: wake the forwarder when the visitor's queue figures changed."""
        turn = self.state.turn
        sub = self.sub
        if sub is None or turn is None or not turn.open or turn.state == "connected":
            return
        figures = self.chat.queue_figures(turn.id)
        if figures is not None and figures == self.last_queue:
            return  # unchanged (None: no longer waiting in the engine, the forwarder reads the turn)
        with contextlib.suppress(asyncio.QueueFull):  # a backlog: the next tick tries again
            sub.queue.put_nowait(BusMessage(type=_QUEUE_TICK, data={}, audience=()))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(frame, default=str, ensure_ascii=False))

    def follow(self, thread_id: int | None) -> None:
        """Receive the bus frames of the visitor's thread (again, when it changed)."""
        key = None if thread_id is None else chat_audience(thread_id)
        if self.sub is not None and self.sub.keys == frozenset([key]):
            return
        if self.sub is not None:
            self.c.bus.unsubscribe(self.sub)
            self.sub = None
        if key is not None:
            self.sub = self.c.bus.subscribe(keys=[key])
            self.wake.set()

    async def hello(self, hello: Hello) -> None:
        tokens = _tokens(self.c)
        visitor = None
        if hello.token:
            visitor = tokens.read(hello.token)  # ChatProtocolError: bad or expired
            if visitor.entry_point_id != self.entry.id:
                raise ChatProtocolError("bad-token", "the token is for another chat")
        if visitor is None:
            visitor = VisitorToken(tokens.new_visitor_id(), self.entry.id)
        self.visitor = visitor
        self.page, self.referrer = hello.page, hello.referrer
        self.lang = hello.lang[:2].lower() if hello.lang else None
        self.state = await self.chat.visitor(self.entry, visitor.visitor_id)
        self.follow(self.state.thread_id)
        history = (
            []
            if self.state.thread_id is None
            else await self.chat.history(self.state.thread_id, hello.last_seen)
        )
        await self.send(
            {
                "t": "welcome",
                "token": tokens.issue(visitor),  # refreshed: it expires a week after the last visit
                "visitor": visitor.visitor_id,
                "phase": self.state.phase,
                "config": _config(self.entry, self.chat.is_open(self.entry)),
                "messages": history,
            }
        )
        await self.queue_update(force=True)

    async def queue_update(self, force: bool = False) -> None:
        turn = self.state.turn
        if turn is None or not turn.open or turn.state == "connected":
            return
        figures = self.chat.queue_figures(turn.id)
        if figures is None:
            # No longer waiting in the engine: read the turn again (connected, or ended).
            self.state = await self.chat.visitor(self.entry, self.state_visitor)
            await self.send({"t": "phase", "phase": self.state.phase})
            return
        if force or figures != self.last_queue:
            self.last_queue = figures
            position, wait = figures
            await self.send(
                {"t": "queue", "position": position, "wait_s": None if wait is None else round(wait)}
            )

    @property
    def state_visitor(self) -> str:
        assert self.visitor is not None
        return self.visitor.visitor_id

    async def message(self, send: Send) -> None:
        if not self.rate.allow(time.monotonic()):
            raise ChatProtocolError("rate-limited", "too many messages; wait a moment", send.cid)
        files = tuple(self._file(ref, send.cid) for ref in send.files)
        received = await self.chat.send(
            self.entry,
            self.state_visitor,
            send.cid,
            send.text,
            files=files,
            prechat=send.prechat,
            page=self.page,
            referrer=self.referrer,
            language=self.lang,
            state=self.state,
        )
        # Acknowledged after the commit (the service returned): the widget stops resending it.
        await self.send({"t": "ack", "cid": send.cid, "id": received.message_id})
        turn = self.state.turn
        if received.outcome != "appended" or turn is None or received.interaction_id != turn.id:
            self.state = (
                await self.chat.visitor(self.entry, self.state_visitor)
                if received.outcome == "duplicate"
                else await self.chat.after(received)
            )
            self.follow(self.state.thread_id)
            await self.send({"t": "phase", "phase": self.state.phase})
            await self.queue_update(force=True)

    def _file(self, ref: str, cid: str) -> InboundAttachment:
        try:
            visitor_id, sha256, size, name, kind = _file_refs(self.c).loads(ref)
        except (BadSignature, ValueError, TypeError):
            raise ChatProtocolError("unknown-file", "upload the file again", cid) from None
        if visitor_id != self.state_visitor:
            raise ChatProtocolError("unknown-file", "upload the file again", cid)
        return InboundAttachment(sha256=sha256, size=int(size), filename=name, content_type=kind)

    async def handle(self, command: Any) -> None:
        if isinstance(command, Send):
            await self.message(command)
        elif isinstance(command, Typing):
            now = time.monotonic()
            if not command.on or now - self.last_typing >= TYPING_INTERVAL_S:
                self.last_typing = now if command.on else 0.0
                self.chat.visitor_typing(self.state, command.on)
        elif isinstance(command, Got):
            await self.chat.visitor_receipt(self.state, command.id, "delivered")
        elif isinstance(command, Seen):
            await self.chat.visitor_receipt(self.state, command.id, "read")
        elif isinstance(command, Rate):
            await self.chat.rate(self.state, command.score, command.comment)
            await self.send({"t": "rated"})
        elif isinstance(command, Transcript):
            await self.chat.transcript(self.state, command.email)
            await self.send({"t": "transcript-queued"})
        elif isinstance(command, Offline):
            ticket = await self.chat.offline(
                self.entry, command.name, command.email, command.phone, command.text
            )
            await self.send({"t": "offline-received", "ticket": ticket})
        elif isinstance(command, End):
            await self.chat.end(self.state)
            self.state = await self.chat.visitor(self.entry, self.state_visitor)
            await self.send({"t": "phase", "phase": self.state.phase})
        elif isinstance(command, Ping):
            await self.send({"t": "pong"})
        elif isinstance(command, Hello):
            raise ChatProtocolError("bad-frame", "hello twice")

    async def reader(self) -> None:
        while True:
            raw = await self.ws.receive_text()
            try:
                await self.handle(parse_frame(raw))
            except ChatProtocolError as error:
                await self.send({"t": "error", "code": error.code, "cid": error.cid, "message": str(error)})
            except DomainError as error:
                cid = None
                with contextlib.suppress(ChatProtocolError, ValueError):
                    parsed = parse_frame(raw)
                    cid = parsed.cid if isinstance(parsed, Send) else None
                await self.send({"t": "error", "code": error.error_id, "cid": cid, "message": str(error)})

    async def forwarder(self) -> None:
        while True:
            if self.sub is None:
                self.wake.clear()
                await self.wake.wait()
                continue
            sub = self.sub
            message = await sub.queue.get()
            if sub is not self.sub:
                continue
            if message.type == _QUEUE_TICK:
                await self.queue_update()
            elif message.type == "msg":
                await self.send(message.data)
                if self.state.phase == "waiting":
                    self.state = await self.chat.visitor(self.entry, self.state_visitor)
                    await self.send({"t": "phase", "phase": self.state.phase})
            elif message.type == "ended":
                self.state = await self.chat.visitor(self.entry, self.state_visitor)
                await self.send({"t": "ended"})
            else:
                await self.send({"t": message.type, **message.data})

    def close(self) -> None:
        if self.sub is not None:
            self.c.bus.unsubscribe(self.sub)
            self.sub = None


@router.websocket("/chat/ws")
async def socket(ws: WebSocket) -> None:
    """The widget's socket (``?key=`` the entry point's widget key): docs/chat.md, "The protocol"."""
    c: Container = ws.app.state.container
    key = ws.query_params.get("key", "")[:320]
    try:
        entry = await c.chat.entry(key)
    except DomainError:
        entry = None
    own = own_origin(ws.url.scheme, ws.headers.get("host", ""))
    # Accepted, then closed with a reason the widget reads (a refused handshake looks like an outage,
    # and the widget would keep reconnecting); nothing is read from a refused page.
    await ws.accept()
    if entry is None or not origin_allowed(entry, ws.headers.get("origin"), own):
        await ws.close(code=CLOSE_NO_ENTRY if entry is None else CLOSE_ORIGIN)
        return
    session = _Socket(ws, c, entry)
    ticker = _ticker(ws)
    try:
        try:
            first = parse_frame(await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S))
            if not isinstance(first, Hello):
                raise ChatProtocolError("bad-frame", "the first frame is hello")
            await session.hello(first)
        except ChatProtocolError as error:
            await session.send({"t": "error", "code": error.code, "message": str(error)})
            await ws.close(
                code=CLOSE_TOKEN if error.code in ("bad-token", "token-expired") else CLOSE_NO_HELLO
            )
            return
        except TimeoutError:
            await ws.close(code=CLOSE_NO_HELLO)
            return
        ticker.add(session)
        tasks = {asyncio.create_task(session.reader()), asyncio.create_task(session.forwarder())}
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        for task in done:
            failure = task.exception()
            if failure is not None and not isinstance(failure, WebSocketDisconnect | RuntimeError):
                log.error("chat socket failed", exc_info=failure)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ticker.discard(session)
        session.close()
