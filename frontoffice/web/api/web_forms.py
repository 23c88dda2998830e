"""Public web forms: their settings (administrators) and the public endpoint websites post to.

``POST /api/v1/public/forms/{public_key}`` takes no user token: the form's public key names it, its
origin allow-list answers CORS, and the service checks the rest (services/web_forms.py). Every
answer — accepted or turned away — carries the CORS headers for an allowed origin, so the page's
script can read why it was turned away.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from frontoffice.domain.exceptions import DomainError
from frontoffice.services.context import Actor
from frontoffice.services.schemas import FormAnswer, WebFormIn, WebFormOut
from frontoffice.services.web_forms import CaptchaUnavailable, FormSubmission, PublicForm

from ..errors import ApiError, domain_error_response
from ..security import client_ip, container, requires

__all__ = ["router"]

router = APIRouter()
# A preflight's answer is kept by the browser this long (seconds): the allow-list changes rarely.
PREFLIGHT_MAX_AGE_S = 600
# The fields a form has; anything else posted is ignored (a page may add its own hidden inputs).
MAX_FIELDS = 50


@router.get("/entry-points/{entry_id}/web-form", response_model=WebFormOut, tags=["web forms"])
async def get_web_form(
    request: Request, entry_id: int, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> WebFormOut:
    """The entry point's public form: key, allowed origins, captcha, and the HTML snippet to paste."""
    return await container(request).web_forms.get(actor, entry_id)


@router.put("/entry-points/{entry_id}/web-form", response_model=WebFormOut, tags=["web forms"])
async def put_web_form(
    request: Request,
    entry_id: int,
    body: WebFormIn,
    actor: Annotated[Actor, Depends(requires("routing.write"))],
) -> WebFormOut:
    """Create the public form of a ``webform`` entry point (a new public key) or change it."""
    return await container(request).web_forms.configure(actor, entry_id, body)


@router.post("/entry-points/{entry_id}/web-form/new-key", response_model=WebFormOut, tags=["web forms"])
async def new_web_form_key(
    request: Request, entry_id: int, actor: Annotated[Actor, Depends(requires("routing.write"))]
) -> WebFormOut:
    """Replace the form's public key (the old one stops working at once)."""
    return await container(request).web_forms.new_key(actor, entry_id)


@router.delete("/entry-points/{entry_id}/web-form", status_code=204, tags=["web forms"])
async def delete_web_form(
    request: Request, entry_id: int, actor: Annotated[Actor, Depends(requires("routing.write"))]
) -> Response:
    await container(request).web_forms.remove(actor, entry_id)
    return Response(status_code=204)


def _cors(form: PublicForm | None, origin: str | None) -> dict[str, str]:
    headers = {"Vary": "Origin"}
    if form is not None and origin is not None and form.allows_origin(origin):
        headers["Access-Control-Allow-Origin"] = origin
    return headers


@router.options("/public/forms/{public_key}", include_in_schema=False)
async def form_preflight(request: Request, public_key: str) -> Response:
    """CORS preflight: allowed for the form's origins only."""
    origin = request.headers.get("origin")
    try:
        form = await container(request).web_forms.public_form(public_key)
    except DomainError as exc:
        return domain_error_response(exc, headers={"Vary": "Origin"})
    if origin is None or not form.allows_origin(origin):
        raise ApiError(403, "origin-not-allowed", "This site may not post to this form", origin=origin)
    return Response(
        status_code=204,
        headers={
            **_cors(form, origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        },
    )


@router.post(
    "/public/forms/{public_key}",
    response_model=FormAnswer,
    status_code=201,
    tags=["web forms"],
    responses={
        200: {"model": FormAnswer, "description": "a repeat of an earlier submission (same key)"},
        403: {"description": "origin-not-allowed"},
        404: {"description": "no-such-form"},
        422: {"description": "invalid-form, spam-suspected, captcha-failed"},
        429: {"description": "too-many-submissions (see Retry-After)"},
        503: {"description": "captcha-unavailable: try again"},
    },
    openapi_extra={
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 150},
                "description": "a repeat with the same key answers the first contact (per form)",
            }
        ],
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "multipart/form-data": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            }
        },
    },
)
async def submit_form(request: Request, public_key: str) -> Response:
    """A website's form submission, without a user token (form-encoded or JSON): fields ``name``,
    ``email``, ``phone``, ``subject``, ``message``; the hidden honeypot ``website`` must stay empty;
    ``captcha_token`` when the form asks for a captcha. ``201`` with a ``reference`` once the contact
    is stored; ``4xx`` with ``error_id`` and a message when it is turned away. Send an
    ``Idempotency-Key`` header (or an ``idempotency_key`` field) so that a retry is answered with
    the first contact (``200``)."""
    c = container(request)
    origin = request.headers.get("origin")
    form: PublicForm | None = None
    try:
        form = await c.web_forms.public_form(public_key)
        fields = await _fields(request)
        created = await c.web_forms.submit(
            form,
            FormSubmission(
                fields=fields,
                origin=origin,
                address=client_ip(request),
                idempotency_key=request.headers.get("idempotency-key"),
            ),
        )
    except CaptchaUnavailable as exc:
        return domain_error_response(exc, status_code=503, headers=_cors(form, origin))
    except DomainError as exc:
        return domain_error_response(exc, headers=_cors(form, origin))
    except ApiError as exc:
        return JSONResponse(
            {"error_id": exc.error_id, "message": exc.message, "details": exc.details},
            status_code=exc.status_code,
            headers=_cors(form, origin),
        )
    answer = FormAnswer(reference=str(created.interaction.id), created=created.created)
    return Response(
        answer.model_dump_json(),
        status_code=201 if created.created else 200,
        media_type="application/json",
        headers=_cors(form, origin),
    )


async def _fields(request: Request) -> dict[str, str]:
    """The posted fields as text, from JSON or a form (url-encoded or multipart; files ignored)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: dict[str, Any]
    if content_type == "application/json":
        try:
            raw = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid-json", "The body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise ApiError(422, "invalid-form", "Send the fields as a JSON object")
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
        raw = {key: value for key, value in form.items() if isinstance(value, str)}
    else:
        raise ApiError(
            415, "unsupported-media-type", "Send the form form-encoded or as JSON", content_type=content_type
        )
    fields: dict[str, str] = {}
    for key, value in list(raw.items())[:MAX_FIELDS]:
        if isinstance(value, str):
            fields[str(key)] = value
        elif isinstance(value, int | float | bool):
            fields[str(key)] = str(value)
    return fields
