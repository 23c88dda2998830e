"""The Planning page: staffing, lines, a day plan and the simulation in the browser.

A thin shell like the other pages: it checks the browser session (supervisors and administrators,
who hold ``stats.read``), renders ``planning.html`` in the layout every page shares (top bar,
navigation, language, sign out) with the session's CSRF token, and leaves the rest to
``static/planning.js``, which calls ``/api/v1/planning/*`` and draws the charts as SVG.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from frontoffice.domain.exceptions import DomainError
from frontoffice.i18n import gettext

from .pages import templates
from .ui import page_context, page_session

__all__ = ["PERMISSION", "router"]

#: Who may open the page: the same permission as the planning API.
PERMISSION = "stats.read"

router = APIRouter(include_in_schema=False)


@router.get("/planning", response_class=HTMLResponse)
async def planning_page(request: Request) -> Response:
    """Staffing curve, service level versus agents, lines versus blocking, and the simulation."""
    session = await page_session(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    actor, csrf = session
    try:
        actor.require(PERMISSION)
    except DomainError:
        return RedirectResponse("/login", status_code=303)
    context = page_context(request, actor, csrf, "planning") | {"title": gettext("Planning")}
    return templates.TemplateResponse(request, "planning.html", context)
