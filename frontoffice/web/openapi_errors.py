"""The error answers of the API in its OpenAPI document (``/api/openapi.json``).

FastAPI documents each route's success and its 422; every route can also answer the API's other
errors, all with one body (``{"error_id", "message", "details"}``, web/errors.py). This adds them to
every operation, where they apply, so generated clients and contract tests (schemathesis) know them:

- 400 (a refused value: ``InvalidInput``, a malformed header), 404 (``no-such-...``) and 409
  (``Conflict``: a state that forbids the action, a name taken) on every operation;
- 401 and 403 on every operation but the public health checks (a missing or expired sign-in, a
  missing permission or CSRF token, a signature a provider's webhook lacks);
- 405 with its ``Allow`` header, which lists the methods the path supports;
- 413 on operations with a request body (larger than ``max_body_bytes``);
- 422 with the same error body (``details.errors`` lists each field: ``loc``, ``message``, ``type``);
- 429 on sign-in (``Retry-After``: seconds to wait).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["ERROR_SCHEMA", "document_errors"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error_id", "message", "details"],
    "properties": {
        "error_id": {"type": "string", "description": "stable, kebab-case: what went wrong"},
        "message": {"type": "string", "description": "for people, in the request's language"},
        "details": {
            "type": "object",
            "additionalProperties": True,
            "description": "what the error is about (ids, limits); for 422 ``errors``: a list of "
            "``{loc, message, type}``, one per refused field",
        },
    },
}
_REF = {"$ref": "#/components/schemas/Error"}
_PUBLIC = frozenset({"/healthz", "/readyz"})
_BODY_METHODS = frozenset({"post", "put", "patch"})
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})
_SIGN_IN = "/api/v1/auth/login"
_DESCRIPTIONS = {
    "400": "A value or header is refused (error_id names why)",
    "401": "Not signed in, or the session or token is not valid",
    "403": "The user lacks the permission (details.permission), or the CSRF token is missing",
    "404": "No such object (or one outside the user's projects), or no such route",
    "405": "The path does not support this method",
    "409": "The object's state or a taken name forbids the action",
    "413": "The request body is larger than the server accepts (details.max_bytes)",
    "422": "The request does not match the schema (details.errors)",
    "429": "Too many failed attempts: wait Retry-After seconds",
}


def _error(code: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _DESCRIPTIONS[code],
        "content": {"application/json": {"schema": dict(_REF)}},
    }
    if code == "405":
        answer["headers"] = {
            "Allow": {"description": "the methods the path supports", "schema": {"type": "string"}}
        }
    if code == "429":
        answer["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return answer


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the error answers documented on every operation (see the module)."""
    schema = copy.deepcopy(schema)
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            codes = ["400", "404", "405", "409", "422"]
            if path not in _PUBLIC:
                codes += ["401", "403"]
            if method in _BODY_METHODS:
                codes.append("413")
            if path == _SIGN_IN:
                codes.append("429")
            if path == "/readyz":
                responses.setdefault(
                    "503",
                    {
                        "description": "The database does not answer or is not migrated",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                )
            for code in codes:
                if code == "422" or code not in responses:
                    responses[code] = _error(code)
    return schema
