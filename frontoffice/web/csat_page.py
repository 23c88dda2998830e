"""The public satisfaction survey page (``/csat/<token>``): no sign-in, server-rendered, one form, in
the customer's language (``?lang=``, else the language chosen on the page, else the browser's).

Answering again is safe: a later answer within the survey's window replaces the earlier one
(services/csat.py); the form comes back with the answer given, or says the survey is closed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from frontoffice.domain.exceptions import DomainError
from frontoffice.i18n import LANGUAGES, current_language
from frontoffice.services.csat import MAX_COMMENT, RATINGS, CsatAnswerIn, PublicSurvey

from .pages import templates
from .security import container

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _language(lang: str | None) -> None:
    if lang in LANGUAGES:
        current_language.set(lang)


def _page(
    request: Request,
    token: str,
    survey: PublicSurvey | None,
    *,
    error: str | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        "csat.html",
        {
            "token": token,
            "survey": survey,
            "error": error,
            "saved": saved,
            "ratings": RATINGS,
            "max_comment": MAX_COMMENT,
        },
        status_code=status_code,
    )


@router.get("/csat/{token}", response_class=HTMLResponse)
async def survey_page(request: Request, token: str, lang: str | None = None) -> Response:
    _language(lang)
    try:
        survey = await container(request).csat.public(token)
    except DomainError:
        return _page(request, token, None, error="no-such-survey", status_code=404)
    return _page(request, token, survey)


@router.post("/csat/{token}", response_class=HTMLResponse)
async def answer_page(
    request: Request,
    token: str,
    rating: Annotated[str, Form(max_length=2)] = "",
    comment: Annotated[str, Form(max_length=MAX_COMMENT)] = "",
    lang: str | None = None,
) -> Response:
    _language(lang)
    csat = container(request).csat
    try:
        survey = await csat.public(token)
    except DomainError:
        return _page(request, token, None, error="no-such-survey", status_code=404)
    try:
        answer = CsatAnswerIn(rating=int(rating) if rating.isdigit() else 0, comment=comment)
    except ValidationError:
        return _page(request, token, survey, error="rating-required", status_code=422)
    try:
        survey = await csat.answer(token, answer)
    except DomainError as exc:
        return _page(request, token, survey, error=exc.error_id, status_code=409)
    return _page(request, token, survey, saved=True)
