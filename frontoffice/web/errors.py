"""One error body for the whole API: ``{"error_id", "message", "details"}``.

Lower-level exceptions are translated here, at the boundary, so no handler needs a try/except.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from frontoffice.domain.exceptions import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from frontoffice.i18n import gettext as _

__all__ = [
    "ApiError",
    "database_error_answer",
    "domain_error_response",
    "error_body",
    "install_error_handlers",
]

log = logging.getLogger("frontoffice.web")

_STATUS: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (InvalidInput, 400),
    (Conflict, 409),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Throttled, 429),
    (Unavailable, 503),
    (Gone, 410),
]


class ApiError(Exception):
    """An error raised by the web layer itself (bad header, body too large, ...)."""

    def __init__(self, status_code: int, error_id: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_id = error_id
        self.message = message
        self.details = details


def error_body(error_id: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error_id": error_id, "message": message, "details": details or {}}


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def domain_error_response(
    exc: DomainError,
    *,
    has_cookies: bool = False,
    status_code: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The answer to a use case's refusal (what the exception handler sends), for a route that must
    add headers of its own (the public forms' CORS headers) or choose the status."""
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    details = _json_safe(exc.details)
    if isinstance(exc, InvalidInput) and isinstance(details.get("errors"), list):
        # A refusal located at fields (a routing rule's column) answers as a schema error does:
        # 422 with details.errors[].loc, so a form shows every such error next to its field.
        status = 422
        details["errors"] = [
            {**error, "message": _(str(error.get("message", "")))} for error in details["errors"]
        ]
    extra = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, Throttled) else {}
    if isinstance(exc, Unauthenticated) and not has_cookies:
        extra = {"WWW-Authenticate": "Bearer"}
    message = _(exc.message)
    if isinstance(exc, Forbidden) and isinstance(exc.details.get("permission"), str):
        # Name the refused permission, so the user knows what to ask an administrator for.
        message = _("You do not have the permission {permission} for this action").format(
            permission=exc.details["permission"]
        )
    return JSONResponse(
        error_body(exc.error_id, message, details),
        status_code=status_code or status,
        headers={**extra, **(headers or {})} or None,
    )


def N_(message: str) -> str:
    """Mark a message for the catalogs; it is translated when the answer is sent."""
    return message


# SQLSTATE (PostgreSQL, class 22 "data exception") of a character the database cannot store: NUL
# (22021 character_not_in_repertoire) or one its encoding lacks (22P05 untranslatable_character).
_BAD_CHARACTER_STATES = frozenset({"22021", "22P05"})


def database_error_answer(exc: DBAPIError) -> tuple[int, str, str] | None:
    """The client's error behind a database error, as (status, error_id, message); ``None`` when it is
    the server's (a 500). A value PostgreSQL refuses (SQLSTATE class 22) or the driver refuses before
    sending it (asyncpg's ``DataError``, a ``ValueError`` without any SQLSTATE: an id beyond 64 bits)
    is the request's fault. Errors without an SQLSTATE (SQLite's, the driver's own) are read safely:
    ``sqlstate`` may be missing or ``None``."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    state = sqlstate if isinstance(sqlstate, str) else ""
    if state in _BAD_CHARACTER_STATES:
        return 422, "invalid-character", N_("The request contains a character that cannot be stored")
    cause = getattr(exc.orig, "__cause__", None)
    if state.startswith("22") or isinstance(exc.orig, ValueError) or isinstance(cause, ValueError):
        return 400, "value-out-of-range", N_("A number in the request is out of range")
    return None


# The methods a 405's ``Allow`` may name (the API's routes use no others).
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the request's path answers (for ``Allow``): each is tried against
    the routes (included routers match as a whole, so their routes' methods are not listed)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc, has_cookies=bool(request.cookies))

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.error_id, _(exc.message), _json_safe(exc.details)), status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                # Our own messages (a blank field, ...) are in the catalogs; pydantic's stay as they are.
                "message": _(err.get("msg", "")),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return JSONResponse(
            error_body("validation-failed", _("The request is not valid"), {"errors": fields}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        ids = {404: "not-found", 405: "method-not-allowed", 401: "not-authenticated", 413: "body-too-large"}
        error_id = ids.get(exc.status_code, f"http-{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
        details = getattr(exc, "details", None)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # RFC 9110 §15.5.6: a 405 lists the methods the resource supports, those of every route
            # of the path (a path's methods are often separate routes: GET and PATCH /queues/{id}).
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(
            error_body(error_id, _(message), _json_safe(details) if isinstance(details, dict) else None),
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # An id or number beyond the database's 64-bit integers: nothing can have it.
        return JSONResponse(
            error_body("value-out-of-range", _("A number in the request is out of range")), status_code=400
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        answer = database_error_answer(exc)
        if answer is None:
            log.exception("database error", extra={"path": request.url.path})
            return JSONResponse(error_body("internal-error", _("Internal server error")), status_code=500)
        status, error_id, message = answer
        return JSONResponse(error_body(error_id, _(message)), status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(error_body("internal-error", _("Internal server error")), status_code=500)
