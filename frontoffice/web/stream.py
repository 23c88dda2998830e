"""``/api/v1/stream``: offers, state changes and queue figures pushed over a WebSocket.

Authenticate with the browser session cookie, an ``Authorization: Bearer`` header, or a ``token``
query parameter (browsers cannot set headers on WebSockets). A socket authenticated by the cookie
must come from this site's own pages (its ``Origin``; see :func:`origin_allowed`). Agents receive
what concerns them; supervisors and admins receive everything, except that a user limited to some
projects receives nothing about the queues and contacts of other projects. The first message is a
snapshot, so a client that reconnects is correct again without replaying history.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from frontoffice.bootstrap import Container
from frontoffice.bus import BusMessage, Subscription
from frontoffice.config import Settings
from frontoffice.domain.exceptions import DomainError, Unauthenticated
from frontoffice.services.context import Actor

from .security import SESSION_COOKIE, client_ip, session_from_cookie

__all__ = ["origin_allowed", "router"]

log = logging.getLogger("frontoffice.stream")
router = APIRouter()

# Close codes in the private range (RFC 6455 §7.4.2): 4401 unauthenticated, 4403 a page of another
# site, 4408 too slow. (Refused before the handshake completes, the client sees HTTP 403.)
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FOREIGN_ORIGIN = 4403
CLOSE_TOO_SLOW = 4408


async def _actor(ws: WebSocket, c: Container) -> Actor:
    ip = client_ip(ws)
    token = ws.query_params.get("token")
    authorization = ws.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if token:
        actor = await c.auth.token_actor(token, ip=ip)
        # The stream shows contacts as they happen: a token needs a scope that reads them.
        actor.require("interactions.read")
        return actor
    cookie = ws.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("Please sign in", error_id="not-authenticated")
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host", ""), c.settings):
        raise _ForeignOrigin
    actor, _ = await session_from_cookie(c, cookie, ip=ip)
    return actor


class _ForeignOrigin(Exception):
    """A browser page of another site opened the socket with the user's session cookie."""


def _origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-case, without a default port; anything that is not
    a URL (the ``null`` origin of sandboxed pages) as it is, lower-case."""
    raw = url.strip().rstrip("/").lower()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:  # a port that is not a number
        return raw
    if not parts.scheme or not parts.hostname:
        return raw
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == default else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}"


def origin_allowed(origin: str | None, host: str, settings: Settings) -> bool:
    """Whether a socket authenticated by the session cookie may open from ``origin``: cross-site
    WebSocket hijacking is a page of another site opening this socket in the user's browser, which
    sends the cookie along but also its own ``Origin`` (RFC 6455 §10.2). Allowed: this site's own
    origin (``public_url``, or the origin whose host is the request's ``Host``, as behind a proxy
    that terminates TLS) and the origins of ``allowed_origins``. A client that sends no ``Origin``
    is no browser (the cookie is then its own secret) and is let in; token authentication needs no
    check at all (a page cannot make a browser add a token)."""
    if origin is None:
        return True
    theirs = _origin_of(origin)
    if theirs == _origin_of(settings.public_url):
        return True
    if host and urlsplit(theirs).netloc == host.lower():
        return True
    return theirs in {_origin_of(o) for o in settings.allowed_origins}


def audience_keys(actor: Actor) -> list[str]:
    """The bus audiences a user's socket belongs to: the user's own agent events; supervisors and
    administrators also everything addressed to supervisors. Messages for ``all`` reach everyone."""
    keys = [f"agent:{actor.user_id}"]
    if actor.can("agents.supervise"):  # a token needs a scope that grants it
        keys.append("supervisors")
    return keys


def project_filter(actor: Actor) -> Callable[[BusMessage], bool] | None:
    """For a user limited to some projects: pass messages of those projects, of no project (agent
    states, queues without a project) and about the user's own work; ``None`` (no filter) otherwise."""
    if actor.project_ids is None:
        return None
    own = f"agent:{actor.user_id}"
    projects = actor.project_ids

    def accepts(message: BusMessage) -> bool:
        return message.project_id is None or message.project_id in projects or own in message.audience

    return accepts


async def _snapshot(c: Container, actor: Actor) -> dict[str, Any]:
    snapshot: dict[str, Any] = {"user_id": actor.user_id, "role": actor.role.value}
    if actor.can("agents.supervise"):
        snapshot["wallboard"] = (await c.wallboard.wallboard(actor, c.stats.live())).model_dump()
    with contextlib.suppress(DomainError):
        snapshot["agent"] = (await c.desk.my_status(actor)).model_dump()
    return snapshot


@router.websocket("/api/v1/stream")
async def stream(ws: WebSocket) -> None:
    c: Container = ws.app.state.container
    try:
        actor = await _actor(ws, c)
    except DomainError:
        await ws.close(code=CLOSE_UNAUTHENTICATED)
        return
    except _ForeignOrigin:
        log.warning("stream refused: foreign origin", extra={"origin": ws.headers.get("origin")})
        await ws.close(code=CLOSE_FOREIGN_ORIGIN)
        return
    await ws.accept()
    sub = c.bus.subscribe(project_filter(actor), keys=audience_keys(actor))
    try:
        await ws.send_text(json.dumps({"type": "hello", "data": await _snapshot(c, actor)}))
        sender = asyncio.create_task(_forward(ws, sub))
        receiver = asyncio.create_task(_drain_client(ws))
        _, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        c.bus.unsubscribe(sub)


async def _forward(ws: WebSocket, sub: Subscription) -> None:
    """Send the subscriber's messages in order; a subscriber that fell behind is told to reconnect."""
    try:
        while True:
            message = await sub.queue.get()
            if sub.overflowed:
                await ws.close(code=CLOSE_TOO_SLOW)
                return
            await ws.send_text(message.json())
    except (WebSocketDisconnect, RuntimeError):
        return


async def _drain_client(ws: WebSocket) -> None:
    """Read (and answer pings from) the client until it goes away."""
    try:
        while True:
            text = await ws.receive_text()
            if text == "ping":
                await ws.send_text(json.dumps({"type": "pong", "data": {}}))
    except (WebSocketDisconnect, RuntimeError):
        return
