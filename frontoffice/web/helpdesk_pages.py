"""The help desk and sales pages: ticket work lists, the ticket page, the deals board, the knowledge
base and the canned answers.

Thin shells like the other pages (:mod:`frontoffice.web.ui`): each checks the browser session and the
page's permission, renders its template in the shared layout with the CSRF token and the translated
strings, and leaves the rest to an ES module in ``static/js`` that calls the REST API. The ticket page
also reads the ticket first, so a ticket the user may not see (another project's) answers 404 before
any script runs, as the API would.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from frontoffice.domain.exceptions import DomainError, NotFound
from frontoffice.i18n import gettext

from .pages import templates
from .security import container
from .ui import allowed, home_page, page_context, page_session

__all__ = ["PAGES", "router"]

router = APIRouter(include_in_schema=False)


def N_(message: str) -> str:
    return message


#: page id -> (template, permission, title). Canned answers and macros shared by everyone are made
#: by supervisors, so their page is theirs; agents pick answers in the ticket page's reply box.
PAGES: dict[str, tuple[str, str, str]] = {
    "tickets": ("tickets.html", "tickets.read", N_("Tickets")),
    "ticket": ("ticket.html", "tickets.read", N_("Ticket")),
    "deals": ("deals.html", "deals.read", N_("Deals")),
    "kb": ("kb.html", "tickets.read", N_("Knowledge base")),
    "canned": ("canned.html", "agents.supervise", N_("Canned answers")),
}


async def _render(request: Request, page: str, **extra: object) -> Response:
    session = await page_session(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    actor, csrf = session
    template, permission, title = PAGES[page]
    if not allowed(actor, permission):
        return RedirectResponse(home_page(actor), status_code=303)
    context = page_context(request, actor, csrf, page) | {"title": gettext(title)}
    if page == "ticket":
        ticket_id = int(str(extra["ticket_id"]))
        try:
            ticket = await container(request).tickets.get(actor, ticket_id)
        except NotFound:
            context |= {"title": gettext("No such ticket"), "ticket": None, "ticket_id": ticket_id}
            return templates.TemplateResponse(request, template, context, status_code=404)
        except DomainError:
            return RedirectResponse(home_page(actor), status_code=303)
        context |= {"title": f"#{ticket.id} {ticket.subject}", "ticket": ticket, "ticket_id": ticket.id}
    context |= {
        "can_supervise": allowed(actor, "agents.supervise"),
        "can_write_deals": allowed(actor, "deals.write"),
    }
    return templates.TemplateResponse(request, template, context)


@router.get("/tickets", response_class=HTMLResponse)
async def tickets_page(request: Request) -> Response:
    """Work lists: views with counts, filters, sorting, pages, bulk actions, SLA time left."""
    return await _render(request, "tickets")


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(request: Request, ticket_id: int) -> Response:
    """One ticket: timeline, properties, customer, watchers, notes, reply, merge and split, history."""
    return await _render(request, "ticket", ticket_id=ticket_id)


@router.get("/deals", response_class=HTMLResponse)
async def deals_page(request: Request) -> Response:
    """The deals board: a pipeline's stages as columns, deals dragged between them."""
    return await _render(request, "deals")


@router.get("/kb", response_class=HTMLResponse)
async def kb_page(request: Request) -> Response:
    """Knowledge base: search and read; supervisors write drafts and publish."""
    return await _render(request, "kb")


@router.get("/canned-answers", response_class=HTMLResponse)
async def canned_page(request: Request) -> Response:
    """Canned answers and macros (supervisors and administrators)."""
    return await _render(request, "canned")
