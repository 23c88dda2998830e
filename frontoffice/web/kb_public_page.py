"""The public, read-only knowledge base of a project (``/help/<project code>``): no sign-in,
server-rendered, in the reader's language (``?lang=``, else the language chosen on the page, else the
browser's). Search (every word, on each database's full-text engine) or the list of published
articles, and one article's published text (``/help/<code>/articles/<id>``); drafts are never shown.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from frontoffice.domain.exceptions import NotFound
from frontoffice.i18n import LANGUAGES, current_language

from .pages import templates
from .security import container

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _language(lang: str | None) -> None:
    if lang in LANGUAGES:
        current_language.set(lang)


@router.get("/help/{project_code}", response_class=HTMLResponse)
async def public_kb_page(
    request: Request,
    project_code: str,
    q: Annotated[str, Query(max_length=500)] = "",
    language: Literal["ru", "en", ""] = "",
    lang: str | None = None,
) -> Response:
    """The project's articles: those matching ``q``, else every published one."""
    _language(lang)
    kb = container(request).knowledge_base
    try:
        hits = await kb.public_search(project_code, q, language=language or None)
    except NotFound:
        context: dict[str, object] = {
            "project_code": project_code,
            "hits": None,
            "q": q,
            "language": language,
        }
        return templates.TemplateResponse(request, "kb_public.html", context, status_code=404)
    context = {"project_code": project_code, "hits": hits, "q": q, "language": language}
    return templates.TemplateResponse(request, "kb_public.html", context)


@router.get("/help/{project_code}/articles/{article_id}", response_class=HTMLResponse)
async def public_kb_article_page(
    request: Request, project_code: str, article_id: int, lang: str | None = None
) -> Response:
    """One published article of the project (or of no project)."""
    _language(lang)
    try:
        article = await container(request).knowledge_base.public_article(project_code, article_id)
    except NotFound:
        context: dict[str, object] = {"project_code": project_code, "article": None}
        return templates.TemplateResponse(request, "kb_public_article.html", context, status_code=404)
    context = {"project_code": project_code, "article": article}
    return templates.TemplateResponse(request, "kb_public_article.html", context)
