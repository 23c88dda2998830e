"""``Idempotency-Key`` for every API POST: a repeat of a request returns the first answer.

The browser sends a key generated per user action on every state-changing request; integrations
send one to retry safely after a timeout. For a POST under ``/api/v1`` with the header, by a signed-in
user, this middleware:

- claims (user, route, key) in the store before the request runs (``store/idempotency.py``);
- a repeat with the same key, method, path and body gets the first answer — status, content type and
  body — with ``Idempotent-Replayed: true``, and nothing runs again;
- the same key with another request is ``409 idempotency-key-reused``;
- a repeat while the first still runs is ``409 idempotency-key-in-progress``. It does not wait: a
  waiting request would hold a connection and, with several nodes, poll the store; the browser ignores
  the answer to a double click, and an integration retries later and then gets the first answer;
- an answer of 500 or more (or an exception) releases the key, so a retry runs the request again;
- keys are remembered for 24 hours (:data:`IDEMPOTENCY_KEY_TTL`).

PUT, PATCH and DELETE ignore the header (harmless): they set a state, so repeating them is safe.
The public web forms (``/api/v1/public/forms/...``: no user) keep their keys per form in the contact's
transaction. ``POST /interactions`` keeps its own mechanism, the key stored in the contact's own transaction
(global keys, ``created: false`` on a repeat), which SIP Call-IDs use too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from frontoffice.domain.exceptions import Conflict, DomainError
from frontoffice.i18n import gettext
from frontoffice.store.idempotency import IDEMPOTENCY_KEY_TTL, IdempotentRequests, StoredAnswer

from .errors import ApiError
from .middleware import replaying
from .security import current_actor

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENCY_KEY_TTL",
    "IDEMPOTENT_PATHS_EXEMPT",
    "MAX_KEY_LENGTH",
    "Idempotency",
    "checked_key",
    "document_header",
    "is_exempt",
    "request_fingerprint",
    "stored_key",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = b"idempotent-replayed"
API_PREFIX = "/api/v1/"
# The column's width; longer keys are refused rather than cut (two keys must never become one).
MAX_KEY_LENGTH = 200

# POSTs the middleware leaves alone: signing in and out set cookies, which must never be stored and
# replayed; ``/interactions`` honours the key itself, in the contact's transaction (see above).
IDEMPOTENT_PATHS_EXEMPT = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/interactions",
        # Jobs honour the key themselves (services/jobs.py): a repeat answers the first job with its
        # Location, and an upload of tens of megabytes is not read into memory to be fingerprinted.
        "/api/v1/customers/import",
        "/api/v1/customers/export",
    }
)
# POSTs that create a job (see above), by the end of their path.
JOB_PATH_SUFFIXES = ("/personal-data",)
# POSTs whose answer holds a secret shown once (a new API token, of which only the SHA-256 is kept):
# storing the answer to replay it would keep the secret in the database. A double click there makes a
# second token, which the user sees in the list and can revoke.
SECRET_ANSWER_SUFFIXES = ("/tokens",)


# The public web forms have no user to key by; they honour the key themselves, per form.
PUBLIC_FORMS_PREFIX = "/api/v1/public/forms/"


def is_exempt(path: str) -> bool:
    """Whether a POST to ``path`` is left alone by the middleware (see the constants above)."""
    if path.startswith(PUBLIC_FORMS_PREFIX):
        return True
    path = path.rstrip("/")
    return (
        path in IDEMPOTENT_PATHS_EXEMPT
        or path.endswith(SECRET_ANSWER_SUFFIXES)
        or path.endswith(JOB_PATH_SUFFIXES)
    )


class Idempotency:
    """ASGI middleware applying ``Idempotency-Key`` to API POSTs (see the module's docstring)."""

    def __init__(self, app: ASGIApp, store: IdempotentRequests, secret: str) -> None:
        self.app = app
        self.store = store
        self.secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body()
        replay_body = replaying(body, receive)
        try:
            key = checked_key(request.headers[IDEMPOTENCY_HEADER])
        except ApiError as error:
            await _send_error(send, error.status_code, error.error_id, error.message, error.details)
            return
        try:
            actor = await current_actor(request)
        except (DomainError, ApiError):
            # Not signed in (or no CSRF token): the route answers that itself, and runs nothing.
            await self.app(scope, replay_body, send)
            return
        if actor.user_id is None:
            await self.app(scope, replay_body, send)
            return
        method, path, query = scope["method"], scope["path"], scope.get("query_string", b"")
        fingerprint = request_fingerprint(self.secret, method, path, query, body)
        user_key = stored_key(method, path, key)
        try:
            stored = await self.store.claim(actor.user_id, user_key, fingerprint)
        except Conflict as exc:
            await _send_error(send, 409, exc.error_id, exc.message, exc.details)
            return
        if stored is not None:
            await _replay(send, stored)
            return
        await self._run_and_remember(scope, replay_body, send, actor.user_id, user_key)

    @staticmethod
    def _applies(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        path: str = scope["path"]
        if not path.startswith(API_PREFIX) or is_exempt(path):
            return False
        return any(name == b"idempotency-key" for name, _ in scope.get("headers", []))

    async def _run_and_remember(
        self, scope: Scope, receive: Receive, send: Send, user_id: int, key: str
    ) -> None:
        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await self.store.release(user_id, key)
            raise
        if status >= 500:
            await self.store.release(user_id, key)
        else:
            await self.store.finish(user_id, key, StoredAnswer(status, content_type, b"".join(chunks)))


def checked_key(key: str) -> str:
    """An ``Idempotency-Key`` as sent, refused (``400 invalid-idempotency-key``) when it is empty or
    longer than :data:`MAX_KEY_LENGTH`: an empty key would make every keyless-looking request of a
    client "the same", a longer one could not be stored whole."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            400,
            "invalid-idempotency-key",
            "The Idempotency-Key header must have 1 to 200 characters",
            max_length=MAX_KEY_LENGTH,
        )
    return key


def document_header(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the optional ``Idempotency-Key`` header to every POST this middleware serves, in the
    OpenAPI schema (``/api/openapi.json``), so clients generated from it send it."""
    parameter = {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        "description": "A repeat with the same key and body by the same user answers the first answer "
        "for 24 hours (see docs/api.md).",
    }
    for path, operations in schema.get("paths", {}).items():
        post = operations.get("post")
        if post is None or not path.startswith(API_PREFIX) or is_exempt(path):
            continue
        parameters = post.setdefault("parameters", [])
        if not any(p.get("name") == IDEMPOTENCY_HEADER for p in parameters):
            parameters.append(parameter)
    return schema


def stored_key(method: str, path: str, key: str) -> str:
    """The key as stored: the client's key within its route, so one user action may send one key on
    each of its requests (complete a contact, then open a ticket) without the second looking "reused"."""
    return hashlib.sha256(f"{method} {path}\n{key}".encode()).hexdigest()


def request_fingerprint(secret: bytes, method: str, path: str, query: bytes, body: bytes) -> str:
    """What must be equal for a repeat to be "the same request": method, path, query and body.

    An HMAC with the server's secret key, not a bare SHA-256: a body may hold a password (a new user),
    and a stored plain hash of a known-shaped body could be guessed offline from a database copy.
    """
    digest = hmac.new(secret, digestmod=hashlib.sha256)
    for part in (method.encode(), b" ", path.encode(), b"?", query, b"\n", body):
        digest.update(part)
    return digest.hexdigest()


async def _replay(send: Send, stored: StoredAnswer) -> None:
    headers = [(b"content-length", str(len(stored.body)).encode()), (REPLAYED_HEADER, b"true")]
    if stored.content_type is not None:
        headers.append((b"content-type", stored.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": stored.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


async def _send_error(send: Send, status: int, error_id: str, message: str, details: dict[str, Any]) -> None:
    body = json.dumps({"error_id": error_id, "message": gettext(message), "details": details}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
