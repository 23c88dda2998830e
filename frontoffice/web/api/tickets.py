"""Tickets of the help desk: a customer's list, create (often from a contact), change, link contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from frontoffice.domain.cases import TicketPriority, TicketStatus
from frontoffice.services.canned import (
    CannedAnswerIn,
    CannedAnswerOut,
    CannedAnswerPatch,
    MacroIn,
    MacroOut,
    MacroPatch,
    RenderedAnswer,
)
from frontoffice.services.case_schemas import (
    BuiltinTicketView,
    SavedViewIn,
    SavedViewOut,
    SavedViewPatch,
    TicketBulkIn,
    TicketBulkOut,
    TicketFilters,
    TicketIn,
    TicketLinkIn,
    TicketMergeIn,
    TicketOut,
    TicketPatch,
    TicketSort,
    ViewCount,
)
from frontoffice.services.context import Actor
from frontoffice.services.csat import CsatAnswerIn, CsatReport, PublicSurvey
from frontoffice.services.helpdesk_settings import HelpdeskSettings, HelpdeskSettingsOut
from frontoffice.services.knowledge_base import (
    ArticleIn,
    ArticleOut,
    ArticlePatch,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    SearchHit,
)
from frontoffice.services.schemas import Page
from frontoffice.services.sla import SlaPolicyIn, SlaPolicyOut, SlaReport
from frontoffice.services.tickets import MacroApplied

from ..security import container, requires
from .feeds import add_change_feed

router = APIRouter(tags=["tickets"])
# Before the /{id} routes: see web/api/feeds.py.
add_change_feed(router, "tickets")

Reader = Annotated[Actor, Depends(requires("tickets.read"))]
Writer = Annotated[Actor, Depends(requires("tickets.write"))]
M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], **values: Any) -> M:
    """``model`` from query parameters, its errors answered as any other request's (422), with only
    the parameters actually given marked as set (a saved view's own filters stay for the others)."""
    given = {k: v for k, v in values.items() if v is not None and v != [] and v is not False}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None


@router.get("/tickets", response_model=Page[TicketOut])
async def list_tickets(
    request: Request,
    actor: Reader,
    view: Annotated[BuiltinTicketView | None, Query(description="a built-in view")] = None,
    view_id: Annotated[int | None, Query(description="a saved view; other parameters narrow it")] = None,
    assignee: Annotated[str | None, Query(description="me, none or a user id")] = None,
    team: Annotated[bool, Query(description="tickets of the queues I serve")] = False,
    status: Annotated[list[TicketStatus] | None, Query(description="repeat to give several")] = None,
    priority: Annotated[list[TicketPriority] | None, Query()] = None,
    queue_id: Annotated[list[int] | None, Query()] = None,
    project_id: Annotated[list[int] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(description="tickets with any of these tags")] = None,
    due_before: datetime | None = None,
    due_after: datetime | None = None,
    sort: TicketSort | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[TicketOut]:
    """A ticket work list: the tickets the user may see, filtered and sorted, a page at a time."""
    filters = validated(
        TicketFilters,
        view=view,
        assignee=assignee,
        team=team,
        status=status,
        priority=priority,
        queue_id=queue_id,
        project_id=project_id,
        tag=tag,
        due_before=due_before,
        due_after=due_after,
    )
    return await container(request).tickets.work_list(
        actor, filters, sort=sort, view_id=view_id, limit=limit, cursor=cursor
    )


@router.get("/tickets/counts", response_model=list[ViewCount])
async def ticket_view_counts(request: Request, actor: Reader) -> list[ViewCount]:
    """How many tickets each built-in view and each of my saved views holds (at most 10000, then
    ``capped``)."""
    return await container(request).tickets.view_counts(actor)


@router.post("/tickets/bulk", response_model=TicketBulkOut)
async def bulk_update_tickets(request: Request, body: TicketBulkIn, actor: Writer) -> TicketBulkOut:
    """Assign, set the status or priority, add or remove tags on many tickets at once: all or none."""
    return await container(request).tickets.bulk_update(actor, body)


@router.post("/tickets/{ticket_id}/merge", response_model=TicketOut)
async def merge_tickets(request: Request, ticket_id: int, body: TicketMergeIn, actor: Writer) -> TicketOut:
    """Merge other tickets of the same customer into this one; they are closed."""
    return await container(request).tickets.merge(actor, ticket_id, body)


@router.get("/ticket-views", response_model=list[SavedViewOut])
async def list_ticket_views(request: Request, actor: Reader) -> list[SavedViewOut]:
    """My saved views and the shared ones."""
    return await container(request).tickets.views(actor)


@router.post("/ticket-views", response_model=SavedViewOut, status_code=201)
async def create_ticket_view(request: Request, body: SavedViewIn, actor: Reader) -> SavedViewOut:
    """Save a work list (a shared one needs a supervisor)."""
    return await container(request).tickets.create_view(actor, body)


@router.patch("/ticket-views/{view_id}", response_model=SavedViewOut)
async def update_ticket_view(
    request: Request, view_id: int, body: SavedViewPatch, actor: Reader
) -> SavedViewOut:
    return await container(request).tickets.update_view(actor, view_id, body)


@router.delete("/ticket-views/{view_id}", status_code=204)
async def delete_ticket_view(request: Request, view_id: int, actor: Reader) -> Response:
    await container(request).tickets.delete_view(actor, view_id)
    return Response(status_code=204)


@router.get("/customers/{customer_id}/tickets", response_model=Page[TicketOut])
async def customer_tickets(
    request: Request,
    customer_id: int,
    actor: Reader,
    status: Annotated[list[TicketStatus] | None, Query(description="repeat to give several")] = None,
    open: Annotated[bool, Query(description="only open and pending tickets")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[TicketOut]:
    """The customer's tickets, newest first."""
    return await container(request).tickets.for_customer(
        actor, customer_id, statuses=status or (), open_only=open, limit=limit, cursor=cursor
    )


@router.post("/tickets", response_model=TicketOut, status_code=201)
async def create_ticket(request: Request, body: TicketIn, actor: Writer) -> TicketOut:
    """Open a ticket for a customer; with ``source_interaction_id`` the contact is linked to it."""
    return await container(request).tickets.create(actor, body)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
async def get_ticket(request: Request, ticket_id: int, actor: Reader) -> TicketOut:
    return await container(request).tickets.get(actor, ticket_id)


@router.patch("/tickets/{ticket_id}", response_model=TicketOut)
async def update_ticket(request: Request, ticket_id: int, body: TicketPatch, actor: Writer) -> TicketOut:
    """Change the status (a closed ticket is final), priority, subject, due time or assignee."""
    return await container(request).tickets.update(actor, ticket_id, body)


@router.post("/tickets/{ticket_id}/interactions", response_model=TicketOut)
async def link_ticket_interaction(
    request: Request, ticket_id: int, body: TicketLinkIn, actor: Writer
) -> TicketOut:
    """Link a contact of the same customer to the ticket (repeating it changes nothing)."""
    return await container(request).tickets.link_interaction(actor, ticket_id, body.interaction_id)


@router.get("/sla-policies", response_model=list[SlaPolicyOut], tags=["sla"])
async def list_sla_policies(request: Request, actor: Reader) -> list[SlaPolicyOut]:
    """The SLA policies in the order they are tried (the first matching one applies)."""
    return await container(request).sla.policies(actor)


@router.post("/sla-policies", response_model=SlaPolicyOut, status_code=201, tags=["sla"])
async def create_sla_policy(request: Request, body: SlaPolicyIn, actor: Reader) -> SlaPolicyOut:
    """Add a policy (supervisors): conditions, targets in business seconds, escalation on breach."""
    return await container(request).sla.save_policy(actor, body)


@router.put("/sla-policies/{policy_id}", response_model=SlaPolicyOut, tags=["sla"])
async def replace_sla_policy(
    request: Request, policy_id: int, body: SlaPolicyIn, actor: Reader
) -> SlaPolicyOut:
    """Replace a policy; tickets already opened keep the targets they got."""
    return await container(request).sla.save_policy(actor, body, policy_id)


@router.get("/reports/sla", response_model=SlaReport, tags=["sla"])
async def sla_report(
    request: Request,
    actor: Annotated[Actor, Depends(requires("stats.read"))],
    since: datetime,
    until: datetime,
    project_id: int | None = None,
) -> SlaReport:
    """SLA compliance per metric, first-response and resolution times (business seconds) of the
    tickets opened in ``[since, until)`` (at most 92 days), and the backlog by age now."""
    return await container(request).sla.report(actor, since, until, project_id=project_id)


@router.get("/reports/csat", response_model=CsatReport, tags=["csat"])
async def csat_report(
    request: Request,
    actor: Annotated[Actor, Depends(requires("stats.read"))],
    since: datetime,
    until: datetime,
    group_by: Literal["agent", "queue", "project"] = "agent",
    project_id: int | None = None,
) -> CsatReport:
    """Satisfaction surveys sent in ``[since, until)`` (at most 92 days): sent, answered, response
    rate, average rating and the distribution of ratings, in total and per agent, queue or project."""
    return await container(request).csat.report(actor, since, until, group_by=group_by, project_id=project_id)


@router.get("/public/csat/{token}", response_model=PublicSurvey, tags=["csat"])
async def public_survey(request: Request, token: str) -> PublicSurvey:
    """A survey by its signed link (no sign-in): the ticket's number and subject, the answer so far."""
    return await container(request).csat.public(token)


@router.post("/public/csat/{token}", response_model=PublicSurvey, tags=["csat"])
async def answer_survey(request: Request, token: str, body: CsatAnswerIn) -> PublicSurvey:
    """Answer a survey (no sign-in): 1–5 and a comment; a later answer within the window replaces
    the earlier one, after it ``409 survey-expired``."""
    return await container(request).csat.answer(token, body)


@router.get("/helpdesk/settings", response_model=HelpdeskSettingsOut, tags=["tickets"])
async def get_helpdesk_settings(request: Request, actor: Reader) -> HelpdeskSettingsOut:
    """The help desk's site settings: reopen window, satisfaction surveys."""
    return await container(request).helpdesk_settings.get(actor)


@router.put("/helpdesk/settings", response_model=HelpdeskSettingsOut, tags=["tickets"])
async def put_helpdesk_settings(
    request: Request, body: HelpdeskSettings, actor: Annotated[Actor, Depends(requires("settings.write"))]
) -> HelpdeskSettingsOut:
    """Change the help desk's settings (administrators); they apply from the next reply or solve."""
    return await container(request).helpdesk_settings.update(actor, body)


@router.get("/canned-answers", response_model=list[CannedAnswerOut], tags=["canned answers"])
async def search_canned_answers(
    request: Request,
    actor: Reader,
    q: Annotated[str, Query(max_length=100, description="what was typed after /")] = "",
    language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
    limit: Annotated[
        int, Query(ge=1, le=500, description="the picker's screenful; the editor reads all")
    ] = 20,
) -> list[CannedAnswerOut]:
    """Shared and my own answers: shortcut starting with ``q`` first, then title containing it."""
    return await container(request).canned.search(actor, q, language=language, limit=limit)


@router.post("/canned-answers", response_model=CannedAnswerOut, status_code=201, tags=["canned answers"])
async def create_canned_answer(request: Request, body: CannedAnswerIn, actor: Writer) -> CannedAnswerOut:
    """A personal answer, or a shared one (supervisors)."""
    return await container(request).canned.create_answer(actor, body)


@router.patch("/canned-answers/{answer_id}", response_model=CannedAnswerOut, tags=["canned answers"])
async def update_canned_answer(
    request: Request, answer_id: int, body: CannedAnswerPatch, actor: Writer
) -> CannedAnswerOut:
    """Change my own answer, or a shared one (supervisors)."""
    return await container(request).canned.update_answer(actor, answer_id, body)


@router.delete("/canned-answers/{answer_id}", status_code=204, tags=["canned answers"])
async def delete_canned_answer(request: Request, answer_id: int, actor: Writer) -> Response:
    """Delete my own answer, or a shared one (supervisors); ``409 canned-answer-in-use`` while a macro
    inserts it."""
    await container(request).canned.delete_answer(actor, answer_id)
    return Response(status_code=204)


@router.get(
    "/tickets/{ticket_id}/canned-answers/{answer_id}", response_model=RenderedAnswer, tags=["canned answers"]
)
async def render_canned_answer(
    request: Request, ticket_id: int, answer_id: int, actor: Reader
) -> RenderedAnswer:
    """The answer's text for this ticket, its variables filled."""
    return await container(request).canned.render(actor, answer_id, ticket_id)


@router.get("/macros", response_model=list[MacroOut], tags=["canned answers"])
async def list_macros(request: Request, actor: Reader) -> list[MacroOut]:
    return await container(request).canned.macros(actor)


@router.post("/macros", response_model=MacroOut, status_code=201, tags=["canned answers"])
async def create_macro(request: Request, body: MacroIn, actor: Writer) -> MacroOut:
    return await container(request).canned.create_macro(actor, body)


@router.patch("/macros/{macro_id}", response_model=MacroOut, tags=["canned answers"])
async def update_macro(request: Request, macro_id: int, body: MacroPatch, actor: Writer) -> MacroOut:
    """Change my own macro, or a shared one (supervisors); ``actions`` replaces them as a whole."""
    return await container(request).canned.update_macro(actor, macro_id, body)


@router.delete("/macros/{macro_id}", status_code=204, tags=["canned answers"])
async def delete_macro(request: Request, macro_id: int, actor: Writer) -> Response:
    """Delete my own macro, or a shared one (supervisors)."""
    await container(request).canned.delete_macro(actor, macro_id)
    return Response(status_code=204)


@router.post("/tickets/{ticket_id}/macros/{macro_id}", response_model=MacroApplied, tags=["canned answers"])
async def apply_macro(request: Request, ticket_id: int, macro_id: int, actor: Writer) -> MacroApplied:
    """Apply a macro: its changes in one transaction, its canned answer rendered for the reply."""
    return await container(request).tickets.apply_macro(actor, ticket_id, macro_id)


@router.get("/kb/categories", response_model=list[CategoryOut], tags=["knowledge base"])
async def kb_categories(request: Request, actor: Reader) -> list[CategoryOut]:
    return await container(request).knowledge_base.categories(actor)


@router.post("/kb/categories", response_model=CategoryOut, status_code=201, tags=["knowledge base"])
async def create_kb_category(request: Request, body: CategoryIn, actor: Reader) -> CategoryOut:
    return await container(request).knowledge_base.create_category(actor, body)


@router.patch("/kb/categories/{category_id}", response_model=CategoryOut, tags=["knowledge base"])
async def update_kb_category(
    request: Request, category_id: int, body: CategoryPatch, actor: Reader
) -> CategoryOut:
    """Rename or reorder a category (supervisors)."""
    return await container(request).knowledge_base.update_category(actor, category_id, body)


@router.delete("/kb/categories/{category_id}", status_code=204, tags=["knowledge base"])
async def delete_kb_category(request: Request, category_id: int, actor: Reader) -> Response:
    """Delete a category (supervisors); its articles stay, without a category."""
    await container(request).knowledge_base.delete_category(actor, category_id)
    return Response(status_code=204)


@router.get("/kb/search", response_model=list[SearchHit], tags=["knowledge base"])
async def search_kb(
    request: Request,
    actor: Reader,
    q: Annotated[str, Query(max_length=500)],
    language: Annotated[Literal["ru", "en"] | None, Query()] = None,
) -> list[SearchHit]:
    """Published articles with every word of ``q`` (prefixes on SQLite, stems on PostgreSQL)."""
    return await container(request).knowledge_base.search(actor, q, language=language)


@router.get("/kb/suggestions", response_model=list[SearchHit], tags=["knowledge base"])
async def kb_suggestions(
    request: Request, actor: Reader, interaction_id: int | None = None, ticket_id: int | None = None
) -> list[SearchHit]:
    """Articles for a contact or (``ticket_id``) a ticket, from its subject."""
    kb = container(request).knowledge_base
    return await kb.suggestions(actor, interaction_id, ticket_id=ticket_id)


@router.post("/kb/articles", response_model=ArticleOut, status_code=201, tags=["knowledge base"])
async def create_kb_article(request: Request, body: ArticleIn, actor: Reader) -> ArticleOut:
    """A new article, as a draft (supervisors)."""
    return await container(request).knowledge_base.create_article(actor, body)


@router.get("/kb/articles/{article_id}", response_model=ArticleOut, tags=["knowledge base"])
async def get_kb_article(request: Request, article_id: int, actor: Reader) -> ArticleOut:
    return await container(request).knowledge_base.get(actor, article_id)


@router.patch("/kb/articles/{article_id}", response_model=ArticleOut, tags=["knowledge base"])
async def update_kb_article(
    request: Request, article_id: int, body: ArticlePatch, actor: Reader
) -> ArticleOut:
    """Change the draft; readers see the published text until the next publication."""
    return await container(request).knowledge_base.update_draft(actor, article_id, body)


@router.post("/kb/articles/{article_id}/publish", response_model=ArticleOut, tags=["knowledge base"])
async def publish_kb_article(request: Request, article_id: int, actor: Reader) -> ArticleOut:
    """Publish the draft as the next version."""
    return await container(request).knowledge_base.publish(actor, article_id)


@router.get("/public/kb/{project_code}", response_model=list[SearchHit], tags=["knowledge base"])
async def public_kb(
    request: Request,
    project_code: str,
    q: Annotated[str, Query(max_length=500)] = "",
    language: Annotated[Literal["ru", "en"] | None, Query()] = None,
) -> list[SearchHit]:
    """The public, read-only knowledge base of a project (no sign-in): its published articles."""
    return await container(request).knowledge_base.public_search(project_code, q, language=language)


@router.get(
    "/public/kb/{project_code}/articles/{article_id}", response_model=ArticleOut, tags=["knowledge base"]
)
async def public_kb_article(request: Request, project_code: str, article_id: int) -> ArticleOut:
    return await container(request).knowledge_base.public_article(project_code, article_id)
