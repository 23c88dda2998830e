"""Who is calling: an API token (``Authorization: Bearer fo_...``) or a browser session cookie.

Browser requests that change something must carry the session's CSRF token in ``X-CSRF-Token``
(or a ``csrf_token`` form field); token-authenticated calls need none, as browsers never add them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request, WebSocket
from itsdangerous import BadSignature, URLSafeTimedSerializer

from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import Unauthenticated
from frontoffice.domain.permissions import PERMISSIONS
from frontoffice.i18n import current_language
from frontoffice.services.context import Actor

from .client_address import client_address, parse_networks
from .errors import ApiError

__all__ = [
    "SESSION_COOKIE",
    "allowed",
    "client_ip",
    "container",
    "current_actor",
    "requires",
    "session_from_cookie",
    "session_id_from_cookie",
    "session_serializer",
]

SESSION_COOKIE = "fo_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def container(request: Request | WebSocket) -> Container:
    found: Container = request.app.state.container
    return found


def session_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="frontoffice.session")


def session_id_from_cookie(c: Container, cookie: str) -> str | None:
    """The session id inside a signed, unexpired cookie, or None."""
    try:
        session_id = session_serializer(c.settings.ensure_secret_key()).loads(
            cookie, max_age=c.settings.session_max_age_s
        )
    except BadSignature:
        return None
    return str(session_id)


async def session_from_cookie(c: Container, cookie: str, *, ip: str | None) -> tuple[Actor, str]:
    """The actor behind a browser session cookie and the session's CSRF token."""
    session_id = session_id_from_cookie(c, cookie)
    if session_id is None:
        raise Unauthenticated("Your session has expired; please sign in again", error_id="session-expired")
    return await c.auth.session_actor(session_id, ip=ip)


def client_ip(request: Request | WebSocket) -> str | None:
    """The client's address: the connection's, or behind a trusted reverse proxy (the
    ``trusted_proxies`` setting) the one its ``X-Forwarded-For`` names (web/client_address.py)."""
    peer = request.client.host if request.client else None
    networks = parse_networks(tuple(container(request).settings.trusted_proxies))
    if not networks:
        return peer
    return client_address(peer, request.headers.getlist("x-forwarded-for"), networks)


async def current_actor(request: Request) -> Actor:
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    c = container(request)
    ip = client_ip(request)
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise ApiError(401, "invalid-authorization", "Use 'Authorization: Bearer <token>'")
        actor = await c.auth.token_actor(secret.strip(), ip=ip)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthenticated("Please sign in or send an API token", error_id="not-authenticated")
        actor, csrf = await session_from_cookie(c, cookie, ip=ip)
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER) or getattr(request.state, "form_csrf", None) or ""
            if not hmac.compare_digest(sent, csrf):
                raise ApiError(403, "csrf-failed", "Missing or wrong CSRF token")
    request.state.actor = actor
    # An explicit choice (the language cookie or Accept-Language) wins over the profile's language.
    if "accept-language" not in request.headers and "fo_lang" not in request.cookies:
        current_language.set(actor.language)
    return actor


async def allowed(request: Request, permission: str) -> Actor:
    """The caller, who must hold ``permission`` (what :func:`requires` checks, for code that is not a
    FastAPI dependency: the fast routes, web/fast_routes.py)."""
    actor = await current_actor(request)
    actor.require(permission)
    return actor


def requires(permission: str) -> Callable[[Request], Awaitable[Actor]]:
    """Dependency: the caller, who must hold ``permission`` (every endpoint names one)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(request: Request) -> Actor:
        return await allowed(request, permission)

    dependency.__name__ = f"requires_{permission.replace('.', '_')}"
    return dependency
