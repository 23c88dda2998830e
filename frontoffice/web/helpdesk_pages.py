"""The help desk and sales pages: ticket work lists, the ticket page, the deals board, the deal list,
a deal's page, the forecast, a company's page, the knowledge base with its categories, the canned
answers and the help desk's settings (SLA policies, pipelines, the reopen window and surveys).

Thin shells like the other pages (:mod:`frontoffice.web.ui`): each checks the browser session and the
page's permission, renders its template in the shared layout with the CSRF token and the translated
strings, and leaves the rest to an ES module in ``static/js`` that calls the REST API. The pages of one
object (a ticket, a deal, a company) also read it first, so one the user may not see (another
project's) answers 404 before any script runs, as the API would.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from frontoffice.domain.exceptions import DomainError, NotFound
from frontoffice.i18n import gettext
from frontoffice.services.context import Actor

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
    "deal_list": ("deal_list.html", "deals.read", N_("Deal list")),
    "deal": ("deal.html", "deals.read", N_("Deal")),
    "forecast": ("forecast.html", "deals.read", N_("Sales forecast")),
    "company": ("company.html", "companies.read", N_("Company")),
    "kb": ("kb.html", "tickets.read", N_("Knowledge base")),
    "kb_categories": ("kb_categories.html", "agents.supervise", N_("Knowledge base categories")),
    "canned": ("canned.html", "agents.supervise", N_("Canned answers")),
    "helpdesk_settings": ("helpdesk_settings.html", "agents.supervise", N_("Help desk settings")),
}

#: Pages of one object (read by :func:`_read`): page id -> the title of its "not found" page. The page
#: answers 404 for an object the user may not see, as the API does.
_OBJECT_PAGES = {
    "ticket": N_("No such ticket"),
    "deal": N_("No such deal"),
    "company": N_("No such company"),
}


async def _read(request: Request, page: str, actor: Actor, object_id: int) -> tuple[object, str]:
    """The object of a one-object page and its title."""
    c = container(request)
    if page == "ticket":
        ticket = await c.tickets.get(actor, object_id)
        return ticket, f"#{ticket.id} {ticket.subject}"
    if page == "deal":
        deal = await c.deals.get(actor, object_id)
        return deal, deal.title
    company = await c.companies.overview(actor, object_id)
    return company.company, company.company.name


async def _render(request: Request, page: str, **extra: object) -> Response:
    session = await page_session(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    actor, csrf = session
    template, permission, title = PAGES[page]
    if not allowed(actor, permission):
        return RedirectResponse(home_page(actor), status_code=303)
    context = page_context(request, actor, csrf, page) | {"title": gettext(title)}
    if page in _OBJECT_PAGES:
        object_id = int(str(extra["object_id"]))
        try:
            found, heading = await _read(request, page, actor, object_id)
        except NotFound:
            context |= {"title": gettext(_OBJECT_PAGES[page]), page: None, "object_id": object_id}
            return templates.TemplateResponse(request, template, context, status_code=404)
        except DomainError:
            return RedirectResponse(home_page(actor), status_code=303)
        context |= {"title": heading, page: found, "object_id": object_id}
        if page == "ticket":
            context["ticket_id"] = object_id
    context |= {
        "can_supervise": allowed(actor, "agents.supervise"),
        "can_write_deals": allowed(actor, "deals.write"),
        "can_write_companies": allowed(actor, "companies.write"),
        "can_write_settings": allowed(actor, "settings.write"),
    }
    return templates.TemplateResponse(request, template, context)


@router.get("/tickets", response_class=HTMLResponse)
async def tickets_page(request: Request) -> Response:
    """Work lists: views with counts, filters, sorting, pages, bulk actions, SLA time left."""
    return await _render(request, "tickets")


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(request: Request, ticket_id: int) -> Response:
    """One ticket: timeline, properties, customer, watchers, notes, reply, merge and split, history."""
    return await _render(request, "ticket", object_id=ticket_id)


@router.get("/deals", response_class=HTMLResponse)
async def deals_page(request: Request) -> Response:
    """The deals board: a pipeline's stages as columns, deals dragged between them."""
    return await _render(request, "deals")


@router.get("/deals/list", response_class=HTMLResponse)
async def deal_list_page(request: Request) -> Response:
    """The deal list: filters (owner, stage, pipeline, close month, open only), sorting, pages."""
    return await _render(request, "deal_list")


@router.get("/deals/forecast", response_class=HTMLResponse)
async def forecast_page(request: Request) -> Response:
    """The sales forecast: the weighted pipeline by close month, owner and currency."""
    return await _render(request, "forecast")


@router.get("/deals/{deal_id}", response_class=HTMLResponse)
async def deal_page(request: Request, deal_id: int) -> Response:
    """One deal: its fields (edited in place), stage, customer and company, and its activities."""
    return await _render(request, "deal", object_id=deal_id)


@router.get("/companies/{company_id}", response_class=HTMLResponse)
async def company_page(request: Request, company_id: int) -> Response:
    """One company: its name and website (edited in place), its people, their tickets and deals."""
    return await _render(request, "company", object_id=company_id)


@router.get("/kb", response_class=HTMLResponse)
async def kb_page(request: Request) -> Response:
    """Knowledge base: search and read; supervisors write drafts and publish."""
    return await _render(request, "kb")


@router.get("/kb/categories", response_class=HTMLResponse)
async def kb_categories_page(request: Request) -> Response:
    """The knowledge base's categories: add, rename, reorder, delete (supervisors)."""
    return await _render(request, "kb_categories")


@router.get("/canned-answers", response_class=HTMLResponse)
async def canned_page(request: Request) -> Response:
    """Canned answers and macros (supervisors and administrators)."""
    return await _render(request, "canned")


@router.get("/helpdesk-settings", response_class=HTMLResponse)
async def helpdesk_settings_page(request: Request) -> Response:
    """SLA policies, sales pipelines and the help desk's settings (supervisors; settings: administrators)."""
    return await _render(request, "helpdesk_settings")
